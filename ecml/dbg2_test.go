package ecml
import ("testing";"os";"fmt")
func TestDbg2(t *testing.T) {
	data, _ := os.ReadFile("/tmp/unstable.xml")
	p, _ := ParseDocument(data)
	out, _ := p.MarshalDocument()
	p2, _ := ParseDocument(out)
	out2, _ := p2.MarshalDocument()
	os.WriteFile("/tmp/o1.xml", out, 0o644)
	os.WriteFile("/tmp/o2.xml", out2, 0o644)
	fmt.Println("ok")
}

package ecml

import (
	"bytes"
	"math/rand"
	"os"
	"reflect"
	"testing"
	"time"
)

func TestHangHunt(t *testing.T) {
	seeds := [][]byte{readFixture(t, "full.xml"), readFixture(t, "encrypted.xml"), readFixture(t, "invalid.xml")}
	r := rand.New(rand.NewSource(1))
	deadline := time.Now().Add(40 * time.Second)
	for n := 0; time.Now().Before(deadline); n++ {
		in := append([]byte(nil), seeds[r.Intn(len(seeds))]...)
		for k := r.Intn(8) + 1; k > 0; k-- {
			switch r.Intn(4) {
			case 0:
				if len(in) > 0 {
					in[r.Intn(len(in))] = byte(r.Intn(256))
				}
			case 1:
				if len(in) > 1 {
					i := r.Intn(len(in))
					j := i + r.Intn(len(in)-i)
					in = append(in[:i], in[j:]...)
				}
			case 2:
				s := seeds[r.Intn(len(seeds))]
				i := r.Intn(len(s))
				j := i + r.Intn(len(s)-i)
				at := r.Intn(len(in) + 1)
				in = append(in[:at], append(append([]byte(nil), s[i:j]...), in[at:]...)...)
			case 3:
				if len(in) > 0 {
					i := r.Intn(len(in))
					in = append(in[:i], append([]byte{in[i]}, in[i:]...)...)
				}
			}
		}
		done := make(chan bool)
		go func() {
			prop(in)
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			os.WriteFile("/tmp/hang.xml", in, 0o644)
			t.Fatalf("hang after %d inputs", n)
		}
	}
}

func prop(data []byte) {
	p, err := ParseDocument(data)
	if err != nil {
		return
	}
	probs := p.Validate(ValidateOptions{Now: testNow, AllowEncrypted: true, RequireSchemaVersion: true})
	out, err := p.MarshalDocument()
	if err != nil {
		panic(err)
	}
	p2, err := ParseDocument(out)
	if err != nil {
		panic(err)
	}
	out2, _ := p2.MarshalDocument()
	if !bytes.Equal(out, out2) {
		os.WriteFile("/tmp/unstable.xml", data, 0o644)
		panic("unstable")
	}
	if !reflect.DeepEqual(probs, p2.Validate(ValidateOptions{Now: testNow, AllowEncrypted: true, RequireSchemaVersion: true})) {
		os.WriteFile("/tmp/unstable.xml", data, 0o644)
		panic("problems")
	}
	_ = p.String()
}

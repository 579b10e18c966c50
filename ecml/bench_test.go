package ecml

import "testing"

// BenchmarkParseAndValidate measures what a receiver spends on a payload
// after signature verification: ParseDocument of the full fixture and
// Validate.
func BenchmarkParseAndValidate(b *testing.B) {
	data := readFixture(b, "full.xml")
	opts := ValidateOptions{Now: testNow, RequireSchemaVersion: true}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		p, err := ParseDocument(data)
		if err != nil {
			b.Fatal(err)
		}
		if probs := p.Validate(opts); len(probs) > 0 {
			b.Fatal(probs)
		}
	}
}

// BenchmarkMarshalDocument measures writing the full fixture.
func BenchmarkMarshalDocument(b *testing.B) {
	p := mustParse(b, readFixture(b, "full.xml"))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.MarshalDocument(); err != nil {
			b.Fatal(err)
		}
	}
}

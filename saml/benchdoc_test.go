package saml

import (
	"os"
	"path/filepath"
	"testing"
)

// TestBenchDocument keeps testdata/bench/approve-request.xml, the unsigned
// ~4 KB card approval (one sensitive element: the card) that `make bench`
// and `make bench-peers` measure with, in step with the message model.
func TestBenchDocument(t *testing.T) {
	w := newWorld(t)
	req, err := w.builder(merchantID, "bench").NewRequest(issuerEndpoint, ServiceURI("card", "approve"))
	if err != nil {
		t.Fatal(err)
	}
	req.IdempotencyKey = "order-20261122-0001-approve"
	req.Routing = &Routing{CardBIN: "411111", CardLast4: "1111"}
	req.Payload = payloadFrom(t, approvePayloadXML)
	el, err := req.Element()
	if err != nil {
		t.Fatal(err)
	}
	data := ser(t, el)
	path := filepath.Join("testdata", "bench", "approve-request.xml")
	if *update {
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	golden, err := os.ReadFile(path)
	if err != nil || string(golden) != string(data) {
		t.Fatalf("%s is stale: run go test ./saml -run TestBenchDocument -update", path)
	}
}

package pg

import "testing"

// TestClassifyCallAPIStatuses: the issuer gateway answers as the KECIS call
// API does (connectors/callapi) — a refusal the issuer decided comes with
// 402, 400, 409 or 422 and an outcome, and is the issuer's answer; a 4xx
// problem document is the gateway's own refusal, seen by no issuer.
func TestClassifyCallAPIStatuses(t *testing.T) {
	answer := func(top, sub string) []byte {
		return []byte(`{"outcome":"answered","status":"` + top + `","sub_status":"` + sub + `","message":"승인 거절","reason":"the provider declined","provider":"x","request_id":"_r"}`)
	}
	for _, c := range []struct {
		code int
		body []byte
		kind answerKind
		sub  string
	}{
		{200, answer("Success", ""), answered, ""},
		{402, answer("Responder", "Declined"), answered, "Declined"},
		{402, answer("Responder", "InsufficientFunds"), answered, "InsufficientFunds"},
		{400, answer("Requester", "InvalidPayload"), answered, "InvalidPayload"},
		{422, answer("Responder", "PolicyViolation"), answered, "PolicyViolation"},
		{409, answer("Responder", "InFlight"), answered, "InFlight"}, // refusalCode keeps it pending
		{202, []byte(`{"outcome":"pending","status":"Responder","sub_status":"Pending","provider":"x","request_id":"_r"}`), unknown, "Pending"},
		{202, answer("Responder", "Pending"), unknown, "Pending"},
		{503, answer("Responder", "ProviderUnavailable"), unknown, "ProviderUnavailable"},
		{422, []byte(`{"type":"urn:kecis:problem:no-route","title":"no provider can take this request","status":422}`), notProcessed, ""},
		{400, []byte(`{"type":"urn:kecis:problem:missing-fields","title":"the request lacks fields its service requires","status":400}`), notProcessed, ""},
	} {
		a := classify(c.code, c.body)
		if a.kind != c.kind || a.subStatus != c.sub {
			t.Errorf("%d %s: kind %d sub %q; want %d %q", c.code, c.body, a.kind, a.subStatus, c.kind, c.sub)
		}
	}
}

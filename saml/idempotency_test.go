package saml

import "testing"

func TestIdemResultRefusal(t *testing.T) {
	for _, c := range []struct {
		r       IdemResult
		sub     string
		refused bool
	}{
		{IdemAcquired, "", false},
		{IdemReacquired, "", false},
		{IdemDone, "", false},
		{IdemInFlight, CodeInFlight, true},
		{IdemMismatch, CodeIdempotencyConflict, true},
		{"", "", false},
	} {
		st, refused := c.r.Refusal()
		if refused != c.refused || st.SubCode != c.sub {
			t.Errorf("%q.Refusal() = %+v, %v", c.r, st, refused)
		}
		if refused && (st.Code != StatusRequester || st.Message == "") {
			t.Errorf("%q refuses with %+v, want Requester and a message", c.r, st)
		}
		if !refused && st != (Status{}) {
			t.Errorf("%q refuses nothing but answers %+v", c.r, st)
		}
	}
}

func TestIdemScope(t *testing.T) {
	if got := IdemScope("https://pg.test", ""); got != "https://pg.test" {
		t.Errorf("without OnBehalfOf: %q", got)
	}
	if got := IdemScope("https://pg.test", "https://shop.test"); got != "https://pg.test|https://shop.test" {
		t.Errorf("on behalf of a merchant: %q", got)
	}
}

package issuer_test

import (
	"reflect"
	"testing"

	"github.com/kecis/kecis/examples/issuer"
)

// TestApproveAnswersWhatItWrote: a new approval's answer is built from
// what its transaction wrote, not read back after the commit; it is what
// an inquiry then reads, field for field — a lump sum and an instalment
// plan, key-in, a verification approval — and a repeat answers the same.
func TestApproveAnswersWhatItWrote(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn dsnFunc) {
		e := newEnv(t, dsn)
		c := e.issue(issuer.Credit, 1_000_000)
		keyIn := e.approveReq(c, 2000)
		keyIn.Installments, keyIn.MerchantName = 3, ""
		keyIn.Card.KeyIn = &issuer.KeyIn{PasswordPrefix: testPrefix, BirthDate: testBirth}
		for _, req := range []issuer.ApproveRequest{e.approveReq(c, 1000), keyIn} {
			a, err := e.iss.Approve(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if got := e.inquire(a.Number); !reflect.DeepEqual(a, got) {
				t.Errorf("Approve answered\n%+v\nan inquiry reads\n%+v", a, got)
			}
			again, err := e.iss.Approve(ctx, req)
			if err != nil || !again.Replayed {
				t.Fatalf("repeat: %v %+v", err, again)
			}
			again.Replayed = false
			if !reflect.DeepEqual(a, again) {
				t.Errorf("Approve answered\n%+v\nits repeat\n%+v", a, again)
			}
		}
		v := e.verify(c, 1234, "5678")
		if got := e.inquire(v.Number); !reflect.DeepEqual(v, got) {
			t.Errorf("ApproveVerification answered\n%+v\nan inquiry reads\n%+v", v, got)
		}
	})
}

package twoway

import (
	"errors"
	"fmt"
	"testing"

	"github.com/kecis/kecis/connectors/sms"
)

// TestCrashAtEveryStep simulates a crash at every call the engine makes —
// to the store, both banks, the telecom and the gateway — failing it
// before it acts or after (its answer lost), and every later call of that
// engine (a dead process makes none). A fresh engine over the same
// database then runs Recover, the remitter and the payee retry what they
// saw fail (the page its submission, the gateway its webhook), and Recover
// runs again: the confirmed transfer is executed exactly once, the
// remitter texted once, whatever step failed (KECIS §15.5).
func TestCrashAtEveryStep(t *testing.T) {
	for _, tc := range []struct {
		name   string
		edit   func(*TransferRequest)
		refuse bool // the payee's bank refuses the credit: the debit is reversed
	}{
		{name: "other-bank"},
		{name: "same-bank", edit: func(r *TransferRequest) {
			r.PayeeBank, r.PayeeAccount, r.PayeePhone = bankA, sameAccount, "010-7777-8888"
		}},
		{name: "refused-credit", refuse: true},
	} {
		for _, mode := range []string{"before", "after"} {
			for at := 1; ; at++ {
				fired := false
				t.Run(fmt.Sprintf("%s/%s/%02d", tc.name, mode, at), func(t *testing.T) {
					fired = crashAt(t, at, mode, tc.edit, tc.refuse)
				})
				if !fired || t.Failed() {
					break
				}
			}
		}
	}
}

// crashAt runs one case; it reports whether the crash happened (false: the
// flow has fewer calls than at).
func crashAt(t *testing.T, at int, mode string, edit func(*TransferRequest), refuse bool) bool {
	w := newWorld(t)
	w.bank.refuseCredit = refuse
	tr := request(100_000)
	tr.IdempotencyKey = "page-1"
	if edit != nil {
		edit(tr)
	}
	payee := tr.PayeePhone
	if p, err := sms.NormalizePhone(payee); err == nil {
		payee = p
	}
	in := &injector{at: at, mode: mode}
	e := w.engine(t, in, nil)
	// The live engine: each step once, errors as a crashed process leaves them.
	var id string
	reply := w.reply(payee, "", "")
	if r, err := e.Start(ctx, tr); err == nil {
		id = r.ID
		if _, err := e.Confirm(ctx, customer, id); err == nil {
			if code, ok := w.lastCode(payee); ok {
				reply.Text, reply.InReplyTo = code, w.messageTo(payee)
				_ = e.HandleReply(ctx, reply)
			}
		}
	}
	if !in.dead {
		return false
	}
	t.Logf("crashed at %s (%s)", in.fired, mode)

	// A fresh engine over the same database; the world retries.
	e = w.engine(t, nil, nil)
	for range 6 {
		if _, err := e.Recover(ctx); err != nil {
			t.Fatalf("Recover: %v", err)
		}
		r, err := w.store.ByKey(ctx, customer, "page-1")
		if errors.Is(err, ErrNotFound) {
			r, err = e.Start(ctx, tr) // the page's submission again
		}
		if err != nil {
			t.Fatal(err)
		}
		switch r.State {
		case AwaitingConfirmation:
			if _, err := e.Confirm(ctx, customer, r.ID); err != nil {
				t.Fatal(err)
			}
		case AwaitingReply, Texting, Confirmed, Debited, Reversing, Completed, Reversed:
			// The gateway delivers the reply again until it was taken.
			if code, ok := w.lastCode(payee); ok {
				if reply.Text == "" {
					reply.Text, reply.InReplyTo = code, w.messageTo(payee)
				}
				if err := e.HandleReply(ctx, reply); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	r, err := w.store.ByKey(ctx, customer, "page-1")
	if err != nil {
		t.Fatal(err)
	}
	want := Completed
	if refuse {
		want = Reversed
	}
	if r.State != want || !r.Notified {
		t.Fatalf("after recovery: %s (notified %v), want %s", r.State, r.Notified, want)
	}
	op := "send-out"
	if r.SameBank() {
		op = "transfer"
	}
	if n := w.bank.count(op); n != 1 {
		t.Fatalf("%s applied %d times", op, n)
	}
	credits := 0
	if !refuse && !r.SameBank() {
		credits = 1
	}
	if n := w.bank.count("credit"); n != credits {
		t.Fatalf("credited %d times", n)
	}
	wantBalance := int64(4_900_000)
	if refuse {
		wantBalance = 5_000_000
		if n := w.bank.count("reverse-out"); n != 1 {
			t.Fatalf("reversed %d times", n)
		}
	}
	if b := w.bank.balance(bankA, remAccount); b != wantBalance || w.bank.clearing != 0 {
		t.Fatalf("remitter's balance %d, clearing %d", b, w.bank.clearing)
	}
	if n := len(w.gw.to(remPhone)); n != 1 {
		t.Fatalf("the remitter was texted %d times", n)
	}
	if n := codeTexts(w, payee); n != 1 {
		t.Fatalf("the payee got %d code texts", n)
	}
	if open, err := w.store.Open(ctx, 10); err != nil || len(open) != 0 {
		t.Fatalf("%d requests still owe work (%v)", len(open), err)
	}
	return true
}

// lastCode is the code in the last code text to phone, if any.
func (w *world) lastCode(phone string) (string, bool) {
	msgs := w.gw.to(phone)
	for i := len(msgs) - 1; i >= 0; i-- {
		if m := codeRE.FindStringSubmatch(msgs[i].Text); m != nil {
			return m[1], true
		}
	}
	return "", false
}

func codeTexts(w *world, phone string) int {
	n := 0
	for _, m := range w.gw.to(phone) {
		if codeRE.MatchString(m.Text) {
			n++
		}
	}
	return n
}

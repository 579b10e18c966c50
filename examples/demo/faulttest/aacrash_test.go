package faulttest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/amountauth"
	"github.com/kecis/kecis/connectors/card"
	"github.com/kecis/kecis/connectors/sqlstore"
	"github.com/kecis/kecis/connectors/store"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/examples/issuer"
	"github.com/kecis/kecis/examples/issuer/kecisadapter"
	"github.com/kecis/kecis/saml"
)

// The amount-authentication crash matrix (KECIS §15.3.3, docs/amountauth.md
// "No stray charges"): a child process — this test binary, re-executed —
// runs the PG adapter's AA engine on its own database with the real issuer
// (examples/issuer behind its KECIS adapter, in-process, on a database
// file of its own) and kills itself with SIGKILL at the n-th step of a
// flow: before and after every write of a session and every call to the
// issuer or the PG's own approve. The test then restarts the engine on the
// same databases, lets its recovery run, and checks the issuer's ledger:
// no verification approval stays open, no purchase is approved twice, and
// a purchase whose match was recorded is approved exactly once. n runs from
// 1 until a child completes its flow without reaching it.

// aaChildEnv carries the child's instructions (JSON aaChildSpec).
const aaChildEnv = "KECIS_AACRASH_CHILD"

type aaChildSpec struct {
	Dir      string `json:"dir"`
	Flow     string `json:"flow"` // match, limit, timeout
	CrashAt  int    `json:"crash_at"`
	PAN      string `json:"pan"`
	ExpMonth int    `json:"exp_month"`
	ExpYear  int    `json:"exp_year"`
}

const (
	aaPG       = "https://pg.example/kecis"
	aaMerchant = "https://shop.example/kecis"
	aaOrder    = "ORDER-AA-1"
	aaAmount   = 150000
)

var aaStart = time.Date(2026, 12, 3, 1, 0, 0, 0, time.UTC) // 10:00 KST, before the 23:00 cut-off

// aaWorld is the engine and the issuer on a directory's databases.
type aaWorld struct {
	engine *amountauth.Engine
	issuer *issuer.Issuer
	store  *amountauth.SQLStore
	dbs    []*sqlstore.DB
}

func (w *aaWorld) close() {
	w.issuer.Close()
	for _, db := range w.dbs {
		db.Close()
	}
}

// stepper counts the steps of a flow and kills the process at one.
type stepper struct{ n, at int }

func (s *stepper) step(what string) {
	if s == nil {
		return
	}
	s.n++
	if s.n == s.at {
		fmt.Fprintf(os.Stderr, "aacrash: SIGKILL at step %d (%s)\n", s.n, what)
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
}

// localIssuer is the issuer's card service called in-process, as the
// engine would reach it through the hub: refusals become outcomes.
type localIssuer struct {
	a    *kecisadapter.Adapter
	step *stepper
}

func cardOutcome(a *card.Approval, err error) (*card.Outcome, error) {
	if st, ok := connectors.AsStatus(err); ok {
		return &card.Outcome{Result: &connectors.Result{Status: st}}, nil
	}
	if err != nil {
		return nil, err
	}
	return &card.Outcome{Approval: a, Result: &connectors.Result{Status: saml.Status{Code: saml.StatusSuccess}}}, nil
}

func (l *localIssuer) call(name string, fn func() (*card.Approval, error)) (*card.Outcome, error) {
	l.step.step("before " + name)
	out, err := cardOutcome(fn())
	l.step.step("after " + name)
	return out, err
}

func (l *localIssuer) ApproveVerification(ctx context.Context, _ string, r *card.VerificationRequest) (*card.Outcome, error) {
	return l.call("approve-verification", func() (*card.Approval, error) { return l.a.ApproveVerification(ctx, r) })
}

func (l *localIssuer) Cancel(ctx context.Context, _ string, r *card.CancelRequest) (*card.Outcome, error) {
	return l.call("cancel", func() (*card.Approval, error) { return l.a.Cancel(ctx, r) })
}

func (l *localIssuer) Refund(ctx context.Context, _ string, r *card.RefundRequest) (*card.Outcome, error) {
	return l.call("refund", func() (*card.Approval, error) { return l.a.Refund(ctx, r) })
}

func (l *localIssuer) Inquire(ctx context.Context, _ string, r *card.InquireRequest) (*card.Outcome, error) {
	return l.call("inquire", func() (*card.Approval, error) { return l.a.Inquire(ctx, r) })
}

// steppedStore counts the session writes.
type steppedStore struct {
	amountauth.Store
	step *stepper
}

func (s steppedStore) Create(ctx context.Context, x *amountauth.Session) error {
	s.step.step("before create")
	err := s.Store.Create(ctx, x)
	s.step.step("after create")
	return err
}

func (s steppedStore) Update(ctx context.Context, x *amountauth.Session) error {
	s.step.step("before update " + string(x.State))
	err := s.Store.Update(ctx, x)
	s.step.step("after update " + string(x.State))
	return err
}

// openAAWorld opens the engine and the issuer on dir at now; step (nil
// for none) counts and crashes.
func openAAWorld(ctx context.Context, dir string, now time.Time, step *stepper) (*aaWorld, error) {
	clock := func() time.Time { return now }
	iss, err := issuer.Open(ctx, issuer.Config{DSN: "sqlite:" + filepath.Join(dir, "issuer.db"), DataKey: bytes.Repeat([]byte{3}, 32),
		Pepper: bytes.Repeat([]byte{4}, 32), Now: clock, Logger: slog.New(slog.DiscardHandler), SMSRecordDelay: -1})
	if err != nil {
		return nil, err
	}
	w := &aaWorld{issuer: iss}
	db, err := sqlstore.Open(ctx, "sqlite:"+filepath.Join(dir, "pg.db"))
	if err != nil {
		w.close()
		return nil, err
	}
	w.dbs = append(w.dbs, db)
	sealer, err := store.NewSealer(bytes.Repeat([]byte{5}, 32), nil)
	if err != nil {
		w.close()
		return nil, err
	}
	if w.store, err = amountauth.NewSQLStore(ctx, db, sealer); err != nil {
		w.close()
		return nil, err
	}
	keys := filepath.Join("..", "..", "..", "saml", "testdata", "keys")
	signer, err := saml.LoadSigner(filepath.Join(keys, "merchant-ec.key.pem"), filepath.Join(keys, "merchant-ec.cert.pem"))
	if err != nil {
		w.close()
		return nil, err
	}
	adapter := &kecisadapter.Adapter{Issuer: iss, MerchantNames: map[string]string{aaPG: "KECIS PG"}}
	acquirer := amountauth.AcquirerFunc(func(ctx context.Context, p *amountauth.Purchase) (*card.Approval, error) {
		// The PG's own approve forwards the purchase to the issuer under the
		// PG's own order number; its idempotency key makes a retry one
		// approval.
		step.step("before purchase")
		a, err := adapter.Approve(ctx, &card.ApproveRequest{Merchant: aaPG, OrderID: "P-" + p.OrderID, Amount: p.Amount, Card: p.Card,
			IdempotencyKey: p.IdempotencyKey, SubMerchant: p.SubMerchant})
		step.step("after purchase")
		return a, err
	})
	w.engine, err = amountauth.New(amountauth.Config{EntityID: aaPG, Signer: signer, Store: steppedStore{w.store, step},
		Issuer: &localIssuer{a: adapter, step: step}, Acquirer: acquirer, Key: bytes.Repeat([]byte{6}, 32),
		Route: func(context.Context, string) (string, error) { return "https://issuer.example/kecis", nil },
		Now:   clock})
	if err != nil {
		w.close()
		return nil, err
	}
	return w, nil
}

// aaChild runs one flow, to its end or to the crash.
func aaChild(specJSON string) int {
	var spec aaChildSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		fmt.Fprintln(os.Stderr, "aacrash child:", err)
		return 2
	}
	ctx := context.Background()
	step := &stepper{at: spec.CrashAt}
	w, err := openAAWorld(ctx, spec.Dir, aaStart, step)
	if err != nil {
		fmt.Fprintln(os.Stderr, "aacrash child:", err)
		return 2
	}
	if err := aaFlow(ctx, w, spec); err != nil {
		fmt.Fprintln(os.Stderr, "aacrash child:", err)
		return 2
	}
	return 0
}

// aaFlow is one cardholder's session: the right amount, three wrong ones,
// or none until the timeout.
func aaFlow(ctx context.Context, w *aaWorld, spec aaChildSpec) error {
	s, err := w.engine.Start(ctx, &amountauth.StartRequest{Merchant: aaMerchant, OrderID: aaOrder,
		Amount: ecml.Money{Minor: aaAmount, Currency: "KRW"}, SubMerchant: "KECIS Demo Shop", IdempotencyKey: "k1",
		Card: card.Card{Number: ecml.PAN(spec.PAN), ExpMonth: fmt.Sprint(spec.ExpMonth), ExpYear: fmt.Sprint(spec.ExpYear)}})
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	if s.State != amountauth.AwaitingAmount {
		return fmt.Errorf("start: %s", s.State)
	}
	// What the cardholder's text says: the issuer's own ledger.
	v, err := w.issuer.Inquire(ctx, issuer.InquireRequest{MerchantID: aaPG, OrderID: "AA-" + s.ID})
	if err != nil {
		return fmt.Errorf("the verification approval: %w", err)
	}
	switch spec.Flow {
	case "match":
		s, err = w.engine.Confirm(ctx, "", s.ID, amountauth.Typed{Amount: &v.Amount})
		if err == nil && s.State != amountauth.Approved {
			err = fmt.Errorf("after the match: %s", s.State)
		}
	case "limit":
		wrong := ecml.Money{Minor: v.Amount.Minor + 1, Currency: "KRW"}
		for range 3 {
			if s, err = w.engine.Confirm(ctx, "", s.ID, amountauth.Typed{Amount: &wrong}); err != nil {
				break
			}
		}
		if err == nil && s.State != amountauth.Failed {
			err = fmt.Errorf("after the limit: %s", s.State)
		}
	case "timeout":
		// The session is left alone: the restart's recovery ends it.
	}
	return err
}

func TestAmountAuthCrashMatrix(t *testing.T) {
	if testing.Short() {
		t.Skip("the crash matrix runs a child process per step")
	}
	for _, flow := range []string{"match", "limit", "timeout"} {
		t.Run(flow, func(t *testing.T) {
			t.Parallel()
			for n := 1; ; n++ {
				if completed := aaCrashOnce(t, flow, n); completed {
					t.Logf("%s: %d crash points, each recovered", flow, n-1)
					if n < 6 {
						t.Fatalf("the %s flow has only %d steps: the stepper counts nothing", flow, n-1)
					}
					return
				}
				if n > 60 {
					t.Fatal("the flow never completes")
				}
			}
		})
	}
}

// aaCrashOnce runs the flow crashing at step n, restarts, recovers and
// checks the ledger; it reports whether the child completed the flow
// without reaching step n.
func aaCrashOnce(t *testing.T, flow string, n int) (completed bool) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	// Issue the card first (its own process: the parent).
	w, err := openAAWorld(ctx, dir, aaStart, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := w.issuer.IssueCard(ctx, issuer.IssueCardRequest{Type: issuer.Credit, HolderName: "홍길동", HolderPhone: "010-1234-5678",
		BirthDate: "900101", Password: "1234", Limit: 5_000_000, IdempotencyKey: "card-1"})
	if err != nil {
		t.Fatal(err)
	}
	w.close()

	spec, _ := json.Marshal(aaChildSpec{Dir: dir, Flow: flow, CrashAt: n, PAN: c.PAN.Reveal(), ExpMonth: c.ExpMonth, ExpYear: c.ExpYear})
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), aaChildEnv+"="+string(spec))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		completed = true
	case errors.As(err, &exit) && exit.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL:
	default:
		t.Fatalf("step %d: the child failed: %v\n%s", n, err, stderr.String())
	}

	// Restart past the timeout and the grace: recovery finishes the work.
	later := aaStart.Add(time.Hour)
	w, err = openAAWorld(ctx, dir, later, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	if pending, err := w.engine.Recover(ctx, 100); err != nil || pending != 0 {
		t.Fatalf("step %d (%s): Recover = %d pending, %v", n, strings.TrimSpace(stderr.String()), pending, err)
	}
	aaCheckLedger(t, w, n, strings.TrimSpace(stderr.String()), flow, completed)
	return completed
}

func aaCheckLedger(t *testing.T, w *aaWorld, n int, crash, flow string, completed bool) {
	t.Helper()
	ctx := context.Background()
	approvals, err := w.issuer.RecentApprovals(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	purchases := 0
	for _, a := range approvals {
		switch {
		case a.Verification && a.Status == issuer.StatusApproved:
			t.Errorf("step %d (%s): verification approval %s stays open", n, crash, a.Number)
		case !a.Verification && a.Status == issuer.StatusApproved:
			purchases++
		}
	}
	if purchases > 1 {
		t.Errorf("step %d (%s): the purchase was approved %d times", n, crash, purchases)
	}
	s, err := w.store.ByOrder(ctx, aaMerchant, aaOrder)
	if errors.Is(err, amountauth.ErrNotFound) {
		if purchases != 0 {
			t.Errorf("step %d (%s): a purchase without a session", n, crash)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if !s.State.Ended() || !s.VerifyDone {
		t.Errorf("step %d (%s): after recovery the session is %s, verification done %v", n, crash, s.State, s.VerifyDone)
	}
	if (s.State == amountauth.Approved) != (purchases == 1) {
		t.Errorf("step %d (%s): session %s with %d purchases", n, crash, s.State, purchases)
	}
	if flow != "match" && purchases != 0 {
		t.Errorf("step %d (%s): a %s flow approved the purchase", n, crash, flow)
	}
	if completed && flow == "match" && s.State != amountauth.Approved {
		t.Errorf("the uninterrupted match ended %s", s.State)
	}
}

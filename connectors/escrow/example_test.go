package escrow_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/kecis/kecis/connectors/escrow"
	"github.com/kecis/kecis/connectors/sqlstore"
	_ "github.com/kecis/kecis/connectors/sqlstore/sqlite"
	"github.com/kecis/kecis/connectors/store"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

// bankLedger stands for the bank's native API: a holding account, and
// every call idempotent by its key. A real bank posts these in its ledger
// (examples/bank); a release to another bank sends a transfer:credit and
// answers Done=false until it is credited.
type bankLedger struct {
	mu      sync.Mutex
	holding int64
	seen    map[string]string
}

func (l *bankLedger) once(key string, amount int64, ref string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if r, ok := l.seen[key]; ok {
		return r
	}
	l.holding += amount
	l.seen[key] = ref
	return ref
}

func (l *bankLedger) Fund(_ context.Context, f *escrow.Funding) (string, error) {
	return l.once(f.IdempotencyKey, f.Amount.Minor, "F-"+f.Reference), nil
}

func (l *bankLedger) Release(_ context.Context, r *escrow.Release) (*escrow.Outcome, error) {
	return &escrow.Outcome{Done: true, Ref: l.once(r.IdempotencyKey, -r.Amount.Minor, "R-"+r.Reference)}, nil
}

func (l *bankLedger) Refund(_ context.Context, r *escrow.Refund) (string, error) {
	return l.once(r.IdempotencyKey, -r.Amount.Minor, "B-"+r.Reference), nil
}

// A bank adds escrow next to its native API: the engine over its adapter's
// database and its ledger; escrow.Services(e, directory) are the SOAP
// functions it registers with its connectors.Handler, its buyer page calls
// Pay and Confirm for the logged-in customer, and a timer calls Sweep.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "escrow-example")
	defer os.RemoveAll(dir)
	db, err := sqlstore.Open(ctx, "sqlite:"+filepath.Join(dir, "adapter.db"))
	if err != nil {
		panic(err)
	}
	defer db.Close()
	keys := filepath.Join("..", "..", "saml", "testdata", "keys")
	signer, err := saml.LoadSigner(filepath.Join(keys, "issuer-ec.key.pem"), filepath.Join(keys, "issuer-ec.cert.pem"))
	if err != nil {
		panic(err)
	}
	sealer, err := store.NewSealer(bytes.Repeat([]byte{1}, 32), nil) // the bank's at-rest key
	if err != nil {
		panic(err)
	}
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	ledger := &bankLedger{seen: map[string]string{}}
	e, err := escrow.New(ctx, escrow.Config{DB: db, Holder: ledger, Sealer: sealer, Signer: signer,
		Issuer: "https://bank-a.example.kr/kecis", Now: func() time.Time { return now }})
	if err != nil {
		panic(err)
	}

	// escrow:open, as escrow.Services decodes it from the merchant's request.
	x, err := e.Open(ctx, &escrow.OpenRequest{Merchant: "https://shop.example.kr/kecis", Order: "ORD-1001",
		Amount: ecml.Money{Minor: 150000, Currency: "KRW"}, Goods: true, SettlementBank: "081",
		SettlementAccount: "110-987-654321", IdempotencyKey: "open-ORD-1001"})
	if err != nil {
		panic(err)
	}
	fmt.Println("opened:", x.State)

	// The buyer pays on the bank's page, logged in as its customer.
	x, _ = e.Pay(ctx, "cust-1", x.Reference, "110-123-456789")
	fmt.Println("paid:", x.State, "held", ledger.holding)

	// escrow:ship, then nobody disputes for seven days: the sweep confirms.
	x, _ = e.Ship(ctx, "https://shop.example.kr/kecis", escrow.Ref{Order: "ORD-1001"}, "CJ대한통운", "601234567890", "ship-ORD-1001")
	fmt.Println("shipped:", x.State, "confirm by", x.ConfirmBy.Format(time.DateOnly))
	now = x.ConfirmBy
	rep, _ := e.Sweep(ctx)
	x, _ = e.Get(ctx, x.Reference)
	fmt.Println("swept:", x.State, "auto", x.Auto, "released", rep.Released, "held", ledger.holding)

	events, _ := e.Events(ctx, x.Reference)
	for _, ev := range events {
		fmt.Printf("%d %s %s→%s signed=%v\n", ev.Seq, ev.Kind, ev.From, ev.To, bytes.Contains(ev.Record, []byte("<ds:SignatureValue>")))
	}
	// Output:
	// opened: awaiting-payment
	// paid: funded held 150000
	// shipped: shipped confirm by 2026-12-10
	// swept: confirmed auto true released 1 held 0
	// 1 opened →awaiting-payment signed=true
	// 2 funded awaiting-payment→funded signed=true
	// 3 shipped funded→shipped signed=true
	// 4 confirmed shipped→confirmed signed=true
	// 5 released confirmed→confirmed signed=true
}

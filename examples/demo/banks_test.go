package demo

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/banking"
	"github.com/kecis/kecis/connectors/escrow"
	"github.com/kecis/kecis/connectors/phone"
	"github.com/kecis/kecis/connectors/twoway"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/examples/bank"
	"github.com/kecis/kecis/internal/testutil"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// startBanksDemo starts a demo without the tester and returns it with its
// logs (JSON, debug).
func startBanksDemo(t *testing.T) (*Demo, *testutil.SyncBuffer) {
	t.Helper()
	logs := &testutil.SyncBuffer{}
	d, err := Start(context.Background(), Config{Dir: t.TempDir(), RelayTimeout: 3 * time.Second,
		Log: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d, logs
}

// balance is an account's balance at its bank.
func balance(t *testing.T, b *Bank, login string) int64 {
	t.Helper()
	a, err := b.Bank.Account(context.Background(), b.Customer(login).Accounts[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	return a.Balance
}

// accountForms are the forms an account number may take in a row or a
// log line: as written (hyphenated) and its digits.
func accountForms(numbers ...string) []string {
	var out []string
	for _, n := range numbers {
		out = append(out, n, strings.ReplaceAll(n, "-", ""))
	}
	return out
}

// assertNoSecretInSQLite fails the test for every value of every table of
// a SQLite database that holds one of secrets (or a card number).
func assertNoSecretInSQLite(t *testing.T, path string, secrets ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if testutil.AssertNoSecretsInRows(t, db, nil, secrets...) == 0 {
		t.Fatalf("%s: no value read", path)
	}
}

// credit asks the payee's bank, found in the federation metadata by its
// code, to credit a SendOut of from's, through the hub (KECIS §15.8).
func credit(ctx context.Context, from *Bank, out *bank.Outgoing, number, remitter, key string) (*connectors.Result, error) {
	to, err := from.Resolver.RecipientFor(ctx, banking.ServiceCredit, "", out.ToBank)
	if err != nil {
		return nil, err
	}
	p, err := banking.CreditRequestPayload(&banking.CreditRequest{RemitterBank: from.Code, Reference: out.Reference, Amount: out.Amount,
		PayeeBank: out.ToBank, PayeeAccount: ecml.Secret(number), RemitterName: remitter})
	if err != nil {
		return nil, err
	}
	return from.Client.Do(ctx, connectors.Call{Recipient: to, Service: banking.ServiceCredit, IdempotencyKey: key, Payload: p})
}

// TestCrossBankTransfer: bank A sends money to bank B through the hub —
// SendOut at A, transfer:credit at B (found by its bank code), ConfirmOut
// at A; a repeat answers the same credit and moves nothing; an unknown
// account is refused "no such account" and A reverses its debit; A's
// inquiry finds the credit; A's holder inquiry is answered with the
// holder's name, a merchant's refused; the telecom answers A's holder
// checks (match, close-match, no-match) and refuses a merchant; and no
// account number is in clear in the hub's database or in any log.
func TestCrossBankTransfer(t *testing.T) {
	d, logs := startBanksDemo(t)
	ctx := context.Background()
	a, b := d.Banks[0], d.Banks[1]
	jiho, sora := a.Customer("jiho"), b.Customer("sora")
	if a.Code != "088" || b.Code != "089" || balance(t, a, "jiho") != 5_000_000 || balance(t, b, "sora") != 100_000 {
		t.Fatalf("banks: %s %s, balances %d %d", a.Code, b.Code, balance(t, a, "jiho"), balance(t, b, "sora"))
	}

	out, err := a.Bank.SendOut(ctx, bank.SendOutRequest{FromAccountID: jiho.Accounts[0].ID, ToBank: b.Code,
		ToNumber: ecml.Secret(sora.Accounts[0].Number), ToHolder: sora.Name, Amount: krw(30_000), IdempotencyKey: "x-1"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := credit(ctx, a, out, sora.Accounts[0].Number, jiho.Name, "credit-x-1")
	if err != nil || !res.Status.OK() || res.From != BankBID {
		t.Fatalf("credit: %v %+v", err, res)
	}
	c, err := banking.CreditFromPayload(res.Payload)
	if err != nil || c.State != banking.StateCredited || c.CreditRef == "" || c.Reference != out.Reference || c.Amount.Minor != 30_000 {
		t.Fatalf("credit answer: %v %+v", err, c)
	}
	if _, err := a.Bank.ConfirmOut(ctx, out.Reference, c.CreditRef); err != nil {
		t.Fatal(err)
	}
	// A repeat with the same key: the same credit, nothing moves twice.
	if again, err := credit(ctx, a, out, sora.Accounts[0].Number, jiho.Name, "credit-x-1"); err != nil || !again.Status.OK() {
		t.Fatalf("repeat: %v %+v", err, again)
	} else if c2, _ := banking.CreditFromPayload(again.Payload); c2.CreditRef != c.CreditRef {
		t.Fatalf("repeat answered another credit %q, want %q", c2.CreditRef, c.CreditRef)
	}
	if got, want := balance(t, a, "jiho"), int64(5_000_000-30_000); got != want {
		t.Fatalf("remitter's balance %d, want %d", got, want)
	}
	if got, want := balance(t, b, "sora"), int64(100_000+30_000); got != want {
		t.Fatalf("payee's balance %d, want %d", got, want)
	}
	inq, err := a.Client.Do(ctx, connectors.Call{Recipient: BankBID, Service: banking.ServiceInquire,
		Payload: &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion, ConsumerOrderID: out.Reference}}})
	if err != nil || !inq.Status.OK() {
		t.Fatalf("inquire: %v %+v", err, inq)
	}
	if ic, _ := banking.CreditFromPayload(inq.Payload); ic.State != banking.StateCredited || ic.CreditRef != c.CreditRef {
		t.Fatalf("inquire: %+v", ic)
	}

	// An unknown account at bank B: refused, and bank A reverses.
	const unknown = "0890-9999-0001"
	out2, err := a.Bank.SendOut(ctx, bank.SendOutRequest{FromAccountID: jiho.Accounts[0].ID, ToBank: b.Code,
		ToNumber: ecml.Secret(unknown), ToHolder: "?", Amount: krw(10_000), IdempotencyKey: "x-2"})
	if err != nil {
		t.Fatal(err)
	}
	res, err = credit(ctx, a, out2, unknown, jiho.Name, "credit-x-2")
	if err != nil || res.Status.OK() || res.Status.SubCode != saml.CodeDeclined || res.Status.Message != "no such account" {
		t.Fatalf("credit to an unknown account: %v %+v", err, res)
	}
	if _, err := a.Bank.ReverseOut(ctx, bank.ReverseOutRequest{Reference: out2.Reference, Reason: res.Status.Message, IdempotencyKey: "rev-x-2"}); err != nil {
		t.Fatal(err)
	}
	if got, want := balance(t, a, "jiho"), int64(5_000_000-30_000); got != want {
		t.Fatalf("after the reversal: balance %d, want %d", got, want)
	}

	// 예금주 조회: bank A is answered; a merchant is refused.
	hp := banking.HolderRequestPayload(b.Code, ecml.Secret(sora.Accounts[0].Number))
	res, err = a.Client.Do(ctx, connectors.Call{Recipient: BankBID, Service: banking.ServiceHolderInquiry, Payload: hp})
	if err != nil || !res.Status.OK() {
		t.Fatalf("holder inquiry: %v %+v", err, res)
	}
	if h, err := banking.HolderFromPayload(res.Payload); err != nil || h.Name != sora.Name || h.BankCode != b.Code {
		t.Fatalf("holder: %v %+v", err, h)
	}
	shop := d.Merchants[0].Client.C
	res, err = shop.Do(ctx, connectors.Call{Recipient: BankBID, Service: banking.ServiceHolderInquiry, Payload: hp})
	if err != nil || res.Status.OK() || res.Status.SubCode != saml.StatusRequestDenied {
		t.Fatalf("a merchant's holder inquiry: %v %+v", err, res)
	}

	// The telecom's holder check, for banks only (KECIS §15.10).
	for _, c := range b.Customers {
		if c.Payee == "" {
			continue // the shop's settlement account (its phone is its own: match)
		}
		r, err := a.PhoneClient().CheckHolder(ctx, TelecomID, c.Phone, c.Name)
		if err != nil || !r.OK() || string(r.Outcome) != c.Payee {
			t.Fatalf("holder check of %s: %v %+v, want %s", c.Login, err, r, c.Payee)
		}
	}
	if r, err := (&phone.Client{C: shop}).CheckHolder(ctx, TelecomID, sora.Phone, sora.Name); err != nil || r.OK() ||
		r.Result.Status.SubCode != saml.StatusRequestDenied {
		t.Fatalf("a merchant's holder check: %v %+v", err, r)
	}

	// No account number in clear in the hub's database, its logs or any
	// other log line.
	secrets := accountForms(sora.Accounts[0].Number, unknown, jiho.Accounts[0].Number)
	assertNoSecretInSQLite(t, filepath.Join(d.cfg.Dir, "hub", "hub.db"), secrets...)
	for _, s := range secrets {
		if strings.Contains(logs.String(), s) {
			t.Fatalf("an account number in clear in the logs: %s", fmt.Sprintf("…%s", s[len(s)-4:]))
		}
	}
}

// checkBanksManifest: demo.json's banks section names both banks with
// their codes, pages and customers (a remitter at bank A; at bank B one
// payee per name-check outcome), and the hub publishes each bank's
// transfer and holder-inquiry services for its own code, to banks only,
// and the telecom's holder check to banks only (KECIS §13.2) — in test
// mode to the demo's banks and the conformance suite's tester (not its
// second identity), which publishes TesterBankCode on a service it offers
// to nobody; bank A publishes its 2-WAY services too, for merchants and
// banks, and twoway:request's HTTP-POST endpoint (KECIS §15.5.1).
func checkBanksManifest(t *testing.T, d *Demo, m *Manifest) {
	t.Helper()
	if len(m.Banks) != 2 || m.Banks[0].Code != "088" || m.Banks[1].Code != "089" || m.Banks[0].EntityID != BankAID ||
		m.Banks[1].Name != "KECIS Bank B" || m.Banks[0].PageURL != d.Banks[0].URL+"/" || m.Addresses.BankB != d.Banks[1].URL ||
		m.Addresses.TelecomKECIS != d.TelecomKECIS || m.Banks[1].KECISURL != d.Banks[1].KECIS {
		t.Fatalf("banks: %+v %+v", m.Banks, m.Addresses)
	}
	e := m.Escrow
	if e.Bank != BankAID || e.BankCode != "088" || e.PagesURL != d.Banks[0].KECIS+EscrowPath+"/" || e.StartURL != d.ShopURL+shopCashPath ||
		e.ReturnURL != d.ShopURL+shopCashReturnPath || e.Merchant != MerchantID || e.SettlementBank != "089" ||
		e.SettlementAccount != ecml.MaskAccount("0890-3000-0001") || len(e.Products) != 2 || e.Products[0].Amount != 150_000 ||
		!slices.Equal(e.Services, escrowServiceNames) {
		t.Errorf("escrow section %+v", e)
	}
	var payees []string
	for _, c := range m.Banks[1].Customers {
		if c.Merchant != "" { // the shop's settlement account
			if c.Merchant != MerchantID || c.Payee != "" || c.Login != m.Escrow.SettlementLogin || len(c.Accounts) != 1 {
				t.Errorf("the shop's account holder %+v", c)
			}
			continue
		}
		payees = append(payees, c.Payee)
		if c.Password == "" || len(c.Accounts) != 1 || c.Accounts[0].Number == "" || !strings.HasPrefix(c.PhoneURL, d.TelecomURL+"/phones/") {
			t.Errorf("customer %+v", c)
		}
	}
	if want := []string{PayeeMatch, PayeeCloseMatch, PayeeNoMatch}; !slices.Equal(payees, want) {
		t.Errorf("payees %v, want %v", payees, want)
	}
	ctx := context.Background()
	tester := d.cfg.Tester
	banksOnly, banksIDs := []metadata.Role{metadata.RoleBank}, []string(nil)
	twoWay, twoWayIDs := []metadata.Role{metadata.RoleMerchant, metadata.RoleBank}, []string(nil)
	escrows, escrowIDs := []metadata.Role{metadata.RoleMerchant}, []string(nil)
	if tester {
		escrows, escrowIDs = append(escrows, metadata.RoleTester), []string{MerchantID, Merchant2ID, TesterID, SecondTesterID}
		banksOnly, banksIDs = append(banksOnly, metadata.RoleTester), []string{BankAID, BankBID, TesterID}
		twoWay, twoWayIDs = append(twoWay, metadata.RoleTester), []string{MerchantID, Merchant2ID, BankAID, BankBID, TesterID}
		p, err := d.HubStore.GetParticipant(ctx, TesterID)
		if err != nil {
			t.Fatal(err)
		}
		ed, err := metadata.Parse(p.Metadata)
		if err != nil {
			t.Fatal(err)
		}
		if len(ed.Services) != 1 || ed.Services[0].Service != banking.ServiceCredit || !slices.Equal(ed.Services[0].BankCodes, []string{TesterBankCode}) ||
			len(ed.Services[0].Callers) != 0 {
			t.Errorf("the tester offers %+v", ed.Services)
		}
		if ep, ok := ed.Endpoint(twoway.ServiceRequest, saml.BindingHTTPPOST); !ok || ep.Location != testerFrontEndpoint(TesterID) {
			t.Errorf("the tester's twoway:request endpoint: %+v", ep)
		}
	}
	for id, codes := range map[string][]string{BankAID: {"088"}, BankBID: {"089"}, TelecomID: nil} {
		p, err := d.HubStore.GetParticipant(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		ed, err := metadata.Parse(p.Metadata)
		if err != nil {
			t.Fatal(err)
		}
		var services []string
		for _, s := range ed.Services {
			services = append(services, s.Service)
			callers, ids, bankCodes := banksOnly, banksIDs, codes
			if s.Service == twoway.ServiceRequest || s.Service == twoway.ServiceStatus {
				callers, ids, bankCodes = twoWay, twoWayIDs, nil
			}
			if slices.Contains(escrowServiceNames, s.Service) {
				callers, ids, bankCodes = escrows, escrowIDs, nil
			}
			if !slices.Equal(s.Callers, callers) || !slices.Equal(s.CallerEntities, ids) || !slices.Equal(s.BankCodes, bankCodes) {
				t.Errorf("%s %s: callers %v %v, bank codes %v", id, s.Service, s.Callers, s.CallerEntities, s.BankCodes)
			}
		}
		want := []string{banking.ServiceCredit, banking.ServiceInquire, banking.ServiceHolderInquiry}
		switch id {
		case TelecomID:
			want = []string{phone.ServiceHolderCheck}
		case BankAID:
			want = append(want, twoway.ServiceRequest, twoway.ServiceStatus)
			want = append(want, escrowServiceNames...)
			if ep, ok := ed.Endpoint(escrow.ServicePay, saml.BindingHTTPPOST); !ok || ep.Location != d.Banks[0].EscrowPayURL ||
				ep.Location != m.Escrow.PayURL || !strings.HasPrefix(ep.Location, d.Banks[0].KECIS+EscrowPath+"/") {
				t.Errorf("bank A's escrow:pay endpoint: %+v", ep)
			}
			if ep, ok := ed.Endpoint(twoway.ServiceRequest, saml.BindingHTTPPOST); !ok || ep.Location != d.Banks[0].TwoWayRequestURL ||
				!strings.HasPrefix(ep.Location, d.Banks[0].KECIS+"/") {
				t.Errorf("bank A's twoway:request endpoint: %+v", ep)
			}
		}
		if !slices.Equal(services, want) {
			t.Errorf("%s offers %v, want %v", id, services, want)
		}
	}
}

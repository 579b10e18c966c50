package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kecis/kecis/connectors/sqlstore"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/examples/demo"
)

type demoAddrs struct {
	hub, ops, issuer, native, telecom, pgNative, pgKECIS, pgCall, pgPage, shop string
	// issuerPage and issuerCert are the issuer's cardholder-authentication page and its mutual-TLS endpoint.
	issuerPage, issuerCert string
	// telecomKECIS is the telecom's KECIS endpoint; bankA, bankB the
	// banks' own APIs and pages, bankAKECIS, bankBKECIS their KECIS
	// endpoints.
	telecomKECIS, bankA, bankAKECIS, bankB, bankBKECIS string
}

// demoOptions are the demo's other flags: --tester (register the
// conformance suite and write its profiles), --relay-timeout, --postgres
// (the hub's database) and --aa-method (what the cardholder types).
type demoOptions struct {
	tester       bool
	relayTimeout time.Duration
	postgres     string
	aaMethod     string
}

// runFederationDemo starts the demo federation, prints the guide and waits
// for ctx. ready, when set, receives the demo once it is up (tests).
func runFederationDemo(ctx context.Context, w io.Writer, dir string, a demoAddrs, o demoOptions, ready chan<- *demo.Demo) error {
	if ctx == nil {
		ctx = context.Background()
	}
	logFile, err := openDemoLog(dir)
	if err != nil {
		return err
	}
	defer logFile.Close()
	d, err := demo.Start(ctx, demo.Config{Dir: dir, HubListen: a.hub, HubOps: a.ops, IssuerKECIS: a.issuer, IssuerNative: a.native, Telecom: a.telecom,
		PGNative: a.pgNative, PGKECIS: a.pgKECIS, PGCall: a.pgCall, PGPage: a.pgPage, Shop: a.shop, IssuerPage: a.issuerPage, IssuerCert: a.issuerCert, AmountAuthMethod: o.aaMethod,
		TelecomKECIS: a.telecomKECIS, BankA: a.bankA, BankAKECIS: a.bankAKECIS, BankB: a.bankB, BankBKECIS: a.bankBKECIS,
		AllowClearCard: true, Tester: o.tester, RelayTimeout: o.relayTimeout, Postgres: o.postgres, Log: slog.New(slog.NewJSONHandler(logFile, nil))})
	if err != nil {
		return err
	}
	defer d.Close()
	c, m := d.Cards[0], d.Merchants[0]
	var shops strings.Builder
	for _, s := range d.Merchants {
		fmt.Fprintf(&shops, "  %-15s %s\n", s.Name, s.EntityID)
	}
	state := dir
	if o.postgres != "" {
		state += "; the hub's database: " + sqlstore.RedactDSN(d.Hub.Config.Database.DSN)
	}
	fmt.Fprintf(w, `KECIS demo federation is up (state and logs in %s).

  hub             %s   (metadata: %s/kecis/metadata, ops: %s/readyz)
  payment gateway %s   (its own API; it joins KECIS through the sidecar at %s)
  card issuer     %s   (its own API; admin page: %s/admin)
  mobile carrier  %s/phones   (the cardholders' phones and their texts)

Merchants (each with its own API key and TLS client certificate):
%s
Everything a script needs — the hub's URL and CA, the merchants' API keys and
certificates, the test cards, every participant's keys, the addresses bound —
is in %s (docs/demo.md).

NOTE: the demo hub's JSON facade accepts card numbers in clear (development
mode): the hub encrypts them for the issuer at once. A production hub refuses
them; merchants' pages encrypt the card for the provider in the browser.

Test card: %s, expires %02d/%d, holder %s, phone %s (%s)

%s
Approvals settle at the issuer's 23:00 KST cut-off; to refund one now, end
the issuer's business day (docs/demo.md, "The demo's clock"):
  kecis-demo --settle --dir %s     (or: curl -X POST %s)

Approve a card payment as %s through the hub's JSON facade (merchant → hub →
PG, through its sidecar → hub → issuer); with another merchant's api_key from
demo.json, the same line pays that merchant:

%s

Then open the holder's phone to see the issuer's approval text:
  %s/phones/%s
%s%s
Press Ctrl-C to stop.
`, state, d.HubURL, d.HubURL, d.HubOps, d.PGNative, d.PGKECIS, d.IssuerNative, d.IssuerNative, d.TelecomURL,
		shops.String(), filepath.Join(dir, demo.ManifestFile),
		c.PAN.Reveal(), c.ExpMonth, c.ExpYear, c.Holder, c.Phone, c.Description,
		testCardTable(d), dir, d.IssuerNative+demo.SettlePath,
		m.Name, curlLine(d, m, c), d.TelecomURL, strings.ReplaceAll(c.Phone, "-", ""), amountAuthGuide(d, c)+cardAuthGuide(d, dir)+bankGuide(d)+escrowGuide(d), conformanceNote(dir, o))
	if ready != nil {
		ready <- d
	}
	<-ctx.Done()
	fmt.Fprintln(w, "stopping")
	return nil
}

// sqliteWriters is how many SQLite databases the demo writes, for
// sqlstore.RaiseProcs: the hub's (unless --postgres), the issuer's (its
// adapter's store shares it), the PG's and its sidecar's store, the
// telecom's and its adapter's, and each of the two banks' and its
// adapter's. TestDemoSQLiteWriters counts the files.
func sqliteWriters(o demoOptions) int {
	n := 10
	if o.postgres != "" {
		n--
	}
	return n
}

func openDemoLog(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return os.OpenFile(filepath.Join(dir, "demo.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
}

// curlLine is a shell command that approves 15,000 KRW on the test card as
// merchant m, with a fresh order and idempotency key each time it runs.
func curlLine(d *demo.Demo, m *demo.Merchant, c demo.TestCard) string {
	body := fmt.Sprintf(`{"fields":{"Ecom_ConsumerOrderID":"ORDER-'"$T"'","Ecom_Transaction_Amount":"15000","Ecom_Transaction_CurrencyCode":"KRW","Ecom_Transaction_Type":"credit","Ecom_Payment_Card_Number":"%s","Ecom_Payment_Card_ExpDate_Month":"%02d","Ecom_Payment_Card_ExpDate_Year":"%d"}}`,
		c.PAN.Reveal(), c.ExpMonth, c.ExpYear)
	// T is seconds.nanoseconds: no run of 13 or more digits, which the hub
	// would read as a card number in the order number.
	return fmt.Sprintf("  T=$(date +%%s.%%N); curl -sS --cacert %s %s/v1/card/approve \\\n"+
		"    -H 'Authorization: Bearer %s' -H \"Idempotency-Key: demo-$T\" -H 'Content-Type: application/json' \\\n"+
		"    -d '%s'", d.HubTLSCert, d.HubURL, m.APIKey, body)
}

// testCardTable lists the test cards, one per outcome (docs/merchant.md).
func testCardTable(d *demo.Demo) string {
	var b strings.Builder
	b.WriteString("Test cards, one per outcome (demo.json test_cards, docs/merchant.md):\n")
	fmt.Fprintf(&b, "  %-18s %-16s %-7s %7s  %s\n", "outcome", "number", "expiry", "amount", "sub_status")
	for _, c := range d.Cards {
		sub := c.SubStatus
		switch {
		case c.Problem != "":
			sub = "the hub refuses it: problem " + c.Problem + " (HTTP 400)"
		case sub == "":
			sub = "- (Success)"
		}
		if c.Result == demo.CardIssuerTimeout {
			sub += ", then inquire: approved"
		}
		fmt.Fprintf(&b, "  %-18s %-16s %02d/%d %7d  %s\n", c.Result, c.PAN.Reveal(), c.ExpMonth, c.ExpYear, c.Amount, sub)
	}
	return b.String()
}

// amountAuthGuide walks a person through a purchase with amount
// authentication at the demo shop (docs/demo.md, "Amount
// authentication"), with test card c and the holder's phone.
func amountAuthGuide(d *demo.Demo, c demo.TestCard) string {
	aa := d.AmountAuth()
	what, text := "that amount", `"[KECIS Card] 승인 3,417원 `+d.Merchants[0].Name+` …", a small random amount`
	if aa.Method == "descriptor" {
		what, text = "that code", `"[KECIS Card] 승인 1,234원 `+d.Merchants[0].Name+` 482193 …", a code after the shop's name`
	}
	return fmt.Sprintf(`
Amount authentication (docs/amountauth.md): the card company texts the holder
a small random approval, and the buyer proves they hold the card's phone by
typing it in — no plugin, any browser:
  1. open the demo shop's checkout:  %s
  2. keep the card %s (%s) and press "Pay with amount authentication":
     the shop sends the browser to the PG's page (%s)
  3. open the holder's phone:        %s/phones/%s
     the newest text reads %s
  4. type %s on the PG's page: the small approval is cancelled, the purchase
     approved, and the browser returns to the shop showing its approval number.
%d wrong entries, or %s without one, end it with nothing charged (the small
approval cancelled too). A script starts one with POST %s
(demo.json amountauth, docs/demo.md).
`, aa.CheckoutURL, c.PAN.Masked(), c.Holder, aa.PageURL, d.TelecomURL, strings.ReplaceAll(c.Phone, "-", ""), text, what,
		aa.Attempts, shortDuration(time.Duration(aa.TimeoutSeconds)*time.Second), aa.StartURL)
}

// cardAuthGuide walks a person through a purchase with the issuer's
// cardholder authentication at the demo shop (docs/demo.md, "Cardholder
// authentication") with the first test card's credentials.
func cardAuthGuide(d *demo.Demo, dir string) string {
	ca := d.CardAuth()
	if len(ca.Cards) == 0 {
		return ""
	}
	c := ca.Cards[0]
	return fmt.Sprintf(`
Cardholder authentication (docs/cardauth.md): the card company authenticates
its cardholder on its own page; from %s a second factor too:
  1. open the demo shop's checkout:  %s  ("Pay with card authentication")
  2. choose KECIS Card and a product (%s, or %s for the second factor),
     and "Pay with a virtual card number" for a number the PG may see
  3. on the card company's page type %s and the password %s;
     then the TOTP code of the seed %s
     (demo.json cardauth.cards[].totp_uri), or "Use my certificate" with
     %s (password %s) imported into the browser
The shop then pays through the PG with the card company's authentication value.
`, won(ca.Threshold), ca.CheckoutURL, productLine(ca.Products, 0), productLine(ca.Products, 1), c.Number, c.Password, c.TOTPSeed,
		filepath.Join(dir, c.PKCS12), c.PKCS12Password)
}

// bankGuide names the demo's banks, their pages and customers (demo.json
// banks[], docs/demo.md "Banks").
func bankGuide(d *demo.Demo) string {
	if len(d.Banks) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("\nBanks (docs/demo.md, \"Banks\"; passwords and account numbers in demo.json banks[]):\n")
	for _, bk := range d.Banks {
		fmt.Fprintf(&b, "  %s (%s)  %s/   (admin: %s/admin)\n", bk.Name, bk.Code, bk.URL, bk.URL)
		if bk.TwoWayURL != "" {
			fmt.Fprintf(&b, "    2-WAY transfer (the payee confirms by text): %s\n", bk.TwoWayURL)
		}
		for _, c := range bk.Customers {
			role := "remitter"
			switch {
			case c.Merchant != "":
				role = "the demo shop's settlement account"
			case c.Payee != "":
				role = "payee, name check " + c.Payee
			}
			// The terminal shows no secret: the password and the whole
			// account number are in demo.json.
			fmt.Fprintf(&b, "    %-8s %-13s %s  account %s  (%s)\n", c.Login, c.Name, c.Phone, ecml.MaskAccount(c.Accounts[0].Number), role)
		}
	}
	return b.String()
}

// escrowGuide walks a person through a cash purchase that the hub's
// payment policy steers into escrow (docs/escrow.md, "In the demo").
func escrowGuide(d *demo.Demo) string {
	e := d.Escrow()
	if e.PayURL == "" || len(e.Products) < 2 || len(d.Banks) == 0 || len(d.Banks[0].Customers) == 0 {
		return ""
	}
	buyer := d.Banks[0].Customers[0]
	return fmt.Sprintf(`
Escrow (docs/escrow.md): a cash purchase of %s of shipped goods is steered into
escrow by the hub's payment policy (kr-2006):
  1. at the demo shop's checkout %s choose "Cash (account transfer)", %s;
     the hub refuses transfer:collect (PolicyViolation) and the shop opens escrow:open
  2. on %s's page log in as %s (demo.json banks[0].customers) and pay;
     "Return to the shop", then "Mark shipped" on the shop's order page
  3. confirm receipt at %s: the money goes to the shop's
     account %s at bank %s (log in there as %s to see it)
%s goes through transfer:collect directly.
`, won(e.Products[0].Amount), e.CheckoutURL, productLine(e.Products, 0), d.Banks[0].Name, buyer.Login, e.PagesURL,
		e.SettlementAccount, e.SettlementBank, e.SettlementLogin, productLine(e.Products, 1))
}

// productLine is a checkout product as the guide names it.
func productLine(ps []demo.ManifestProduct, i int) string {
	if i >= len(ps) {
		return ""
	}
	return ps[i].Name + " at " + won(ps[i].Amount)
}

// won writes a KRW amount: 15,000원.
func won(n int64) string { return ecml.Money{Minor: n, Currency: "KRW"}.Display() }

// shortDuration writes d without its zero seconds or minutes: 5m, 1h, 90s
// as 1m30s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// conformanceNote tells, in test mode, how to run the conformance suite
// against the demo.
func conformanceNote(dir string, o demoOptions) string {
	if !o.tester {
		return ""
	}
	return fmt.Sprintf(`
The conformance suite's tester is registered, with a test profile per plan in
%s: in another shell, run every plan against this demo
(docs/conformance.md, "Against the demo"):
  make conformance     (or: kecis-demo --conformance --dir %s)
`, filepath.Join(dir, demo.ConformanceDir), dir)
}

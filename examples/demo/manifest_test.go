package demo

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/amountauth"
	"github.com/kecis/kecis/connectors/card"
	"github.com/kecis/kecis/connectors/cardauth"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// TestManifestAndCallers: a demo in test mode writes demo.json (0600,
// paths relative to its directory, every key file present, the tester
// among the participants) and removes it on Close; every service the
// demo's providers offer declares its callers: the issuer takes card:*
// from the PG and the tester — card:approve-verification from the PG
// alone —, the PG card:* and amountauth:* from the demo's merchants and
// the tester (KECIS §13.2); the PG publishes its amount-authentication
// page with the HTTP-POST binding (KECIS §15.3.2), and the hub routes each
// merchant's card and amountauth requests to the PG.
func TestManifestAndCallers(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d, err := Start(ctx, Config{Dir: dir, Tester: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	fi, err := os.Stat(d.Manifest)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("demo.json: %v %v", err, fi)
	}
	m, err := ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.HubURL != d.HubURL || m.HubEntityID != HubID || m.Addresses.PGKECIS != d.PGKECIS || m.Addresses.Telecom != d.TelecomURL {
		t.Fatalf("manifest: %+v", m)
	}
	if len(m.Merchants) != 2 || m.Merchants[1].EntityID != Merchant2ID || m.Merchants[1].APIKey != d.Merchants[1].APIKey || m.Merchants[0].APIKey == m.Merchants[1].APIKey {
		t.Fatalf("merchants: %+v", m.Merchants)
	}
	if len(m.Cards) != 2 || m.Cards[0].Number != d.Cards[0].PAN.Reveal() || m.Cards[1].Outcome != OutcomeLimitExceeded {
		t.Fatalf("cards: %+v", m.Cards)
	}
	// test_cards: one card per outcome, the first two those of cards[].
	var outcomes []string
	for i, c := range m.TestCards {
		outcomes = append(outcomes, c.Outcome)
		if c.Number != d.Cards[i].PAN.Reveal() || c.Amount <= 0 || c.Currency != "KRW" || (c.SubStatus == "" && c.Problem == "") != (c.Outcome == CardApproved) {
			t.Errorf("test card %d: %+v", i, c)
		}
	}
	if want := []string{CardApproved, CardLimitExceeded, CardDeclined, CardInsufficientFunds, CardExpired, CardLostStolen, CardIssuerTimeout}; !slices.Equal(outcomes, want) {
		t.Fatalf("test card outcomes %v, want %v", outcomes, want)
	}
	if m.SettleURL != d.IssuerNative+SettlePath {
		t.Fatalf("settle_url %q", m.SettleURL)
	}
	var ids []string
	for _, p := range m.Participants {
		ids = append(ids, p.EntityID)
		files := []string{p.SigningCert, p.SigningKey, p.TLSCert, p.TLSKey}
		if p.EntityID != HubID {
			files = append(files, p.EncryptionCert, p.EncryptionKey)
		}
		for _, f := range files {
			if !filepath.IsAbs(f) {
				t.Fatalf("ReadManifest left %q relative", f)
			}
			if _, err := os.Stat(f); err != nil {
				t.Fatalf("%s: %v", p.EntityID, err)
			}
		}
	}
	if want := []string{HubID, IssuerID, PGID, MerchantID, Merchant2ID, TesterID, SecondTesterID, TelecomID, BankAID, BankBID}; !slices.Equal(ids, want) {
		t.Fatalf("participants %v, want %v", ids, want)
	}

	want := map[string]metadata.OfferedService{
		IssuerID: {Callers: []metadata.Role{metadata.RolePG, metadata.RoleTester}, CallerEntities: []string{PGID, TesterID, SecondTesterID}},
		PGID:     {Callers: []metadata.Role{metadata.RoleMerchant, metadata.RoleTester}, CallerEntities: []string{MerchantID, Merchant2ID, TesterID, SecondTesterID}},
	}
	pgOnly := metadata.OfferedService{Callers: []metadata.Role{metadata.RolePG}, CallerEntities: []string{PGID}}
	merchantsToo := metadata.OfferedService{Callers: []metadata.Role{metadata.RoleMerchant, metadata.RoleTester},
		CallerEntities: []string{MerchantID, TesterID, SecondTesterID}}
	offers := map[string][]string{}
	for id, w := range want {
		p, err := d.HubStore.GetParticipant(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		ed, err := metadata.Parse(p.Metadata)
		if err != nil {
			t.Fatal(err)
		}
		if len(ed.Services) == 0 {
			t.Fatalf("%s offers nothing", id)
		}
		for _, s := range ed.Services {
			offers[id] = append(offers[id], s.Service)
			w := w
			switch s.Service {
			case card.ServiceApproveVerification:
				w = pgOnly
			case cardauth.ServiceAuthenticate, cardauth.ServiceVCNIssue:
				w = merchantsToo
			}
			if !slices.Equal(s.Callers, w.Callers) || !slices.Equal(s.CallerEntities, w.CallerEntities) {
				t.Errorf("%s %s: callers %v %v, want %v %v", id, s.Service, s.Callers, s.CallerEntities, w.Callers, w.CallerEntities)
			}
		}
		if id == PGID {
			if ep, ok := ed.Endpoint(amountauth.ServiceConfirm, saml.BindingHTTPPOST); !ok || ep.Location != m.AmountAuth.PageURL {
				t.Errorf("the PG's amount-authentication page in its metadata: %+v, want %s", ep, m.AmountAuth.PageURL)
			}
		}
	}
	if !slices.Contains(offers[IssuerID], card.ServiceApproveVerification) || !slices.Contains(offers[PGID], amountauth.ServiceStart) ||
		!slices.Contains(offers[PGID], amountauth.ServiceStatus) || !slices.Contains(offers[PGID], amountauth.ServiceConfirm) {
		t.Errorf("the offers: %v", offers)
	}
	rules, err := d.HubStore.ListRoutingRules(ctx)
	if err != nil {
		t.Fatal(err)
	}
	routed := map[string]string{}
	for _, r := range rules {
		routed[r.Merchant+" "+r.Service] = r.Target
	}
	for _, mer := range d.Merchants {
		for _, g := range []string{"urn:kecis:service:card:", "urn:kecis:service:amountauth:"} {
			if routed[mer.EntityID+" "+g] != PGID {
				t.Errorf("%s's %s* requests are routed to %q", mer.Name, g, routed[mer.EntityID+" "+g])
			}
		}
	}

	checkCardAuthManifest(t, d, m)
	checkBanksManifest(t, d, m)

	d.Close()
	if _, err := os.Stat(d.Manifest); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("demo.json outlives the demo: %v", err)
	}
	// Started again in its directory, the demo keeps the cards and their
	// cardholder-authentication credentials: the same numbers, passwords,
	// TOTP seeds and PKCS#12 files.
	p12, err := os.ReadFile(m.CardAuth.Cards[0].PKCS12)
	if err != nil {
		t.Fatal(err)
	}
	d2, err := Start(ctx, Config{Dir: dir, Tester: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	m2, err := ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	// The banks' customers, accounts and test deposits are made once.
	if !slices.EqualFunc(m2.Banks, m.Banks, func(a, b ManifestBank) bool {
		return a.Code == b.Code && a.AdminToken == b.AdminToken && slices.EqualFunc(a.Customers, b.Customers, func(x, y ManifestBankCustomer) bool {
			return x.Login == y.Login && slices.Equal(x.Accounts, y.Accounts)
		})
	}) {
		t.Fatalf("the banks changed across a restart:\n%+v\n%+v", m.Banks, m2.Banks)
	}
	if got := balance(t, d2.Banks[0], "jiho"); got != 5_000_000 {
		t.Fatalf("after a restart the remitter's balance is %d: funded twice?", got)
	}
	if !slices.Equal(m2.CardAuth.Cards, m.CardAuth.Cards) {
		t.Fatalf("the credentials changed across a restart:\n%+v\n%+v", m.CardAuth.Cards, m2.CardAuth.Cards)
	}
	if again, err := os.ReadFile(m2.CardAuth.Cards[0].PKCS12); err != nil || !bytes.Equal(again, p12) {
		t.Fatalf("the PKCS#12 file was issued again: %v", err)
	}
}

// checkCardAuthManifest: demo.json's cardauth section names the shop's
// checkout and return endpoint, the issuer's page and mutual-TLS
// endpoint, the default policy's threshold, the cardholder CA and each
// test card's credentials — a password, a TOTP seed and its otpauth URI,
// and for an active card a PKCS#12 file that opens with its password and
// chains to the CA; the hub publishes the issuer's and the shop's HTTP-POST
// endpoints of the services (KECIS §15.7.1) and the virtual BINs among the
// issuer's card services' (KECIS §15.4).
func checkCardAuthManifest(t *testing.T, d *Demo, m *Manifest) {
	t.Helper()
	ca := m.CardAuth
	if ca.CheckoutURL != d.ShopURL+"/" || ca.StartURL != d.ShopURL+shopCardAuthPath || ca.ReturnURL != d.ShopURL+shopCardAuthReturnPath ||
		ca.PageURL != d.IssuerPage+CardAuthPagePath || ca.CertURL != d.IssuerCert+CardAuthCertPath || ca.Threshold != 100_000 ||
		ca.Currency != "KRW" || ca.Merchant != MerchantID || ca.Acquirer != PGID || ca.Issuer != IssuerID || len(ca.Products) != 2 ||
		ca.Products[0].Amount >= ca.Threshold || ca.Products[1].Amount < ca.Threshold || ca.TesterReturnURL == "" ||
		m.Addresses.IssuerPage != d.IssuerPage || m.Addresses.IssuerCert != d.IssuerCert || len(ca.Cards) != len(d.Cards) {
		t.Fatalf("demo.json cardauth: %+v", ca)
	}
	caPEM, err := os.ReadFile(ca.CACert)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	for i, c := range ca.Cards {
		if c.Number != m.TestCards[i].Number || c.Password == "" || c.TOTPSeed == "" || !strings.HasPrefix(c.TOTPURI, "otpauth://totp/") ||
			c.PKCS12Password == "" || (c.PKCS12 != "") != (m.TestCards[i].Status == "active" && m.TestCards[i].Outcome != CardExpired) {
			t.Errorf("cardauth.cards[%d]: %+v (test card %+v)", i, c, m.TestCards[i])
			continue
		}
		if c.PKCS12 == "" {
			continue
		}
		b, err := os.ReadFile(c.PKCS12)
		if err != nil {
			t.Fatal(err)
		}
		_, cert, _, err := pkcs12.DecodeChain(b, c.PKCS12Password)
		if err != nil {
			t.Fatalf("cardauth.cards[%d].pkcs12: %v", i, err)
		}
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("cardauth.cards[%d]'s certificate: %v", i, err)
		}
	}
	ctx := context.Background()
	dir := d.directory()
	for _, w := range []struct{ who, service, url string }{
		{IssuerID, cardauth.ServiceAuthenticate, ca.PageURL}, {IssuerID, cardauth.ServiceVCNIssue, ca.PageURL},
		{MerchantID, cardauth.ServiceAuthenticate, ca.ReturnURL}, {TesterID, cardauth.ServiceAuthenticate, ca.TesterReturnURL},
	} {
		if got, err := connectors.PostEndpoint(ctx, dir, w.who, w.service); err != nil || got != w.url {
			t.Errorf("%s's HTTP-POST endpoint for %s at the hub: %q %v, want %s", w.who, w.service, got, err, w.url)
		}
	}
	ed, err := dir.Lookup(ctx, IssuerID)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range ed.Services {
		if s.Service == card.ServiceApprove && !slices.ContainsFunc(s.BINs, func(r metadata.BINRange) bool { return r.From == "404143" }) {
			t.Errorf("the issuer's card:approve BINs %v lack the virtual credit BIN", s.BINs)
		}
	}
}

// TestReachable: a listener bound to a wildcard address is published on
// loopback, of its family; any other address as bound.
func TestReachable(t *testing.T) {
	for _, c := range []struct {
		addr *net.TCPAddr
		want string
	}{
		{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8443}, "127.0.0.1:8443"},
		{&net.TCPAddr{IP: net.IPv4zero, Port: 8443}, "127.0.0.1:8443"},
		{&net.TCPAddr{IP: net.IPv6unspecified, Port: 1}, "[::1]:1"},
		{&net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 9}, "192.0.2.7:9"},
	} {
		if got := reachable(c.addr); got != c.want {
			t.Errorf("reachable(%v) = %s, want %s", c.addr, got, c.want)
		}
	}
}

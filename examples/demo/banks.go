package demo

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/banking"
	"github.com/kecis/kecis/connectors/escrow"
	"github.com/kecis/kecis/connectors/phone"
	"github.com/kecis/kecis/connectors/sms"
	"github.com/kecis/kecis/connectors/store"
	"github.com/kecis/kecis/connectors/store/sqlitestore"
	"github.com/kecis/kecis/connectors/twoway"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/examples/bank"
	bankadapter "github.com/kecis/kecis/examples/bank/kecisadapter"
	"github.com/kecis/kecis/examples/telecom"
	telecomadapter "github.com/kecis/kecis/examples/telecom/kecisadapter"
	"github.com/kecis/kecis/internal/devpki"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// The banks of the demo (KECIS §15.8, §15.9) and the telecom as a
// participant (§15.10): two simulated banks, each with its own database,
// native API and pages, and its KECIS endpoint (the SDK's Handler over
// examples/bank/kecisadapter); the mobile carrier answers phone holder
// checks on a KECIS endpoint of its own.

// Entity IDs of the banks and of the telecom.
const (
	BankAID   = "https://bank-a.kecis.test/kecis"
	BankBID   = "https://bank-b.kecis.test/kecis"
	TelecomID = "https://telecom.kecis.test/kecis"
)

const telecomName = "KECIS Mobile (demo telecom)"

// Payee kinds of a bank's customer (demo.json banks[].customers[].payee):
// what the 2-WAY name check answers when a remitter names the customer's
// account and phone (KECIS §15.5, §15.10).
const (
	PayeeMatch      = "match"       // the phone's holder is the account's holder
	PayeeCloseMatch = "close-match" // the telecom holds the name with family and given name swapped
	PayeeNoMatch    = "no-match"    // the phone is someone else's
)

// BankCustomer is a customer of a demo bank: its page login, its name, its
// registered phone (a subscriber of the telecom) and accounts.
type BankCustomer struct {
	Login, Password string
	Name, Phone     string
	// PhoneHolder is the name the telecom holds for Phone ("" is Name).
	PhoneHolder string
	// Payee is PayeeMatch, PayeeCloseMatch or PayeeNoMatch for a payee of
	// the 2-WAY demo, "" for a remitter.
	Payee string
	// Merchant is the entityID of the merchant whose settlement account
	// the customer's is (the shop's account at bank B, where escrows are
	// released; "" for a person).
	Merchant string
	Accounts []BankAccount
	// ID is the customer's id at its bank, once registered.
	ID string
}

// BankAccount is a demo account: its number (demo data, in clear in
// demo.json only), the bank's id and the test deposit it was funded with.
type BankAccount struct {
	Number  string
	Deposit int64
	ID      string
}

// Bank is one of the demo's banks.
type Bank struct {
	EntityID, Name, Code string
	// Dir holds its keys (signing/, encryption/, tls/), database and
	// secrets.
	Dir string
	// URL is its native API and pages (http), KECIS its KECIS endpoint
	// (https, /kecis/soap).
	URL, KECIS string
	// AdminToken guards its native API and admin page.
	AdminToken string
	Bank       *bank.Bank
	Customers  []*BankCustomer
	// Client calls through the hub as the bank; Resolver finds a bank
	// code's bank in the federation metadata.
	Client   *connectors.Client
	Resolver *connectors.Resolver
	// TwoWay is the bank's 2-WAY engine (KECIS §15.5) when it runs the
	// remitter's pages (bank A); TwoWayURL those pages, on its native
	// listener under TwoWayPath.
	TwoWay    *twoway.Engine
	TwoWayURL string
	// TwoWayRequestURL is where twoway:request arrives over HTTP-POST
	// (KECIS §15.5.1): the 2-WAY pages on the bank's KECIS listener
	// (HTTPS), as its metadata publishes it.
	TwoWayRequestURL string
	// twoWay: the bank runs the 2-WAY pages.
	twoWay bool
	// Escrow is the bank's escrow engine (KECIS §15.6, escrow.go) when it
	// holds escrows (bank A); EscrowURL its buyer's pages ("my escrow
	// payments"), EscrowPayURL their entry, the HTTP-POST endpoint of
	// escrow:pay in its metadata — both on its KECIS listener (HTTPS).
	Escrow                  *escrow.Engine
	EscrowURL, EscrowPayURL string
	// escrow: the bank holds escrows.
	escrow bool
	// sender is its SMS sender account at the telecom.
	sender telecom.SenderAccount
	// listen, kecisListen are the addresses of its listeners.
	listen, kecisListen string
}

// Customer returns the bank's customer with login.
func (b *Bank) Customer(login string) *BankCustomer {
	for _, c := range b.Customers {
		if c.Login == login {
			return c
		}
	}
	return nil
}

// demoBanks are the demo's banks and their customers: bank A's remitters,
// bank B's payees (one per name-check outcome), all subscribers of the
// telecom.
func demoBanks(cfg Config) []*Bank {
	return []*Bank{
		{EntityID: BankAID, Name: "KECIS Bank A", Code: "088", listen: cfg.BankA, kecisListen: cfg.BankAKECIS, twoWay: true, escrow: true,
			sender: telecom.SenderAccount{ID: "kecis-bank-a", Name: "KECIS Bank A", Numbers: []string{"15880088"}},
			Customers: []*BankCustomer{
				{Login: "jiho", Password: "jiho-demo-pw", Name: "Kim Jiho", Phone: "010-8800-0001",
					Accounts: []BankAccount{{Number: "0880-1000-0001", Deposit: 5_000_000}}},
				{Login: "seoyeon", Password: "seoyeon-demo-pw", Name: "Yoon Seoyeon", Phone: "010-8800-0002",
					Accounts: []BankAccount{{Number: "0880-1000-0002", Deposit: 1_000_000}}},
			}},
		{EntityID: BankBID, Name: "KECIS Bank B", Code: "089", listen: cfg.BankB, kecisListen: cfg.BankBKECIS,
			sender: telecom.SenderAccount{ID: "kecis-bank-b", Name: "KECIS Bank B", Numbers: []string{"15880089"}},
			Customers: []*BankCustomer{
				{Login: "sora", Password: "sora-demo-pw", Name: "Lee Sora", Phone: "010-8900-0001", Payee: PayeeMatch,
					Accounts: []BankAccount{{Number: "0890-2000-0001", Deposit: 100_000}}},
				{Login: "minsu", Password: "minsu-demo-pw", Name: "Park Minsu", Phone: "010-8900-0002", PhoneHolder: "Minsu Park",
					Payee: PayeeCloseMatch, Accounts: []BankAccount{{Number: "0890-2000-0002", Deposit: 100_000}}},
				{Login: "daeun", Password: "daeun-demo-pw", Name: "Choi Daeun", Phone: "010-8900-0003", PhoneHolder: "Jung Woojin",
					Payee: PayeeNoMatch, Accounts: []BankAccount{{Number: "0890-2000-0003", Deposit: 100_000}}},
				// The demo shop's settlement account: escrows and
				// collects at bank A are released to it (KECIS §15.6).
				{Login: "demoshop", Password: "demoshop-demo-pw", Name: "Demo shop", Phone: "010-8900-0100", Merchant: MerchantID,
					Accounts: []BankAccount{{Number: "0890-3000-0001"}}},
			}},
	}
}

// bankServices are the services a bank offers for its bank codes, to
// banks only (KECIS §15.8, §15.9, §13.2) — and, in test mode, to the
// conformance suite's tester (testCallers).
func (d *Demo) bankServices(code string) []metadata.OfferedService {
	roles, ids := d.testCallers(metadata.RoleBank)
	var out []metadata.OfferedService
	for _, s := range []string{banking.ServiceCredit, banking.ServiceInquire, banking.ServiceHolderInquiry} {
		out = append(out, metadata.OfferedService{Service: s, BankCodes: []string{code}, Callers: roles, CallerEntities: ids})
	}
	return out
}

// twoWayServices are the 2-WAY transfer's services at the remitter's bank
// (KECIS §15.5.1): twoway:request over HTTP-POST and twoway:status, for
// merchants and banks (and the tester in test mode).
func (d *Demo) twoWayServices() []metadata.OfferedService {
	roles, ids := d.testCallers(metadata.RoleMerchant, metadata.RoleBank)
	return []metadata.OfferedService{{Service: twoway.ServiceRequest, Callers: roles, CallerEntities: ids},
		{Service: twoway.ServiceStatus, Callers: roles, CallerEntities: ids}}
}

// TesterBankCode is the bank code the conformance suite's tester credits
// from in test mode (the bank profile's caller_code): its metadata
// publishes it on transfer:credit, a service it offers to nobody (no
// Callers, KECIS §13.2), so that the banks' check that a credit's remitting
// bank code is the caller's own holds for the tester as for a bank. No
// demo bank has it.
const TesterBankCode = "099"

// testCallers is who may call a service of the demo's for roles (KECIS
// §13.2): those roles; in test mode (Config.Tester) also the tester role,
// the whole narrowed (CallerEntities) to the demo's participants of those
// roles and the conformance suite's tester — not its second identity,
// which no check of these services needs. The least the suite needs: one
// entity, these services, test mode only.
func (d *Demo) testCallers(roles ...metadata.Role) ([]metadata.Role, []string) {
	if !d.cfg.Tester {
		return roles, nil
	}
	var ids []string
	for _, p := range d.participants(d.cfg) {
		if slices.ContainsFunc(p.roles, func(r metadata.Role) bool { return slices.Contains(roles, r) }) {
			ids = append(ids, p.id)
		}
	}
	return append(slices.Clone(roles), metadata.RoleTester), append(ids, TesterID)
}

// kecisProvider is a participant's KECIS endpoint: its keys under dir, a
// listener on addr (its https URL in *url), the SDK's Handler over
// services with an idempotency store in dir/kecis.db, served with the
// participant's TLS certificate and admitting the hub's back channel.
type kecisProvider struct {
	keys     party
	signer   *saml.Signer
	endpoint string
	// handler is the SDK's Handler (a front-channel service's pages
	// receive and answer with it); mux the endpoint's routes, where such
	// pages are mounted too.
	handler *connectors.Handler
	mux     *http.ServeMux
}

func (d *Demo) kecisProvider(ctx context.Context, entityID, dir, addr string, url *string, log *slog.Logger,
	services func(dir *metadata.Client) map[string]connectors.ServiceFunc) (*kecisProvider, error) {
	k, err := d.keys(dir, true, devpki.TLSServer)
	if err != nil {
		return nil, err
	}
	l, err := d.listen("KECIS endpoint", addr, "https", url)
	if err != nil {
		return nil, err
	}
	idemKey, err := secret(d.path(dir, "idempotency-key"), 32)
	if err != nil {
		return nil, err
	}
	atRest, err := secret(d.path(dir, "at-rest-key"), 32)
	if err != nil {
		return nil, err
	}
	st, err := sqlitestore.Open(ctx, "sqlite:"+d.path(dir, "kecis.db"), atRest)
	if err != nil {
		return nil, err
	}
	d.onClose(func() { st.Close() })
	signer, err := k.signing.signer()
	if err != nil {
		return nil, err
	}
	endpoint := *url + "/kecis/soap"
	md := d.directory()
	// The hub calls the provider; so does the tester's attack module, in
	// test mode.
	backChannel := []string{saml.Fingerprint(d.hubTLS)}
	if d.testerTLS != nil {
		backChannel = append(backChannel, saml.Fingerprint(d.testerTLS))
	}
	h, err := connectors.NewHandler(connectors.HandlerConfig{
		EntityID: entityID, Signer: signer, Endpoints: []string{endpoint}, Directory: md, HubEntityID: HubID,
		Decryption: k.encryption.decryption(), BackChannel: backChannel, Services: services(md),
		Store: st, IdemKey: idemKey, Log: log,
	})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("POST /kecis/soap", h)
	d.serve(l, mux, &tls.Config{Certificates: []tls.Certificate{k.tls.tls}, ClientAuth: tls.RequestClientCert, MinVersion: tls.VersionTLS12})
	return &kecisProvider{keys: k, signer: signer, endpoint: endpoint, handler: h, mux: mux}, nil
}

// descriptor is the provider's metadata: its keys (its TLS certificate
// also its client certificate towards the hub, as the PG's), its SOAP
// endpoint for every service, and services.
func (p *kecisProvider) descriptor(entityID, name string, role metadata.Role, services []metadata.OfferedService) *metadata.EntityDescriptor {
	return &metadata.EntityDescriptor{EntityID: entityID, DisplayName: name, Roles: []metadata.Role{role},
		Keys:      []metadata.KeyDescriptor{{Use: metadata.UseSigning, Certificate: p.keys.signing.cert}, {Use: metadata.UseEncryption, Certificate: p.keys.encryption.cert}},
		TLSKeys:   []metadata.KeyDescriptor{{Use: metadata.UseTLSServer, Certificate: p.keys.tls.cert}, {Use: metadata.UseTLSClient, Certificate: p.keys.tls.cert}},
		Endpoints: []metadata.Endpoint{{Service: metadata.AnyService, Binding: saml.BindingSOAP, Location: p.endpoint}},
		Services:  services,
	}
}

// client is an SDK client calling through the hub as the provider.
func (d *Demo) sdkClient(entityID string, p *kecisProvider) (*connectors.Client, error) {
	return connectors.NewClient(connectors.ClientConfig{EntityID: entityID, Signer: p.signer, Directory: d.directory(),
		Decryption: p.keys.encryption.decryption(), HubEntityID: HubID, HubURL: d.HubURL, TLSClient: p.keys.tls.tls,
		HubTLS: []*x509.Certificate{d.hubTLS}, Attempts: 1, Timeout: d.clientTimeout})
}

// startTelecomAdapter joins the telecom to the federation as role telecom:
// phone:holder-check (examples/telecom/kecisadapter) for banks only, on a
// KECIS endpoint of its own.
func (d *Demo) startTelecomAdapter(ctx context.Context) error {
	log := d.cfg.Log.With("component", "telecom")
	p, err := d.kecisProvider(ctx, TelecomID, "telecom", d.cfg.TelecomKECIS, &d.TelecomKECIS, log,
		func(md *metadata.Client) map[string]connectors.ServiceFunc {
			return (&telecomadapter.Adapter{Telecom: d.Telecom, Participants: md, Log: log}).Services()
		})
	if err != nil {
		return err
	}
	offered := telecomadapter.Offered()
	offered.Callers, offered.CallerEntities = d.testCallers(offered.Callers...)
	return d.register(ctx, p.descriptor(TelecomID, telecomName, metadata.RoleTelecom, []metadata.OfferedService{offered}))
}

// startBanks starts the demo's banks, each a company of its own (database,
// native API and pages, customers texted through the telecom) joined to
// the federation through the SDK's Handler: registered as role bank for
// its bank code, with its customers registered, their accounts opened and
// funded (idempotently: the same on every run).
func (d *Demo) startBanks(ctx context.Context) error {
	for _, b := range d.Banks {
		if err := d.startBank(ctx, b); err != nil {
			return fmt.Errorf("%s: %w", b.Name, err)
		}
	}
	return nil
}

func (d *Demo) startBank(ctx context.Context, b *Bank) error {
	dir := bankDir(b)
	b.Dir = d.path(dir)
	log := d.cfg.Log.With("component", "bank", "bank_code", b.Code)
	l, err := d.listen("native API", b.listen, "http", &b.URL)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(b.Dir, 0o700); err != nil {
		return err
	}
	var keys [4][]byte // data key, pepper, admin token, SMS API key
	for i, k := range []struct {
		name string
		n    int
	}{{"data-key", 32}, {"pepper", 32}, {"admin-token", 16}, {"sms-api-key", 16}} {
		if keys[i], err = secret(d.path(dir, k.name), k.n); err != nil {
			return err
		}
	}
	b.AdminToken = hex.EncodeToString(keys[2])
	b.sender.APIKey = hex.EncodeToString(keys[3])
	if err := d.Telecom.AddSender(ctx, b.sender); err != nil && !alreadyThere(err) {
		return fmt.Errorf("sender account: %w", err)
	}
	gw, err := sms.NewHTTPGateway(sms.GatewayConfig{Logger: log, URL: d.TelecomURL + "/api/sms", APIKey: b.sender.APIKey,
		MessageIDField: "message_id", DefaultFrom: b.sender.Numbers[0]})
	if err != nil {
		return err
	}
	bk, err := bank.Open(ctx, bank.Config{BankCode: b.Code, Name: b.Name, DSN: "sqlite:" + d.path(dir, "bank.db"),
		DataKey: keys[0], Pepper: keys[1], AdminToken: b.AdminToken, Logger: log,
		Notifier: bank.NotifierFunc(func(ctx context.Context, phone, text string) error {
			_, err := gw.Send(ctx, sms.Message{To: phone, Text: text})
			return err
		})})
	if err != nil {
		return err
	}
	b.Bank = bk
	d.onClose(func() { bk.Close() })
	// Texts that failed are sent again until they are delivered.
	d.background(func(ctx context.Context) error {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
				_, _ = bk.DeliverNotifications(ctx)
			}
		}
	})
	mux := http.NewServeMux()
	mux.Handle("/", bk.Handler())
	if err := d.seedBank(ctx, b); err != nil {
		return err
	}
	// twoway:status needs the 2-WAY engine, which needs the bank's SDK
	// client, which needs its KECIS keys: the function is bound once the
	// engine runs (before the bank is registered, so before any call).
	var status connectors.ServiceFunc
	var escrows escrowLate // likewise the escrow services
	p, err := d.kecisProvider(ctx, b.EntityID, dir, b.kecisListen, &b.KECIS, log, func(md *metadata.Client) map[string]connectors.ServiceFunc {
		svcs := (&bankadapter.Adapter{Bank: bk}).Services(md)
		if b.twoWay {
			svcs[twoway.ServiceStatus] = func(ctx context.Context, r *connectors.Request) (*connectors.Response, error) {
				return status(ctx, r)
			}
		}
		if b.escrow {
			escrows.add(svcs, md)
		}
		return svcs
	})
	if err != nil {
		return err
	}
	if b.Client, err = d.sdkClient(b.EntityID, p); err != nil {
		return err
	}
	b.Resolver = &connectors.Resolver{Metadata: d.directory(), Self: b.EntityID}
	ed := p.descriptor(b.EntityID, b.Name, metadata.RoleBank, d.bankServices(b.Code))
	if b.twoWay {
		if status, err = d.startTwoWay(ctx, b, p, gw, mux, log); err != nil {
			return fmt.Errorf("2-WAY: %w", err)
		}
		ed.Endpoints = append(ed.Endpoints, metadata.Endpoint{Service: twoway.ServiceRequest, Binding: saml.BindingHTTPPOST, Location: b.TwoWayRequestURL})
		ed.Services = append(ed.Services, d.twoWayServices()...)
	}
	if b.escrow {
		if err := d.startEscrow(ctx, b, p, mux, &escrows, log); err != nil {
			return fmt.Errorf("escrow: %w", err)
		}
		ed.Endpoints = append(ed.Endpoints, escrowEndpoint(b.EscrowPayURL))
		ed.Services = append(ed.Services, d.escrowServices()...)
	}
	if err := d.register(ctx, ed); err != nil {
		return err
	}
	d.serve(l, mux, nil)
	return nil
}

// TwoWayPath is the path of a bank's 2-WAY pages under its native listener;
// SMSRepliesPath the path where the telecom delivers its customers' and
// payees' SMS replies (the sender account's webhook).
const (
	TwoWayPath     = "/twoway"
	SMSRepliesPath = "/sms/replies"
)

// startTwoWay runs the 2-WAY transfer (KECIS §15.5) at bank b as the
// remitter's bank: the engine over examples/bank/kecisadapter.TwoWay (the
// bank's native API; the payee's bank and the telecom through the hub),
// its state in the bank's database, the remitter's pages under TwoWayPath
// — on the native listener for its customers, and on its KECIS endpoint's
// HTTPS listener, where twoway:request arrives over HTTP-POST (KECIS
// §15.5.1, §10.2: a requester's browser, whose session cookies are Secure)
// —, the SMS reply webhook the telecom posts the payee's replies to, and
// recovery at start-up and every 15 seconds (expiries, work a crash left).
// It returns twoway:status.
func (d *Demo) startTwoWay(ctx context.Context, b *Bank, p *kecisProvider, gw sms.Sender, mux *http.ServeMux, log *slog.Logger) (connectors.ServiceFunc, error) {
	dir := bankDir(b)
	var keys [4][]byte // engine key, at-rest key, session key, webhook secret
	for i, name := range []string{"twoway-key", "twoway-at-rest-key", "twoway-session-key", "sms-webhook-secret"} {
		var err error
		if keys[i], err = secret(d.path(dir, name), 32); err != nil {
			return nil, err
		}
	}
	sealer, err := store.NewSealer(keys[1], nil)
	if err != nil {
		return nil, err
	}
	st, err := twoway.NewSQLStore(ctx, b.Bank.DB(), sealer, keys[0])
	if err != nil {
		return nil, err
	}
	tw := &bankadapter.TwoWay{Bank: b.Bank, Banking: &banking.Client{C: b.Client, Resolver: b.Resolver, BankCode: b.Code},
		Phone: &phone.Client{C: b.Client}, Telecom: TelecomID}
	e, err := twoway.New(twoway.Config{BankCode: b.Code, BankName: b.Name, EntityID: b.EntityID, Signer: p.signer, Store: st,
		Bank: tw, Holders: tw, Phones: tw, Credits: tw, SMS: gw, From: b.sender.Numbers[0], Key: keys[0], Log: log.With("component", "twoway")})
	if err != nil {
		return nil, err
	}
	names := map[string]string{}
	for _, o := range d.Banks {
		names[o.Code] = o.Name
	}
	b.TwoWayRequestURL = b.KECIS + TwoWayPath + "/request"
	pages, err := twoway.NewPage(twoway.PageConfig{Engine: e, Customers: tw, SessionKey: keys[2], Prefix: TwoWayPath, Banks: names,
		Front: &twoway.FrontConfig{KECIS: p.handler, URL: b.TwoWayRequestURL, Store: st, Directory: d.directory()}})
	if err != nil {
		return nil, err
	}
	mux.Handle(TwoWayPath+"/", pages)
	p.mux.Handle(TwoWayPath+"/", pages)
	mux.Handle("GET "+TwoWayPath, http.RedirectHandler(TwoWayPath+"/", http.StatusSeeOther))
	mux.Handle("POST "+SMSRepliesPath, sms.WebhookHandler(keys[3], e, sms.WithLogger(log)))
	if err := d.Telecom.SetSenderWebhook(ctx, b.sender.ID, b.URL+SMSRepliesPath, keys[3]); err != nil {
		return nil, fmt.Errorf("the reply webhook: %w", err)
	}
	b.TwoWay, b.TwoWayURL = e, b.URL+TwoWayPath+"/"
	d.background(func(ctx context.Context) error {
		t := time.NewTicker(15 * time.Second)
		defer t.Stop()
		e.Run(ctx, t.C)
		return nil
	})
	return twoway.StatusService(e, st), nil
}

// seedBank registers the bank's customers (each a subscriber of the
// telecom), opens their accounts with the demo's numbers and funds them,
// idempotently.
func (d *Demo) seedBank(ctx context.Context, b *Bank) error {
	born := time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range b.Customers {
		holder := c.PhoneHolder
		if holder == "" {
			holder = c.Name
		}
		if err := d.Telecom.AddSubscriber(ctx, telecom.Subscriber{Phone: c.Phone, HolderName: holder, BirthDate: born}); err != nil && !alreadyThere(err) {
			return fmt.Errorf("telecom subscriber: %w", err)
		}
		cu, err := b.Bank.NewCustomer(ctx, bank.NewCustomerRequest{Name: c.Name, Phone: c.Phone, Login: c.Login,
			Password: ecml.Secret(c.Password), IdempotencyKey: "demo-customer-" + c.Login})
		if err != nil {
			return fmt.Errorf("customer %s: %w", c.Login, err)
		}
		c.ID = cu.ID
		for i := range c.Accounts {
			a := &c.Accounts[i]
			key := fmt.Sprintf("demo-%s-%d", c.Login, i+1)
			oa, err := b.Bank.OpenAccount(ctx, bank.OpenAccountRequest{CustomerID: cu.ID, Number: ecml.Secret(a.Number),
				IdempotencyKey: "account-" + key})
			if err != nil {
				return fmt.Errorf("account of %s: %w", c.Login, err)
			}
			a.ID = oa.ID
			if a.Deposit == 0 {
				continue
			}
			if _, err := b.Bank.Deposit(ctx, bank.DepositRequest{AccountID: oa.ID, Amount: ecml.Money{Minor: a.Deposit, Currency: bank.Currency},
				Memo: "demo deposit", IdempotencyKey: "deposit-" + key}); err != nil {
				return fmt.Errorf("deposit for %s: %w", c.Login, err)
			}
		}
	}
	return nil
}

// bankDir is the directory of a bank's keys, database and secrets under
// Config.Dir.
func bankDir(b *Bank) string { return "bank-" + b.Code }

// PhoneClient is a bank's SDK client for the telecom's holder check.
func (b *Bank) PhoneClient() *phone.Client { return &phone.Client{C: b.Client} }

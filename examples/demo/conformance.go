package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/kecis/kecis/conformance"
	"github.com/kecis/kecis/connectors/cardauth"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/examples/issuer"
	"github.com/kecis/kecis/federation/store"
	"github.com/kecis/kecis/saml/metadata"
)

// The conformance suite against the demo (docs/conformance.md, "Against
// the demo"). In test mode (Config.Tester) the demo registers the suite's
// tester and its second identity, serves the test hooks a profile names,
// and writes one test profile per plan into Dir/conformance/, listed in
// demo.json's conformance section: `make conformance` (kecis-demo
// --conformance) runs `kecis conformance run` with each, and the
// conformance package's tests run the same files in process.

// ConformanceDir is the directory, under the demo's, of the test profiles;
// ConformanceReportDir the one `kecis-demo --conformance` writes each
// plan's reports into (ConformanceReportDir/<plan>/report.html).
const (
	ConformanceDir       = "conformance"
	ConformanceReportDir = "conformance-report"
)

// conformancePlans are the plans run against the demo, each with the
// participant it certifies: the card providers (the issuer behind
// connectors.Handler, the PG behind the sidecar), the hub and the first
// merchant, bank A (the one bank offering every service of the bank plan:
// transfer, account and 2-WAY) and the telecom — every plan the suite has
// for a role the demo has.
var conformancePlans = []struct{ plan, participant string }{
	{"issuer", IssuerID},
	{"pg", PGID},
	{"hub", HubID},
	{"merchant", MerchantID},
	{"bank", BankAID},
	{"telecom", TelecomID},
}

// StallPath is the stall hook on the demo's conformance hooks listener
// (demo.json conformance.hooks.stall).
const StallPath = "/stall"

// AmountAuthHookPath is the amountauth hook on the demo's conformance
// hooks listener (demo.json conformance.hooks.amountauth).
const AmountAuthHookPath = "/amountauth"

// maxStall bounds what the stall hook accepts: a stall is meant to outlast
// the hub's relay timeout, not to hang the issuer.
const maxStall = 2 * time.Minute

// ManifestConformance is demo.json's conformance section: the test
// profiles the demo wrote for its tester, one per plan, and the test hooks
// they name. Plans is empty when the demo runs without its tester
// (kecis-demo --tester=false).
type ManifestConformance struct {
	Plans []ManifestPlan `json:"plans"`
	Hooks ManifestHooks  `json:"hooks"`
}

// ManifestPlan is one plan to run against the demo: `kecis conformance run
// --target-metadata TargetMetadata --profile Profile --out Reports`.
type ManifestPlan struct {
	Plan        string `json:"plan"`
	Participant string `json:"participant"`
	// Profile is the test profile (YAML; paths in it are relative to it).
	Profile string `json:"profile"`
	// TargetMetadata is the participant's metadata at the hub's Metadata
	// Query endpoint, which the profile's hub signing certificate verifies.
	TargetMetadata string `json:"target_metadata"`
	// Reports is where kecis-demo --conformance writes the plan's reports
	// (report.html, report.json, junit.xml) and the run's output (run.log).
	Reports string `json:"reports"`
}

// ManifestHooks are the test hooks the profiles name (docs/conformance.md,
// "Hook semantics"): Settle is the demo's own settle_url, Stall delays the
// issuer adapter's next call of a service, AmountAuth tells the
// verification approval of an amount-authentication session at the issuer;
// SMS reads a phone's texts and SMSReply replies from a phone (the
// telecom's), Balance reads an account's balance at a demo bank.
type ManifestHooks struct {
	Settle     string `json:"settle"`
	Stall      string `json:"stall"`
	AmountAuth string `json:"amountauth"`
	SMS        string `json:"sms"`
	SMSReply   string `json:"sms_reply"`
	Balance    string `json:"balance"`
}

// resolve makes the section's paths absolute against dir (ReadManifest).
func (c *ManifestConformance) resolve(dir string) {
	for i := range c.Plans {
		for _, p := range []*string{&c.Plans[i].Profile, &c.Plans[i].Reports} {
			if *p != "" && !filepath.IsAbs(*p) {
				*p = filepath.Join(dir, *p)
			}
		}
	}
}

// stallHook is the stall test hook: the duration the issuer adapter's next
// call of each service waits, so that the hub answers Pending and the suite
// checks that inquire tells the truth afterwards (KECIS §12.1, §15.2).
type stallHook struct {
	mu    sync.Mutex
	stall map[string]time.Duration
}

// before is the issuer adapter's BeforeCall: the first call of a stalled
// service waits, once.
func (s *stallHook) before(_ context.Context, service string) {
	s.mu.Lock()
	d := s.stall[service]
	delete(s.stall, service)
	s.mu.Unlock()
	// The call is finished late even when its caller gave up (the hub's
	// relay timeout answered Pending): that is what the suite checks.
	time.Sleep(d)
}

// handler serves POST /stall {"service": URI, "seconds": N}: the issuer
// adapter's next call of that card service takes N seconds.
func (s *stallHook) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+StallPath, func(w http.ResponseWriter, r *http.Request) {
		var v struct {
			Service string  `json:"service"`
			Seconds float64 `json:"seconds"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10)).Decode(&v); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "the body must be {\"service\": URI, \"seconds\": N}"})
			return
		}
		d := time.Duration(v.Seconds * float64(time.Second))
		if !slices.Contains(cardServices, v.Service) || d <= 0 || d > maxStall {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("service must be one of %v and seconds in (0, %g]", cardServices, maxStall.Seconds())})
			return
		}
		s.mu.Lock()
		s.stall[v.Service] = d
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

// Verification approval states the amountauth hook answers
// (docs/conformance.md, "Hook semantics").
const (
	verificationApproved  = "approved"
	verificationCancelled = "cancelled"
	verificationRefunded  = "refunded"
	verificationNone      = "none"
)

// Verification is the verification approval an amount-authentication
// session of the demo PG made at the issuer (KECIS §15.2
// approve-verification, §15.3): its state — approved while it stands
// (settled or partly refunded too), cancelled, refunded, or none — and
// its amount, the challenge the cardholder was texted.
type Verification struct {
	State  string
	Amount ecml.Money
}

// Verification finds the verification approval of the PG's session at the
// issuer, through the issuer's own API: the PG's order there is "AA-" and
// the session's identifier (connectors/amountauth), its merchant the PG.
// The amount is a one-time password: test code only (the amountauth hook).
func (d *Demo) Verification(ctx context.Context, session string) (Verification, error) {
	a, err := d.Issuer.Inquire(ctx, issuer.InquireRequest{MerchantID: PGID, OrderID: "AA-" + session})
	switch {
	case errors.Is(err, issuer.ErrNotFound):
		return Verification{State: verificationNone}, nil
	case err != nil:
		return Verification{}, err
	case !a.Verification:
		// The PG's order of that name is no verification approval.
		return Verification{State: verificationNone}, nil
	}
	v := Verification{State: verificationApproved, Amount: a.Amount}
	switch a.Status {
	case issuer.StatusCancelled:
		v.State = verificationCancelled
	case issuer.StatusRefunded:
		v.State = verificationRefunded
	}
	return v, nil
}

// amountAuthHook serves POST /amountauth {"session_id": ID}: the
// verification approval of that session at the issuer (Verification), as
// {"state", "amount" (ECML amount form), "currency"}; no amount when the
// state is none. Test mode only: the amount is the cardholder's one-time
// password, which the suite redacts from its reports and nothing here
// logs.
func (d *Demo) amountAuthHook() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+AmountAuthHookPath, func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			SessionID string `json:"session_id"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10)).Decode(&in); err != nil || !sessionShape(in.SessionID) {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "the body must be {\"session_id\": the session's identifier}"})
			return
		}
		v, err := d.Verification(r.Context(), in.SessionID)
		if err != nil {
			d.cfg.Log.ErrorContext(r.Context(), "demo: amountauth hook", "session", in.SessionID, "error", err)
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "the issuer does not answer"})
			return
		}
		out := map[string]string{"state": v.State}
		if v.State != verificationNone {
			amount, err := ecml.FormatAmount(v.Amount)
			if err != nil {
				writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "the verification approval's amount has no ECML form"})
				return
			}
			out["amount"], out["currency"] = amount, v.Amount.Currency
		}
		writeJSON(w, http.StatusOK, out)
	})
	return mux
}

// startConformance, in test mode, serves the test hooks on a loopback
// port of their own (stall, amountauth, sms, sms-reply and balance; settle
// is the demo's own settle_url), opens bank A's closed account and writes
// the test profile of every plan into Dir/conformance/.
func (d *Demo) startConformance(ctx context.Context) error {
	d.conformance = ManifestConformance{Plans: []ManifestPlan{}}
	if !d.cfg.Tester {
		return d.withoutTester(ctx)
	}
	hook := &stallHook{stall: map[string]time.Duration{}}
	var hooksURL string
	l, err := d.listen("conformance hooks", "127.0.0.1:0", "http", &hooksURL)
	if err != nil {
		return err
	}
	d.Adapter.BeforeCall = hook.before
	mux := http.NewServeMux()
	mux.Handle(StallPath, hook.handler())
	mux.Handle(AmountAuthHookPath, d.amountAuthHook())
	mux.Handle(SMSHookPath, d.smsHook())
	mux.Handle(SMSReplyHookPath, d.smsReplyHook())
	mux.Handle(BalanceHookPath, d.balanceHook())
	d.serve(l, mux, nil)
	d.conformance.Hooks = ManifestHooks{Settle: d.IssuerNative + SettlePath, Stall: hooksURL + StallPath, AmountAuth: hooksURL + AmountAuthHookPath,
		SMS: hooksURL + SMSHookPath, SMSReply: hooksURL + SMSReplyHookPath, Balance: hooksURL + BalanceHookPath}
	if err := d.seedClosedAccount(ctx); err != nil {
		return fmt.Errorf("the bank plan's closed account: %w", err)
	}

	if err := os.MkdirAll(d.path(ConformanceDir), 0o700); err != nil {
		return err
	}
	for _, p := range conformancePlans {
		profile, err := d.conformanceProfile(ctx, p.participant)
		if err != nil {
			return fmt.Errorf("the %s plan's profile: %w", p.plan, err)
		}
		rel := filepath.Join(ConformanceDir, p.plan+".yaml")
		if err := writeProfile(d.path(rel), profile); err != nil {
			return err
		}
		d.conformance.Plans = append(d.conformance.Plans, ManifestPlan{Plan: p.plan, Participant: p.participant, Profile: rel,
			TargetMetadata: conformance.MDQURL(d.HubURL, p.participant), Reports: filepath.Join(ConformanceReportDir, p.plan)})
	}
	return nil
}

// withoutTester leaves no trace of an earlier run in test mode: the
// tester and its second identity, kept active in the hub's registry since,
// are suspended — a suite run with their keys then stops before its first
// check, saying the tester is not active at the hub, rather than failing
// checks the participants, which no longer admit it, cannot pass — and
// the profiles written for them are removed.
func (d *Demo) withoutTester(ctx context.Context) error {
	for _, t := range testers {
		p, err := d.HubStore.GetParticipant(ctx, t.id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if p.Status != store.StatusActive {
			continue
		}
		p.Status, p.UpdatedAt = store.StatusSuspended, time.Now().UTC()
		if err := d.HubStore.UpdateParticipant(ctx, p); err != nil {
			return fmt.Errorf("suspending %s: %w", t.id, err)
		}
		d.Hub.RegistryChanged()
	}
	for _, p := range conformancePlans {
		if err := os.Remove(d.path(ConformanceDir, p.plan+".yaml")); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// conformanceProfile is the test profile of participant (docs/conformance.md,
// "The test profile"), its paths relative to Dir/conformance: the demo's
// tester and second identity, an outsider, the hub, the test cards with
// the outcome each must give, the hooks, and timeouts from the hub's relay
// timeout.
func (d *Demo) conformanceProfile(ctx context.Context, participant string) (*conformance.Profile, error) {
	rel := func(parts ...string) string {
		r, err := filepath.Rel(d.path(ConformanceDir), d.path(parts...))
		if err != nil {
			return d.path(parts...)
		}
		return r
	}
	pair := func(dir, kind string) conformance.KeyPair {
		return conformance.KeyPair{Cert: rel(dir, kind, "cert.pem"), Key: rel(dir, kind, "key.pem")}
	}
	outsider, err := d.outsider(ctx, participant)
	if err != nil {
		return nil, err
	}
	// The stall outlasts the hub's relay timeout as the issuer_timeout test
	// card's host does; one exchange may take the relay timeout and more.
	stall := d.cfg.RelayTimeout + 3*time.Second
	p := &conformance.Profile{
		Participant: participant,
		Tester: conformance.TesterProfile{EntityID: TesterID, Signing: pair(testers[0].dir, "signing"),
			Encryption: pair(testers[0].dir, "encryption"), TLS: pair(testers[0].dir, "tls")},
		Second: &conformance.IdentityProfile{EntityID: SecondTesterID, Signing: pair(testers[1].dir, "signing"),
			Encryption: pair(testers[1].dir, "encryption")},
		Outsider: &conformance.IdentityProfile{EntityID: outsider.id, Signing: pair(outsider.dir, "signing"), Roles: roleNames(outsider.roles)},
		Hub: &conformance.HubProfile{URL: d.HubURL, EntityID: HubID, SigningCerts: []string{rel("hub", "signing", "cert.pem")},
			TLSCerts: []string{rel("hub", "tls", "cert.pem")}},
		Card:   d.conformanceCards(),
		Router: &conformance.RouterProfile{Provider: IssuerID},
		Hooks: conformance.Hooks{Settle: &conformance.Hook{URL: d.conformance.Hooks.Settle},
			Stall: &conformance.Hook{URL: d.conformance.Hooks.Stall}},
		Timeouts: conformance.Timeouts{Request: conformance.Duration(d.clientTimeout), Stall: conformance.Duration(stall),
			Settle: conformance.Duration(stall + 20*time.Second)},
	}
	switch participant {
	case BankAID, TelecomID:
		// No card service, no router: the bank's and the telecom's
		// sections instead.
		p.Card, p.Router, p.Hooks = nil, nil, conformance.Hooks{}
		if participant == TelecomID {
			p.Phone = d.conformancePhone()
			break
		}
		p.Bank, p.TwoWay, p.Escrow = d.conformanceBank(), d.conformanceTwoWay(), d.conformanceEscrow()
		p.Hooks = conformance.Hooks{SMS: &conformance.Hook{URL: d.conformance.Hooks.SMS},
			SMSReply: &conformance.Hook{URL: d.conformance.Hooks.SMSReply}, Balance: &conformance.Hook{URL: d.conformance.Hooks.Balance}}
	}
	if participant == PGID {
		p.AmountAuth = d.conformanceAmountAuth(p.Card)
		p.Hooks.AmountAuth = &conformance.Hook{URL: d.conformance.Hooks.AmountAuth}
	}
	if participant == IssuerID {
		p.CardAuth = d.conformanceCardAuth()
	}
	return p, nil
}

// conformanceCardAuth is the cardauth and vcn modules' section of the
// issuer's profile (KECIS §15.7, §15.4): the first test card with its
// authentication password and TOTP seed, paying its usual amount (below
// the policy's threshold), and the tester's HTTP-POST endpoint its
// metadata publishes. The page's TLS certificate is the issuer's, which
// its metadata publishes.
func (d *Demo) conformanceCardAuth() *conformance.CardAuthProfile {
	c := d.Cards[0]
	return &conformance.CardAuthProfile{Currency: "KRW",
		Card:     conformance.TestCard{Number: c.PAN.Reveal(), Expiry: fmt.Sprintf("%02d/%d", c.ExpMonth, c.ExpYear), Amount: fmt.Sprint(c.Amount)},
		Password: c.AuthPassword, TOTPSeed: c.TOTPSeed, Threshold: fmt.Sprint(cardauth.DefaultThreshold),
		Endpoint: testerFrontEndpoint(TesterID)}
}

// conformanceAmountAuth is the amountauth module's section of the PG's
// profile (KECIS §15.3): the approving card, paying the demo shop's price
// (above the PG's minimum purchase), and the PG's attempt limit and short
// timeout for the tester (aaOverrides), which the module waits out.
func (d *Demo) conformanceAmountAuth(cards *conformance.CardProfile) *conformance.AmountAuthProfile {
	c := cards.Approve
	c.Amount = fmt.Sprint(shopPrice)
	return &conformance.AmountAuthProfile{Currency: "KRW", Card: c, Attempts: testerAAAttempts, Timeout: conformance.Duration(testerAATimeout)}
}

// conformanceCards are the card module's cards: the card that approves,
// and every test card the issuer itself declines, each with the
// second-level code it must answer, and the approving card with an expiry
// that does not match (InvalidCard). The expired card (which the hub's
// facade refuses before it travels) and the slow one (the stall hook does
// that) are left out.
func (d *Demo) conformanceCards() *conformance.CardProfile {
	expiry := func(c TestCard, year int) string { return fmt.Sprintf("%02d/%d", c.ExpMonth, year) }
	cp := &conformance.CardProfile{Currency: "KRW", SettleBeforeRefund: true}
	for _, c := range d.Cards {
		tc := conformance.TestCard{Number: c.PAN.Reveal(), Expiry: expiry(c, c.ExpYear), Amount: fmt.Sprint(c.Amount)}
		switch {
		case c.Result == CardApproved && cp.Approve.Number == "":
			cp.Approve = tc
		case c.SubStatus != "" && c.Problem == "" && c.Delay == 0:
			tc.Name, tc.Expect = c.Result, c.SubStatus
			cp.Declines = append(cp.Declines, tc)
		}
	}
	for _, c := range d.Cards {
		if c.Result == CardApproved {
			cp.Declines = append(cp.Declines, conformance.TestCard{Name: "expiry does not match", Number: c.PAN.Reveal(),
				Expiry: expiry(c, c.ExpYear+1), Amount: "1000", Expect: "InvalidCard"})
			break
		}
	}
	return cp
}

// outsider is the authorization module's outsider for participant: a
// registered participant — neither the hub, nor a tester, nor the
// participant — whom none of the participant's services, as the hub
// publishes them, admits (KECIS §13.2): a merchant for the issuer, the
// issuer for the PG.
func (d *Demo) outsider(ctx context.Context, id string) (participant, error) {
	ed, err := d.directory().Lookup(ctx, id)
	if err != nil {
		return participant{}, err
	}
	for _, p := range d.participants(d.cfg) {
		if p.id == id || slices.Contains(p.roles, metadata.RoleHub) || slices.Contains(p.roles, metadata.RoleTester) {
			continue
		}
		if !slices.ContainsFunc(ed.Services, func(s metadata.OfferedService) bool { return s.AdmitsCaller(p.id, p.roles) }) {
			return p, nil
		}
	}
	return participant{}, fmt.Errorf("no registered participant is refused by %s's services", id)
}

func roleNames(rs []metadata.Role) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = string(r)
	}
	return out
}

// writeProfile writes p as YAML to path, 0600 (it names card numbers and
// private keys), and reads it back as `kecis conformance run` will: a
// profile the suite would refuse stops the demo's start.
func writeProfile(path string, p *conformance.Profile) error {
	b, err := yaml.MarshalWithOptions(p, yaml.CustomMarshaler[conformance.Duration](func(d conformance.Duration) ([]byte, error) {
		return []byte(time.Duration(d).String()), nil
	}))
	if err != nil {
		return err
	}
	head := "# The test profile `kecis-demo` wrote for the conformance suite (docs/conformance.md, \"Against the demo\").\n" +
		"# Rewritten at every start; paths are relative to this file.\n"
	if err := os.WriteFile(path, append([]byte(head), b...), 0o600); err != nil {
		return err
	}
	if _, err := conformance.LoadProfile(path); err != nil {
		return fmt.Errorf("the suite refuses it: %w", err)
	}
	return nil
}

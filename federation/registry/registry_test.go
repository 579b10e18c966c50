package registry

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kecis/kecis/federation/store"
	"github.com/kecis/kecis/federation/store/sqlstore"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

var t0 = time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)

const (
	svcApprove = "urn:kecis:service:card:approve"
	svcRefund  = "urn:kecis:service:card:refund"
	svcNotify  = "urn:kecis:service:order:notify"
	svcXfer    = "urn:kecis:service:transfer:execute"
	shopID     = "https://shop.test/kecis"
	issuerA    = "https://issuer-a.test/kecis"
	issuerB    = "https://issuer-b.test/kecis"
)

// fixture is a registry over a fresh in-memory store with a settable
// clock, the events it reported and certificates made on demand.
type fixture struct {
	t      *testing.T
	ctx    context.Context
	st     store.Store
	reg    *Registry
	now    time.Time
	events []string
	certs  map[string]*x509.Certificate
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st, err := sqlstore.Open(context.Background(), "sqlite::memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fixture{t: t, ctx: context.Background(), st: st, now: t0, certs: map[string]*x509.Certificate{}}
	f.reg = &Registry{Store: st, Now: func() time.Time { return f.now }, OnEvent: func(a string) { f.events = append(f.events, a) }}
	return f
}

// tick moves the clock on.
func (f *fixture) tick() { f.now = f.now.Add(time.Minute) }

// cert returns the certificate called name (a fresh P-256 key each).
func (f *fixture) cert(name string) *x509.Certificate {
	if c, ok := f.certs[name]; ok {
		return c
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(len(f.certs) + 1)), Subject: pkix.Name{CommonName: name},
		NotBefore: t0.AddDate(0, -1, 0), NotAfter: t0.AddDate(1, 0, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		f.t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		f.t.Fatal(err)
	}
	f.certs[name] = c
	return c
}

func (f *fixture) tls(id string) string { return saml.Fingerprint(f.cert(id + "/tls")) }

// entity is a participant's descriptor: its own signing and TLS client
// certificates and an endpoint on its own host.
func (f *fixture) entity(id string, roles []metadata.Role, svcs ...metadata.OfferedService) *metadata.EntityDescriptor {
	host := strings.TrimSuffix(strings.TrimPrefix(id, "https://"), "/kecis")
	return &metadata.EntityDescriptor{
		EntityID: id, DisplayName: host, Roles: roles,
		Keys:      []metadata.KeyDescriptor{{Use: metadata.UseSigning, Certificate: f.cert(id + "/sig")}},
		TLSKeys:   []metadata.KeyDescriptor{{Use: metadata.UseTLSClient, Certificate: f.cert(id + "/tls")}},
		Endpoints: []metadata.Endpoint{{Service: metadata.AnyService, Binding: saml.BindingSOAP, Location: "https://" + host + "/kecis/soap"}},
		Services:  svcs,
	}
}

func (f *fixture) md(ed *metadata.EntityDescriptor) []byte {
	f.t.Helper()
	b, err := metadata.Marshal(ed)
	if err != nil {
		f.t.Fatal(err)
	}
	return b
}

func offer(t *testing.T, service, bins string, banks ...string) metadata.OfferedService {
	s := metadata.OfferedService{Service: service, BankCodes: banks, Callers: []metadata.Role{metadata.RolePG}}
	if bins != "" {
		l, err := metadata.ParseBINList(bins)
		if err != nil {
			t.Fatal(err)
		}
		s.BINs = l
	}
	return s
}

func (f *fixture) register(ed *metadata.EntityDescriptor) *store.Participant {
	f.t.Helper()
	p, err := f.reg.Register(f.ctx, f.md(ed), f.tls(ed.EntityID))
	if err != nil {
		f.t.Fatalf("register %s: %v", ed.EntityID, err)
	}
	return p
}

// activate registers and approves.
func (f *fixture) activate(ed *metadata.EntityDescriptor) {
	f.t.Helper()
	f.register(ed)
	f.decide(ed.EntityID, ActionApprove)
}

func (f *fixture) decide(id, action string) *store.Participant {
	f.t.Helper()
	p, err := f.reg.Decide(f.ctx, Decision{EntityID: id, Action: action, Operator: "alice", Reason: "test"})
	if err != nil {
		f.t.Fatalf("%s %s: %v", action, id, err)
	}
	return p
}

func (f *fixture) update(ed *metadata.EntityDescriptor) *UpdateResult {
	f.t.Helper()
	res, err := f.reg.UpdateMetadata(f.ctx, ed.EntityID, f.md(ed), f.tls(ed.EntityID))
	if err != nil {
		f.t.Fatalf("update %s: %v", ed.EntityID, err)
	}
	return res
}

func (f *fixture) get(id string) *store.Participant {
	f.t.Helper()
	p, err := f.st.GetParticipant(f.ctx, id)
	if err != nil {
		f.t.Fatal(err)
	}
	return p
}

// audit returns the audit records of entity id, oldest first, with their
// details decoded.
func (f *fixture) audit(id string) []auditEntry {
	f.t.Helper()
	recs, err := f.st.ListAudit(f.ctx, store.AuditFilter{EntityID: id})
	if err != nil {
		f.t.Fatal(err)
	}
	out := make([]auditEntry, len(recs))
	for i, r := range recs {
		out[i].rec = r
		if err := json.Unmarshal([]byte(r.Detail), &out[i].detail); err != nil {
			f.t.Fatalf("audit detail %q: %v", r.Detail, err)
		}
	}
	return out
}

type auditEntry struct {
	rec    *store.AuditRecord
	detail map[string]any
}

func (f *fixture) kinds(id string) []string {
	var out []string
	for _, e := range f.audit(id) {
		out = append(out, e.rec.Kind)
	}
	return out
}

func (f *fixture) lastAudit(id string) auditEntry {
	a := f.audit(id)
	if len(a) == 0 {
		f.t.Fatalf("no audit record of %s", id)
	}
	return a[len(a)-1]
}

func diffOf(e auditEntry) []string {
	var out []string
	for _, l := range e.detail["diff"].([]any) {
		out = append(out, l.(string))
	}
	return out
}

// noKeyMaterial fails when an audit record holds a certificate (beyond its
// fingerprint).
func (f *fixture) noKeyMaterial() {
	f.t.Helper()
	recs, err := f.st.ListAudit(f.ctx, store.AuditFilter{})
	if err != nil {
		f.t.Fatal(err)
	}
	for _, r := range recs {
		for name, c := range f.certs {
			if strings.Contains(r.Detail, base64.StdEncoding.EncodeToString(c.Raw)[:40]) || strings.Contains(r.Detail, "CERTIFICATE") {
				f.t.Errorf("audit record %s holds the certificate %s", r.Kind, name)
			}
		}
	}
}

func TestLifecycle(t *testing.T) {
	f := newFixture(t)
	shop := f.entity(shopID, []metadata.Role{metadata.RoleMerchant})
	if _, err := f.reg.Register(f.ctx, f.md(shop), saml.Fingerprint(f.cert("stranger"))); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("register with a certificate the metadata does not publish: %v", err)
	}
	if _, err := f.reg.Register(f.ctx, []byte("<nope/>"), f.tls(shopID)); !errors.Is(err, ErrInvalidMetadata) {
		t.Fatalf("register garbage: %v", err)
	}
	p := f.register(shop)
	if p.Status != store.StatusPending {
		t.Fatalf("registered as %s", p.Status)
	}
	if _, err := f.reg.Register(f.ctx, f.md(shop), f.tls(shopID)); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second registration: %v", err)
	}
	for _, c := range []struct {
		action string
		want   store.Status
		err    error
	}{
		{ActionSuspend, "", ErrTransition},
		{ActionReinstate, "", ErrTransition},
		{ActionApproveChange, "", ErrTransition}, // nothing pending, and not active
		{ActionApprove, store.StatusActive, nil},
		{ActionApprove, "", ErrTransition},
		{ActionReinstate, "", ErrTransition},
		{ActionApproveChange, "", ErrTransition}, // nothing pending
		{ActionSuspend, store.StatusSuspended, nil},
		{ActionSuspend, "", ErrTransition},
		{ActionReinstate, store.StatusActive, nil},
		{ActionRemove, store.StatusRemoved, nil},
		{ActionRemove, "", ErrTransition},
		{ActionApprove, "", ErrTransition},
		{"promote", "", ErrTransition},
	} {
		f.tick()
		p, err := f.reg.Transition(f.ctx, shopID, c.action, "alice", "because")
		if c.err != nil {
			if !errors.Is(err, c.err) {
				t.Fatalf("%s: %v, want %v", c.action, err, c.err)
			}
			continue
		}
		if err != nil || p.Status != c.want || f.get(shopID).Status != c.want {
			t.Fatalf("%s: %v %v", c.action, p, err)
		}
	}
	want := []string{KindRegister, "participant.approve", "participant.suspend", "participant.reinstate", "participant.remove"}
	if got := f.kinds(shopID); !slices.Equal(got, want) {
		t.Errorf("audit %v, want %v", got, want)
	}
	if !slices.Equal(f.events, want) {
		t.Errorf("events %v, want %v", f.events, want)
	}
	last := f.lastAudit(shopID)
	if last.rec.Actor != "alice" || last.detail["reason"] != "because" || last.detail["from"] != "active" || last.detail["to"] != "removed" {
		t.Errorf("audit of remove: %+v %v", last.rec, last.detail)
	}
	// A removed participant changes nothing more.
	if _, err := f.reg.UpdateMetadata(f.ctx, shopID, f.md(shop), f.tls(shopID)); !errors.Is(err, ErrTransition) {
		t.Errorf("update of a removed participant: %v", err)
	}
}

func TestUpdateRefusals(t *testing.T) {
	f := newFixture(t)
	shop := f.entity(shopID, []metadata.Role{metadata.RoleMerchant})
	f.activate(shop)
	other := f.entity("https://other.test/kecis", []metadata.Role{metadata.RoleMerchant})
	f.activate(other)
	for _, c := range []struct {
		name      string
		entity    string
		md        []byte
		presented string
		want      error
	}{
		{"unknown participant", "https://nobody.test/kecis", f.md(shop), f.tls(shopID), store.ErrNotFound},
		{"another participant's certificate", shopID, f.md(shop), f.tls(other.EntityID), ErrNotOwner},
		{"no certificate", shopID, f.md(shop), "", ErrNotOwner},
		{"metadata of another entity", shopID, f.md(other), f.tls(shopID), ErrInvalidMetadata},
		{"not metadata", shopID, []byte("<md:EntityDescriptor/>"), f.tls(shopID), ErrInvalidMetadata},
	} {
		if _, err := f.reg.UpdateMetadata(f.ctx, c.entity, c.md, c.presented); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if got := f.kinds(shopID); !slices.Equal(got, []string{KindRegister, "participant.approve"}) {
		t.Errorf("refused updates were audited: %v", got)
	}
}

// TestPendingRegistrationReplaced: before approval there is no active
// version to protect; an update replaces the registration as a whole.
func TestPendingRegistrationReplaced(t *testing.T) {
	f := newFixture(t)
	shop := f.entity(shopID, []metadata.Role{metadata.RoleMerchant})
	f.register(shop)
	next := f.entity(shopID, []metadata.Role{metadata.RoleMerchant, metadata.RolePG}, offer(t, svcApprove, ""))
	res := f.update(next)
	p := f.get(shopID)
	if res.Pending || p.Pending != nil || p.Status != store.StatusPending || !bytes.Equal(p.Metadata, f.md(next)) || !slices.Contains(p.Roles, store.RolePG) {
		t.Fatalf("pending registration not replaced: %+v %+v", res, p)
	}
	if e := f.lastAudit(shopID); e.rec.Kind != KindUpdate || !slices.Contains(diffOf(e), "+ role pg") {
		t.Errorf("audit: %s %v", e.rec.Kind, e.detail)
	}
}

// TestSelfServiceApplies: keys, endpoints, the name apply at once and
// keep the status; the audit record has the diff with fingerprints only.
func TestSelfServiceApplies(t *testing.T) {
	f := newFixture(t)
	shop := f.entity(shopID, []metadata.Role{metadata.RoleMerchant}, offer(t, svcNotify, ""))
	f.activate(shop)
	f.tick()
	next := f.entity(shopID, []metadata.Role{metadata.RoleMerchant}, offer(t, svcNotify, ""))
	next.DisplayName = "Shop, renamed"
	next.Keys = append(next.Keys, metadata.KeyDescriptor{Use: metadata.UseSigning, Certificate: f.cert("sig-2027")})
	next.TLSKeys = append(next.TLSKeys, metadata.KeyDescriptor{Use: metadata.UseTLSClient, Certificate: f.cert("tls-2027")})
	next.Endpoints[0].Location = "https://new.shop.test/kecis/soap"
	res := f.update(next)
	if res.Pending || res.Diff.TrustChange() || res.Replaced != "" {
		t.Fatalf("self-service update: %+v", res)
	}
	p := f.get(shopID)
	if p.Status != store.StatusActive || p.Pending != nil || !bytes.Equal(p.Metadata, f.md(next)) || p.DisplayName != "Shop, renamed" ||
		p.Endpoints[0].URL != "https://new.shop.test/kecis/soap" || len(p.Keys) != 4 {
		t.Fatalf("not applied: %+v", p)
	}
	e := f.lastAudit(shopID)
	wantLines := []string{
		`~ display name "shop.test" → "Shop, renamed"`,
		"+ key signing sha256 " + saml.Fingerprint(f.cert("sig-2027")) + " until 2027-12-02",
		"+ key tls-client sha256 " + saml.Fingerprint(f.cert("tls-2027")) + " until 2027-12-02",
		"~ endpoint * soap priority 0 https://shop.test/kecis/soap → https://new.shop.test/kecis/soap",
	}
	if e.rec.Kind != KindUpdate || e.rec.Actor != shopID || !slices.Equal(diffOf(e), wantLines) {
		t.Errorf("audit %s by %s: %q", e.rec.Kind, e.rec.Actor, diffOf(e))
	}
	// The new TLS certificate authenticates; once the old one is retired,
	// it no longer does.
	next.TLSKeys = next.TLSKeys[1:]
	if _, err := f.reg.UpdateMetadata(f.ctx, shopID, f.md(next), saml.Fingerprint(f.cert("tls-2027"))); err != nil {
		t.Fatalf("update with the new certificate: %v", err)
	}
	if _, err := f.reg.UpdateMetadata(f.ctx, shopID, f.md(next), f.tls(shopID)); !errors.Is(err, ErrNotOwner) {
		t.Errorf("the retired certificate still authenticates: %v", err)
	}
	if n := strings.Count(strings.Join(f.events, " "), KindUpdate); n != 2 {
		t.Errorf("%d update events, want 2: %v", n, f.events)
	}
	f.noKeyMaterial()
}

// TestTrustChangePending is finding 1 at the registry: an active merchant
// adds the issuer role, card:approve with a BIN range and an endpoint of
// its own. Nothing of it is in force until an operator approves.
func TestTrustChangePending(t *testing.T) {
	f := newFixture(t)
	shop := f.entity(shopID, []metadata.Role{metadata.RoleMerchant}, offer(t, svcNotify, ""))
	f.activate(shop)
	before := f.get(shopID)
	f.tick()
	attack := f.entity(shopID, []metadata.Role{metadata.RoleMerchant, metadata.RoleIssuer}, offer(t, svcNotify, ""), offer(t, svcApprove, "404143"))
	attack.Endpoints = append(attack.Endpoints, metadata.Endpoint{Service: svcApprove, Binding: saml.BindingSOAP, Location: "https://capture.shop.test/approve"})
	res := f.update(attack)
	if !res.Pending || res.ChangeID == "" || !slices.Equal(res.Diff.AddedRoles, []metadata.Role{metadata.RoleIssuer}) || !slices.Equal(res.Diff.AddedServices, []string{svcApprove}) {
		t.Fatalf("trust change not pending: %+v", res)
	}
	p := f.get(shopID)
	if p.Status != store.StatusActive || !bytes.Equal(p.Metadata, before.Metadata) || !slices.Equal(p.Roles, []store.Role{store.RoleMerchant}) ||
		len(p.Services) != 1 || len(p.Endpoints) != 1 || p.Version != before.Version+1 {
		t.Fatalf("the active version changed: %+v", p)
	}
	if p.Pending == nil || !bytes.Equal(p.Pending.Metadata, f.md(attack)) || !p.Pending.RequestedAt.Equal(f.now) || ChangeID(p.Pending) != res.ChangeID {
		t.Fatalf("pending version: %+v", p.Pending)
	}
	e := f.lastAudit(shopID)
	wantLines := []string{
		"+ role issuer",
		"+ service urn:kecis:service:card:approve BINs 404143; callers pg",
		"+ endpoint urn:kecis:service:card:approve soap https://capture.shop.test/approve priority 0",
	}
	if e.rec.Kind != KindChangeRequest || e.rec.Actor != shopID || e.detail["change"] != res.ChangeID || !slices.Equal(diffOf(e), wantLines) {
		t.Errorf("audit %s: %v", e.rec.Kind, e.detail)
	}
	if d, err := f.reg.PendingDiff(p); err != nil || !slices.Equal(d.Lines(), wantLines) {
		t.Errorf("PendingDiff: %v %v", d, err)
	}

	// The operator approves: in force.
	f.tick()
	q, err := f.reg.Decide(f.ctx, Decision{EntityID: shopID, Action: ActionApproveChange, Operator: "alice", Reason: "issuing contract", Change: res.ChangeID})
	if err != nil {
		t.Fatal(err)
	}
	p = f.get(shopID)
	if q.Status != store.StatusActive || p.Pending != nil || !bytes.Equal(p.Metadata, f.md(attack)) || !slices.Contains(p.Roles, store.RoleIssuer) || len(p.Services) != 2 {
		t.Fatalf("approved change not in force: %+v", p)
	}
	e = f.lastAudit(shopID)
	if e.rec.Kind != KindChangeApprove || e.rec.Actor != "alice" || e.detail["reason"] != "issuing contract" || e.detail["change"] != res.ChangeID || !slices.Equal(diffOf(e), wantLines) {
		t.Errorf("audit %s: %v", e.rec.Kind, e.detail)
	}
	if !slices.Contains(f.events, KindChangeRequest) || !slices.Contains(f.events, KindChangeApprove) {
		t.Errorf("events: %v", f.events)
	}
	f.noKeyMaterial()
}

func TestRejectChange(t *testing.T) {
	f := newFixture(t)
	shop := f.entity(shopID, []metadata.Role{metadata.RoleMerchant}, offer(t, svcNotify, ""))
	f.activate(shop)
	before := f.get(shopID)
	wider := f.entity(shopID, []metadata.Role{metadata.RoleMerchant}, offer(t, svcNotify, ""))
	wider.Services[0].Callers = append(wider.Services[0].Callers, metadata.RoleMerchant)
	res := f.update(wider)
	if !res.Pending {
		t.Fatal("a change of callers applied at once")
	}
	if _, err := f.reg.Decide(f.ctx, Decision{EntityID: shopID, Action: ActionRejectChange, Operator: "alice"}); !errors.Is(err, ErrDecision) {
		t.Fatalf("reject without a reason: %v", err)
	}
	if _, err := f.reg.Decide(f.ctx, Decision{EntityID: shopID, Action: ActionRejectChange, Operator: "alice", Reason: "no contract", Change: "0123"}); !errors.Is(err, ErrStaleChange) {
		t.Fatalf("reject of another change: %v", err)
	}
	p, err := f.reg.Decide(f.ctx, Decision{EntityID: shopID, Action: ActionRejectChange, Operator: "alice", Reason: "no contract"})
	if err != nil {
		t.Fatal(err)
	}
	got := f.get(shopID)
	if p.Pending != nil || got.Pending != nil || !bytes.Equal(got.Metadata, before.Metadata) || got.Status != store.StatusActive {
		t.Fatalf("after rejection: %+v", got)
	}
	e := f.lastAudit(shopID)
	if e.rec.Kind != KindChangeReject || e.detail["reason"] != "no contract" || e.detail["change"] != res.ChangeID ||
		!slices.Equal(diffOf(e), []string{"~ urn:kecis:service:order:notify callers pg → merchant pg"}) {
		t.Errorf("audit %s: %v", e.rec.Kind, e.detail)
	}
	if _, err := f.reg.Transition(f.ctx, shopID, ActionRejectChange, "alice", "again"); !errors.Is(err, ErrTransition) {
		t.Errorf("reject with nothing pending: %v", err)
	}
}

// TestNewerUpdatesWhilePending: the newest document is the participant's
// intent — a newer trust change replaces the pending one, a self-service
// update applies and withdraws it, and so does the active version sent
// back unchanged.
func TestNewerUpdatesWhilePending(t *testing.T) {
	f := newFixture(t)
	issuer := f.entity(issuerA, []metadata.Role{metadata.RoleIssuer}, offer(t, svcApprove, "404143"))
	f.activate(issuer)

	first := f.entity(issuerA, []metadata.Role{metadata.RoleIssuer}, offer(t, svcApprove, "404143 404144"))
	r1 := f.update(first)
	f.tick()
	second := f.entity(issuerA, []metadata.Role{metadata.RoleIssuer}, offer(t, svcApprove, "404143 404145"))
	r2 := f.update(second)
	if !r2.Pending || r2.Replaced != r1.ChangeID || r2.ChangeID == r1.ChangeID {
		t.Fatalf("second trust change: %+v (first %s)", r2, r1.ChangeID)
	}
	if p := f.get(issuerA); ChangeID(p.Pending) != r2.ChangeID || !p.Pending.RequestedAt.Equal(f.now) {
		t.Fatalf("pending is not the newest: %+v", p.Pending)
	}
	// The same change again (a retry) changes nothing, not even its time.
	requests := len(f.audit(issuerA))
	f.tick()
	if again := f.update(second); !again.Pending || again.ChangeID != r2.ChangeID || again.Replaced != "" {
		t.Fatalf("retry of the pending change: %+v", again)
	}
	if p := f.get(issuerA); !p.Pending.RequestedAt.Equal(f.now.Add(-time.Minute)) || len(f.audit(issuerA)) != requests {
		t.Fatalf("a retry moved the request: %+v", p.Pending)
	}
	// An operator who reviewed the first change cannot approve the second
	// by mistake.
	if _, err := f.reg.Decide(f.ctx, Decision{EntityID: issuerA, Action: ActionApproveChange, Operator: "alice", Change: r1.ChangeID}); !errors.Is(err, ErrStaleChange) {
		t.Fatalf("approve of a replaced change: %v", err)
	}

	// A key rollover while a change is pending: applied, the change withdrawn.
	f.tick()
	rolled := f.entity(issuerA, []metadata.Role{metadata.RoleIssuer}, offer(t, svcApprove, "404143"))
	rolled.Keys = append(rolled.Keys, metadata.KeyDescriptor{Use: metadata.UseEncryption, Certificate: f.cert("enc-new")})
	r3 := f.update(rolled)
	p := f.get(issuerA)
	if r3.Pending || r3.Replaced != r2.ChangeID || p.Pending != nil || !bytes.Equal(p.Metadata, f.md(rolled)) {
		t.Fatalf("rollover while pending: %+v %+v", r3, p)
	}
	kinds := f.kinds(issuerA)
	if !slices.Equal(kinds[len(kinds)-2:], []string{KindUpdate, KindChangeWithdraw}) {
		t.Errorf("audit: %v", kinds)
	}
	if e := f.lastAudit(issuerA); e.detail["change"] != r2.ChangeID {
		t.Errorf("withdrawal names %v", e.detail["change"])
	}

	// The active version sent back unchanged withdraws a pending change too.
	f.update(second)
	r4 := f.update(rolled)
	if r4.Pending || !r4.Diff.Empty() || r4.Replaced == "" || f.get(issuerA).Pending != nil {
		t.Fatalf("withdrawal by resubmission: %+v", r4)
	}
}

// TestSuspendedParticipantChanges: a suspended participant's trust change
// is pending too; reinstating does not approve it; approving it keeps the
// participant suspended.
func TestSuspendedParticipantChanges(t *testing.T) {
	f := newFixture(t)
	shop := f.entity(shopID, []metadata.Role{metadata.RoleMerchant})
	f.activate(shop)
	f.decide(shopID, ActionSuspend)
	pg := f.entity(shopID, []metadata.Role{metadata.RoleMerchant, metadata.RolePG})
	if res := f.update(pg); !res.Pending {
		t.Fatal("a suspended participant's role change applied at once")
	}
	f.decide(shopID, ActionReinstate)
	if p := f.get(shopID); p.Pending == nil || slices.Contains(p.Roles, store.RolePG) {
		t.Fatalf("reinstating approved the change: %+v", p)
	}
	f.decide(shopID, ActionSuspend)
	if p := f.decide(shopID, ActionApproveChange); p.Status != store.StatusSuspended || !slices.Contains(p.Roles, store.RolePG) {
		t.Fatalf("approve-change on a suspended participant: %+v", p)
	}
}

// TestChangeGate: with the registration gate, a change that adds a role
// or a service is approved only after a passing report recorded after it
// was requested (for a new role, of that role's plan), made with the new
// version's keys; a change that adds neither needs no new report.
func TestChangeGate(t *testing.T) {
	f := newFixture(t)
	f.reg.Gate = ConformanceGate{Required: true}
	shop := f.entity(shopID, []metadata.Role{metadata.RoleMerchant}, offer(t, svcNotify, ""))
	f.register(shop)
	report := func(plan string, ed *metadata.EntityDescriptor) error {
		var keys []string
		for _, k := range append(slices.Clone(ed.Keys), ed.TLSKeys...) {
			keys = append(keys, saml.Fingerprint(k.Certificate))
		}
		b, _ := json.Marshal(map[string]any{"suite": "KECIS conformance suite", "plan": plan, "participant": ed.EntityID,
			"roles": []string{plan}, "runId": "run-" + plan, "finished": f.now, "passed": true, "summary": map[string]int{"PASSED": 9}, "keys": keys})
		f.tick()
		_, err := f.reg.RecordConformance(f.ctx, ed.EntityID, "alice", b)
		return err
	}
	if err := report("merchant", shop); err != nil {
		t.Fatal(err)
	}
	f.decide(shopID, ActionApprove)
	// A report of the issuer plan from before the change does not count.
	issuer := f.entity(shopID, []metadata.Role{metadata.RoleMerchant, metadata.RoleIssuer}, offer(t, svcNotify, ""), offer(t, svcApprove, "404143"))
	if err := report("issuer", issuer); !errors.Is(err, ErrConformance) {
		t.Fatalf("an issuer report for a merchant: %v", err)
	}
	f.tick()
	f.update(issuer)
	approve := func() error {
		_, err := f.reg.Decide(f.ctx, Decision{EntityID: shopID, Action: ActionApproveChange, Operator: "alice"})
		return err
	}
	if err := approve(); !errors.Is(err, ErrConformance) || !strings.Contains(err.Error(), "of the issuer plan recorded after the change was requested") {
		t.Fatalf("approve without a new report: %v", err)
	}
	if err := report("merchant", issuer); err != nil {
		t.Fatalf("a merchant report: %v", err)
	}
	if err := approve(); !errors.Is(err, ErrConformance) {
		t.Fatalf("approve with a report of another plan: %v", err)
	}
	// A report made with the old keys does not open it.
	withOldKeys := f.entity(shopID, issuer.Roles)
	withOldKeys.Keys = withOldKeys.Keys[:0]
	withOldKeys.Keys = append(withOldKeys.Keys, metadata.KeyDescriptor{Use: metadata.UseSigning, Certificate: f.cert("other")})
	if err := report("issuer", withOldKeys); !errors.Is(err, ErrConformance) {
		t.Fatalf("a report with other keys opened the gate: %v", err)
	}
	if err := approve(); !errors.Is(err, ErrConformance) || !strings.Contains(err.Error(), "did not test the registered keys") {
		t.Fatalf("approve after a report with other keys: %v", err)
	}
	// The issuer plan's report for the pending version opens it (and
	// RecordConformance says so).
	if err := report("issuer", issuer); err != nil {
		t.Fatalf("a passing report for the pending version: %v", err)
	}
	if err := approve(); err != nil {
		t.Fatalf("approve after a passing report: %v", err)
	}
	// Widening a BIN range adds neither role nor service: no new report.
	wider := f.entity(shopID, issuer.Roles, offer(t, svcNotify, ""), offer(t, svcApprove, "404143 404150"))
	f.update(wider)
	if err := approve(); err != nil {
		t.Fatalf("approve of a BIN range change: %v", err)
	}
	// A new service for a role it has: the latest report after the request,
	// of any of its plans.
	f.tick()
	refund := f.entity(shopID, issuer.Roles, offer(t, svcNotify, ""), offer(t, svcApprove, "404143 404150"), offer(t, svcRefund, "404143"))
	f.update(refund)
	if err := approve(); !errors.Is(err, ErrConformance) || !strings.Contains(err.Error(), "adds services "+svcRefund) {
		t.Fatalf("approve of a new service without a report: %v", err)
	}
	if err := report("issuer", refund); err != nil {
		t.Fatal(err)
	}
	if err := approve(); err != nil {
		t.Fatalf("approve of a new service after a report: %v", err)
	}
}

// TestOverlap: one issuer per BIN, one bank per bank code (KECIS §13.5).
func TestOverlap(t *testing.T) {
	f := newFixture(t)
	issuer := []metadata.Role{metadata.RoleIssuer}
	bank := []metadata.Role{metadata.RoleBank}
	f.activate(f.entity(issuerA, issuer, offer(t, svcApprove, "4041")))

	// A nested BIN range of the same service is refused, naming the other.
	b := f.entity(issuerB, issuer, offer(t, svcApprove, "5 404143"))
	f.register(b)
	_, err := f.reg.Decide(f.ctx, Decision{EntityID: issuerB, Action: ActionApprove, Operator: "alice"})
	if !errors.Is(err, ErrOverlap) || !strings.Contains(err.Error(), issuerA) || !strings.Contains(err.Error(), "BINs 404143 and 4041") {
		t.Fatalf("overlapping approval: %v", err)
	}
	// The override needs the other's name and a reason.
	if _, err := f.reg.Decide(f.ctx, Decision{EntityID: issuerB, Action: ActionApprove, Operator: "alice", AllowOverlap: []string{issuerA}}); !errors.Is(err, ErrDecision) {
		t.Fatalf("override without a reason: %v", err)
	}
	if _, err := f.reg.Decide(f.ctx, Decision{EntityID: issuerB, Action: ActionApprove, Operator: "alice", Reason: "x", AllowOverlap: []string{"https://someone-else.test/kecis"}}); !errors.Is(err, ErrOverlap) {
		t.Fatalf("override naming someone else: %v", err)
	}
	if _, err := f.reg.Decide(f.ctx, Decision{EntityID: issuerB, Action: ActionSuspend, Operator: "alice", Reason: "x", AllowOverlap: []string{issuerA}}); !errors.Is(err, ErrDecision) {
		t.Fatalf("override on suspend: %v", err)
	}
	p, err := f.reg.Decide(f.ctx, Decision{EntityID: issuerB, Action: ActionApprove, Operator: "alice", Reason: "B issues the 404143 sub-range for A", AllowOverlap: []string{issuerA}})
	if err != nil || p.Status != store.StatusActive {
		t.Fatalf("approve with an override: %v", err)
	}
	e := f.lastAudit(issuerB)
	if ov, _ := e.detail["allowed_overlaps"].([]any); len(ov) != 1 || !strings.Contains(ov[0].(string), issuerA) {
		t.Errorf("the override is not in the audit record: %v", e.detail)
	}

	// Disjoint ranges, other services and other roles do not overlap.
	f.activate(f.entity("https://issuer-c.test/kecis", issuer, offer(t, svcApprove, "6")))
	f.activate(f.entity("https://issuer-d.test/kecis", issuer, offer(t, svcRefund, "4041")))
	f.activate(f.entity("https://pg.test/kecis", []metadata.Role{metadata.RolePG}, offer(t, svcApprove, "4")))
	// An issuer offering the service with no BIN list claims every BIN.
	f.register(f.entity("https://issuer-e.test/kecis", issuer, offer(t, svcApprove, "")))
	if _, err := f.reg.Transition(f.ctx, "https://issuer-e.test/kecis", ActionApprove, "alice", ""); !errors.Is(err, ErrOverlap) || !strings.Contains(err.Error(), "every BIN") {
		t.Fatalf("an issuer without a BIN list: %v", err)
	}

	// Banks, by bank code.
	f.activate(f.entity("https://bank-x.test/kecis", bank, offer(t, svcXfer, "", "004", "020")))
	f.activate(f.entity("https://bank-y.test/kecis", bank, offer(t, svcXfer, "", "088")))
	f.register(f.entity("https://bank-z.test/kecis", bank, offer(t, svcXfer, "", "011", "020")))
	if _, err := f.reg.Transition(f.ctx, "https://bank-z.test/kecis", ActionApprove, "alice", ""); !errors.Is(err, ErrOverlap) ||
		!strings.Contains(err.Error(), "https://bank-x.test/kecis") || !strings.Contains(err.Error(), "bank code 020") {
		t.Fatalf("overlapping bank codes: %v", err)
	}

	// A reinstatement is checked against who became active meanwhile.
	f.decide("https://issuer-c.test/kecis", ActionSuspend)
	f.activate(f.entity("https://issuer-f.test/kecis", issuer, offer(t, svcApprove, "61-62")))
	if _, err := f.reg.Transition(f.ctx, "https://issuer-c.test/kecis", ActionReinstate, "alice", ""); !errors.Is(err, ErrOverlap) || !strings.Contains(err.Error(), "https://issuer-f.test/kecis") {
		t.Fatalf("overlapping reinstatement: %v", err)
	}

	// A pending change is checked when approved, not when requested.
	f.update(f.entity("https://issuer-d.test/kecis", issuer, offer(t, svcRefund, "4041"), offer(t, svcApprove, "404100-404199")))
	_, err = f.reg.Transition(f.ctx, "https://issuer-d.test/kecis", ActionApproveChange, "alice", "")
	if !errors.Is(err, ErrOverlap) || !strings.Contains(err.Error(), issuerA) || !strings.Contains(err.Error(), issuerB) {
		t.Fatalf("overlapping change: %v", err)
	}
	if p := f.get("https://issuer-d.test/kecis"); p.Pending == nil || len(p.Services) != 1 {
		t.Fatalf("a refused approval changed the participant: %+v", p)
	}
	if _, err := f.reg.Decide(f.ctx, Decision{EntityID: "https://issuer-d.test/kecis", Action: ActionApproveChange, Operator: "alice",
		Reason: "co-issued range", AllowOverlap: []string{issuerA, issuerB}}); err != nil {
		t.Fatalf("approve-change with overrides: %v", err)
	}
}

// TestUniqueCertificatesAndEndpoints: a participant cannot publish another
// participant's TLS client certificate or endpoint URL — not at
// registration, not as a self-service change.
func TestUniqueCertificatesAndEndpoints(t *testing.T) {
	f := newFixture(t)
	victim := f.entity(issuerA, []metadata.Role{metadata.RoleIssuer}, offer(t, svcApprove, "404143"))
	f.activate(victim)
	shop := f.entity(shopID, []metadata.Role{metadata.RoleMerchant})
	f.activate(shop)

	steal := f.entity(shopID, []metadata.Role{metadata.RoleMerchant})
	steal.TLSKeys = append(steal.TLSKeys, metadata.KeyDescriptor{Use: metadata.UseTLSClient, Certificate: f.cert(issuerA + "/tls")})
	if _, err := f.reg.UpdateMetadata(f.ctx, shopID, f.md(steal), f.tls(shopID)); !errors.Is(err, ErrInvalidMetadata) || !strings.Contains(err.Error(), "another participant's") {
		t.Fatalf("publishing another's TLS client certificate: %v", err)
	}
	shadow := f.entity(shopID, []metadata.Role{metadata.RoleMerchant})
	shadow.Endpoints = append(shadow.Endpoints, metadata.Endpoint{Service: svcApprove, Binding: saml.BindingSOAP, Location: victim.Endpoints[0].Location})
	if _, err := f.reg.UpdateMetadata(f.ctx, shopID, f.md(shadow), f.tls(shopID)); !errors.Is(err, ErrInvalidMetadata) || !strings.Contains(err.Error(), victim.Endpoints[0].Location) {
		t.Fatalf("publishing another's endpoint: %v", err)
	}
	newcomer := f.entity("https://new.test/kecis", []metadata.Role{metadata.RoleMerchant})
	newcomer.Endpoints = victim.Endpoints
	if _, err := f.reg.Register(f.ctx, f.md(newcomer), f.tls("https://new.test/kecis")); !errors.Is(err, ErrInvalidMetadata) {
		t.Fatalf("registering with another's endpoint: %v", err)
	}
	// A removed participant's URL and certificate are free again.
	f.decide(issuerA, ActionRemove)
	if _, err := f.reg.Register(f.ctx, f.md(newcomer), f.tls("https://new.test/kecis")); err != nil {
		t.Fatalf("registering with a removed participant's endpoint: %v", err)
	}
	if p := f.get(shopID); !bytes.Equal(p.Metadata, f.md(shop)) {
		t.Error("a refused update changed the participant")
	}
}

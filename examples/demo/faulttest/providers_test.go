package faulttest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kecis/kecis/examples/demo"
	"github.com/kecis/kecis/federation/server"
	"github.com/kecis/kecis/federation/store"
	"github.com/kecis/kecis/internal/devpki"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// badProvider is a provider's endpoint that fails: it answers garbage
// (HTTP 200 that is no SOAP), an HTTP 500, or drops the connection, in
// turn; or, hanging, holds every request until the caller gives up. It
// never reaches an issuer.
type badProvider struct {
	id   string
	srv  *httptest.Server
	hang bool
	hits atomic.Int64
	// stop releases the hanging requests when the test ends.
	stop chan struct{}
}

// newBadProvider starts the endpoint and registers it as a participant
// copied from the demo's PG (its services, callers and limits) with keys
// and an endpoint of its own.
func (f *fed) newBadProvider(name string, hang bool) *badProvider {
	t := f.t
	t.Helper()
	b := &badProvider{id: "https://" + name + ".kecis.test/kecis", hang: hang, stop: make(chan struct{})}
	b.srv = httptest.NewUnstartedServer(http.HandlerFunc(b.serve))
	now := time.Now()
	certOf := func(kind devpki.Kind, what string) (tls.Certificate, *x509.Certificate) {
		keyPEM, certPEM, err := devpki.Generate(kind, name+" "+what, devpki.LoopbackHosts, now)
		if err != nil {
			t.Fatal(err)
		}
		kp, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		blk, _ := pem.Decode(certPEM)
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return kp, c
	}
	tlsKP, tlsCert := certOf(devpki.TLSServer, "TLS")
	_, signing := certOf(devpki.Signing, "signing")
	_, encryption := certOf(devpki.Encryption, "encryption")
	b.srv.TLS = &tls.Config{Certificates: []tls.Certificate{tlsKP}}
	b.srv.StartTLS()
	t.Cleanup(b.srv.Close)
	t.Cleanup(func() { close(b.stop) })

	ctx := bounded(t)
	p, err := f.d.HubStore.GetParticipant(ctx, demo.PGID)
	if err != nil {
		t.Fatal(err)
	}
	ed, err := metadata.Parse(p.Metadata)
	if err != nil {
		t.Fatal(err)
	}
	ed.EntityID, ed.DisplayName = b.id, name+" (faulttest)"
	ed.Keys = []metadata.KeyDescriptor{{Use: metadata.UseSigning, Certificate: signing}, {Use: metadata.UseEncryption, Certificate: encryption}}
	ed.TLSKeys = []metadata.KeyDescriptor{{Use: metadata.UseTLSServer, Certificate: tlsCert}}
	ed.Endpoints = []metadata.Endpoint{{Service: metadata.AnyService, Binding: saml.BindingSOAP, Location: b.srv.URL + "/kecis/soap"}}
	md, err := metadata.Marshal(ed)
	if err != nil {
		t.Fatal(err)
	}
	if err := server.SeedActive(ctx, f.d.HubStore, md, now); err != nil {
		t.Fatal(err)
	}
	f.d.Hub.RegistryChanged()
	return b
}

func (b *badProvider) serve(w http.ResponseWriter, r *http.Request) {
	n := b.hits.Add(1)
	if b.hang {
		select {
		case <-r.Context().Done():
		case <-b.stop:
		}
		return
	}
	switch n % 3 {
	case 1:
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		fmt.Fprint(w, `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><garbage`)
	case 2:
		http.Error(w, "internal error", http.StatusInternalServerError)
	default:
		hj, ok := w.(http.Hijacker)
		if !ok {
			panic("no hijacker")
		}
		conn, _, err := hj.Hijack()
		if err == nil {
			conn.Close()
		}
	}
}

// routeTo sends merchant m's card payments of amounts in [min, max] to
// target, before any other rule.
func (f *fed) routeTo(id string, m *demo.Merchant, min, max int64, target string) {
	f.t.Helper()
	if err := f.d.HubStore.PutRoutingRule(context.Background(), &store.RoutingRule{ID: id, Priority: 1, Service: "urn:kecis:service:card:",
		Merchant: m.EntityID, MinAmount: min, MaxAmount: max, Target: target, CreatedAt: time.Now().UTC()}); err != nil {
		f.t.Fatal(err)
	}
}

// TestProviderFaults: two replicas relay the first shop's approvals to
// the demo's PG throughout, while the second shop's payments go — by
// routing rules added while the replicas run, seen by both at once — to
// providers that fail: one answers garbage, HTTP 500 or drops the
// connection; one never answers. Each failed payment gets a clear answer
// (Pending when the request may have been delivered, unavailable once the
// provider's circuit breaker opened) within the relay timeout; once a
// breaker is open the bad provider is not called and the hub answers at
// once; the first shop's approvals keep their pace, the hub's workers not
// held by the hanging provider. Then the issuer itself is slow (a card
// decided after 1s) and too slow (after the relay timeout): the payments
// end approved — the PG inquires — each once in the issuer's ledger.
func TestProviderFaults(t *testing.T) {
	dsn, _ := newDatabase(t)
	relay := 3 * time.Second
	f := startFed(t, fedOptions{postgres: dsn, relayTimeout: relay})
	garbage := f.newBadProvider("garbage", false)
	hanging := f.newBadProvider("hanging", true)
	a, b := f.addReplica("a"), f.addReplica("b")
	for _, r := range []*replica{a, b} {
		r.waitReadyz(t, http.StatusOK, 20*time.Second)
	}
	ctx := bounded(t)
	shop, shop2 := f.d.Merchants[0], f.d.Merchants[1]

	// The first shop's approvals through the PG, all along.
	healthy := &driver{f: f, targets: func() []string { return urls(a, b) }, retryFor: 30 * time.Second}
	loaded := make(chan []outcome, 1)
	go func() { loaded <- healthy.run(ctx, f.requests("ok", 60, 1000, shop), 2) }()

	// once sends one payment of the second shop to r, no retry.
	once := func(r *replica, key string, amount int64) sent {
		start := time.Now()
		cctx, cancel := context.WithTimeout(ctx, relay+10*time.Second)
		defer cancel()
		a := f.call(cctx, r.url, "approve", shop2, key, f.approveFields(key, amount))
		return sent{a, time.Since(start)}
	}
	clear := func(s sent, what string) {
		t.Helper()
		if s.ans.final() || !(s.ans.refused() || s.ans.status == http.StatusAccepted) {
			t.Errorf("%s: %v, want Pending (202) or a refusal (5xx)", what, s.ans)
		}
		if s.took > relay+2*time.Second {
			t.Errorf("%s: answered after %v, beyond the relay timeout %v", what, s.took, relay)
		}
	}

	// Garbage, HTTP 500, a dropped connection: one at a time, alternating
	// replicas, until both breakers are open.
	f.routeTo("faulttest-garbage", shop2, 10_000, 19_999, garbage.id)
	kinds := map[string]int{}
	for i := range 14 {
		r := []*replica{a, b}[i%2]
		s := once(r, fmt.Sprintf("garbage-%d", i), 10_000+int64(i))
		clear(s, fmt.Sprintf("payment %d to the garbage provider at replica %s", i, r.name))
		kinds[s.ans.String()]++
	}
	if h := garbage.hits.Load(); h >= 14 {
		t.Errorf("the garbage provider was called %d times for 14 payments: no breaker opened", h)
	}
	t.Logf("14 payments to the garbage provider: %v; it was called %d times", kinds, garbage.hits.Load())

	// A provider that never answers: a first wave costs the relay
	// timeout (Pending); once the breakers opened, a second wave is
	// answered at once and never reaches it.
	f.routeTo("faulttest-hanging", shop2, 20_000, 29_999, hanging.id)
	wave := func(from, per int) []sent {
		out := make([]sent, 2*per)
		var wg sync.WaitGroup
		for i := range out {
			wg.Add(1)
			go func() {
				defer wg.Done()
				out[i] = once([]*replica{a, b}[i%2], fmt.Sprintf("hang-%d", from+i), 20_000+int64(from+i))
			}()
		}
		wg.Wait()
		return out
	}
	hangStart := time.Now()
	first := wave(0, 5)
	for i, s := range first {
		clear(s, fmt.Sprintf("payment %d to the hanging provider", i))
	}
	hitsAfterFirst := hanging.hits.Load()
	second := wave(10, 3)
	var slowest time.Duration
	for i, s := range second {
		clear(s, fmt.Sprintf("payment %d to the hanging provider, breaker open", 10+i))
		if !s.ans.refused() {
			t.Errorf("payment %d to the hanging provider once its breaker opened: %v, want unavailable at once", 10+i, s.ans)
		}
		slowest = max(slowest, s.took)
	}
	if h := hanging.hits.Load(); h != hitsAfterFirst {
		t.Errorf("the hanging provider was called %d times after its breakers opened", h-hitsAfterFirst)
	}
	t.Logf("the hanging provider: the first wave %v (%v each), the second %v, the slowest in %v; called %d times",
		kindsOf(first), first[0].took.Round(time.Millisecond), kindsOf(second), slowest.Round(time.Millisecond), hanging.hits.Load())
	hangEnd := time.Now()

	outs := <-loaded
	summarize(t, "the first shop's approvals through the PG meanwhile", outs, 0)
	during := latencies(outs, hangStart, hangEnd)
	if len(during) > 0 && during[len(during)-1] >= relay {
		t.Errorf("a healthy approval waited %v while the hanging provider held requests", during[len(during)-1])
	}
	t.Logf("healthy approvals answered while the hanging provider held requests: %d, the slowest in %v", len(during), maxOf(during))

	// The issuer slow, then too slow, on the demo's timeout card.
	var issuerOuts []outcome
	for _, c := range []struct {
		delay time.Duration
		n     int
		from  int64
	}{{time.Second, 4, 40_000}, {relay + time.Second, 3, 50_000}} {
		slowCard := f.issuerDelay(c.delay)
		rqs := f.requests(fmt.Sprintf("issuer-%v", c.delay), c.n, c.from, shop)
		for i := range rqs {
			rqs[i].card = slowCard
		}
		dr := &driver{f: f, targets: func() []string { return urls(a, b) }, retryFor: 30 * time.Second, backoff: 200 * time.Millisecond}
		start := time.Now()
		got := dr.run(ctx, rqs, c.n)
		summarize(t, fmt.Sprintf("the issuer deciding after %v", c.delay), got, time.Since(start))
		issuerOuts = append(issuerOuts, got...)
	}
	all := append(outs, issuerOuts...)
	r := f.reconcile(all, 1000, 60_000)
	if r.Acknowledged != len(all) {
		t.Errorf("%d of %d approvals acknowledged", r.Acknowledged, len(all))
	}
	f.askAgain(all, urls(a, b))
	f.checkHubRecords(all)
}

// sent is one payment sent once, and how long its answer took.
type sent struct {
	ans  answer
	took time.Duration
}

// kindsOf counts the answers by kind.
func kindsOf(ss []sent) map[string]int {
	m := map[string]int{}
	for _, s := range ss {
		m[s.ans.String()]++
	}
	return m
}

// latencies are the durations of the outcomes that ended in [from, to],
// sorted.
func latencies(outs []outcome, from, to time.Time) []time.Duration {
	var out []time.Duration
	for _, o := range outs {
		if o.end.After(from) && o.end.Before(to) {
			out = append(out, o.took)
		}
	}
	slices.Sort(out)
	return out
}

func maxOf(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	return ds[len(ds)-1].Round(time.Millisecond)
}

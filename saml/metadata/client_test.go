package metadata_test

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/internal/testutil"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
	"github.com/kecis/kecis/saml/metadata/metadatatest"
)

type clientWorld struct {
	clock  *testutil.Clock
	hub    *metadatatest.Hub
	client *metadata.Client
}

// newClientWorld starts a hub holding the simple participant and the
// first ten generated ones, serving validUntil now+24h and cacheDuration
// 1h, and a client that pins the hub's certificate.
func newClientWorld(t *testing.T) *clientWorld {
	t.Helper()
	clock := testutil.NewClock(now)
	signer := hub(t)
	h := metadatatest.NewHub(t, signer, clock.Now, append([]*metadata.EntityDescriptor{simple(t)}, participants()[:10]...)...)
	c := &metadata.Client{HubURL: h.URL, HubCerts: []*x509.Certificate{signer.Cert}, HTTP: h.Client(), Now: clock.Now}
	return &clientWorld{clock: clock, hub: h, client: c}
}

func (w *clientWorld) lookup(t *testing.T, id string) *metadata.EntityDescriptor {
	t.Helper()
	ed, err := w.client.Lookup(context.Background(), id)
	if err != nil {
		t.Fatalf("Lookup(%s): %v", id, err)
	}
	return ed
}

func (w *clientWorld) wantRequests(t *testing.T, id string, n int) {
	t.Helper()
	if got := w.hub.Requests(id); got != n {
		t.Fatalf("%d requests reached the hub for %s, want %d", got, id, n)
	}
}

func TestClientCachesAndRefreshes(t *testing.T) {
	w := newClientWorld(t)
	ed := w.lookup(t, simpleID)
	if ed.EntityID != simpleID || len(ed.SigningCertificates()) != 2 {
		t.Fatalf("%+v", ed)
	}
	w.lookup(t, simpleID)
	w.wantRequests(t, simpleID, 1)
	w.clock.Advance(59 * time.Minute)
	w.lookup(t, simpleID)
	w.wantRequests(t, simpleID, 1)
	w.clock.Advance(time.Minute) // cacheDuration (1h) reached
	w.lookup(t, simpleID)
	w.wantRequests(t, simpleID, 2)

	// An entityID with characters MDQ must encode.
	odd := metadatatest.Simple("https://odd.example/kecis/테넌트?tenant=a&b=%2F", loadCert(t, "merchant-ec"))
	w.hub.Put(odd)
	if got := w.lookup(t, odd.EntityID); got.EntityID != odd.EntityID {
		t.Fatal(got.EntityID)
	}
}

// TestHubMDQForms: the test hub (like the real one) answers both MDQ
// identifier forms, and what it serves verifies.
func TestHubMDQForms(t *testing.T) {
	w := newClientWorld(t)
	for _, seg := range []string{metadata.EncodeMDQ(simpleID), metadata.EncodeMDQ(metadata.SHA1ID(simpleID)), metadata.SHA1ID(simpleID)} {
		resp, err := w.hub.Client().Get(w.hub.URL + metadata.EntitiesPath + seg)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != metadata.MediaType {
			t.Fatalf("%s: %d %s", seg, resp.StatusCode, body)
		}
		if ed, err := metadata.VerifyEntity(body, []*x509.Certificate{hub(t).Cert}, now); err != nil || ed.EntityID != simpleID {
			t.Fatalf("%s: %v", seg, err)
		}
	}
	resp, err := w.hub.Client().Get(w.hub.URL + metadata.AggregatePath)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	agg, err := metadata.VerifyAggregate(body, []*x509.Certificate{hub(t).Cert}, now)
	if err != nil || len(agg.Entities) != 11 {
		t.Fatalf("aggregate: %v", err)
	}
}

func TestClientTTLBounds(t *testing.T) {
	t.Run("MaxTTL", func(t *testing.T) {
		w := newClientWorld(t)
		w.client.MaxTTL = 10 * time.Minute
		w.lookup(t, simpleID)
		w.clock.Advance(10 * time.Minute)
		w.lookup(t, simpleID)
		w.wantRequests(t, simpleID, 2)
	})
	t.Run("validUntil", func(t *testing.T) {
		w := newClientWorld(t)
		w.hub.SetValidity(20*time.Minute, 6*time.Hour)
		w.lookup(t, simpleID)
		w.clock.Advance(19 * time.Minute)
		w.lookup(t, simpleID)
		w.wantRequests(t, simpleID, 1)
		w.clock.Advance(time.Minute)
		w.lookup(t, simpleID)
		w.wantRequests(t, simpleID, 2)
	})
}

func TestClientStaleWhileHubDown(t *testing.T) {
	w := newClientWorld(t)
	w.hub.SetValidity(3*time.Hour, time.Hour)
	w.lookup(t, simpleID)
	w.hub.SetDown(true)
	w.clock.Advance(90 * time.Minute) // due for refresh; the hub is down
	w.lookup(t, simpleID)             // stale but valid: served
	w.wantRequests(t, simpleID, 2)
	w.clock.Advance(10 * time.Second)
	w.lookup(t, simpleID) // within RetryInterval: no new attempt
	w.wantRequests(t, simpleID, 2)
	w.clock.Advance(30 * time.Second)
	w.lookup(t, simpleID)
	w.wantRequests(t, simpleID, 3)
	w.clock.Advance(90 * time.Minute) // validUntil (3h) passed
	if _, err := w.client.Lookup(context.Background(), simpleID); !errors.Is(err, metadata.ErrHubUnavailable) {
		t.Fatalf("a stale, no longer valid descriptor was served: %v", err)
	}
	// An entity never seen while the hub is down: an error.
	if _, err := w.client.Lookup(context.Background(), participants()[1].EntityID); !errors.Is(err, metadata.ErrHubUnavailable) {
		t.Fatalf("%v", err)
	}
	w.hub.SetDown(false)
	w.lookup(t, simpleID)
}

func TestClientRefusesBadSignatures(t *testing.T) {
	t.Run("tampered", func(t *testing.T) {
		w := newClientWorld(t)
		w.hub.SetTamper(func(b []byte) []byte {
			return []byte(strings.Replace(string(b), "https://pg.example/kecis/soap", "https://attacker.example/soap", 1))
		})
		_, err := w.client.Lookup(context.Background(), simpleID)
		if !errors.Is(err, saml.ErrSignature) || !errors.Is(err, metadata.ErrHubUnavailable) {
			t.Fatalf("%v", err)
		}
	})
	t.Run("tampered while cached: the verified copy stands until validUntil", func(t *testing.T) {
		w := newClientWorld(t)
		good := w.lookup(t, simpleID)
		w.hub.SetTamper(func(b []byte) []byte { return []byte(strings.Replace(string(b), `Roles="pg"`, `Roles="pg issuer"`, 1)) })
		w.clock.Advance(2 * time.Hour)
		if got := w.lookup(t, simpleID); got != good || got.HasRole(metadata.RoleIssuer) {
			t.Fatal("the tampered descriptor was used")
		}
		w.clock.Advance(23 * time.Hour)
		if _, err := w.client.Lookup(context.Background(), simpleID); err == nil {
			t.Fatal("served after validUntil")
		}
	})
	t.Run("wrong pinned hub certificate", func(t *testing.T) {
		w := newClientWorld(t)
		w.client.HubCerts = []*x509.Certificate{loadCert(t, "attacker-rsa")}
		if _, err := w.client.Lookup(context.Background(), simpleID); !errors.Is(err, saml.ErrSignature) {
			t.Fatalf("%v", err)
		}
	})
	t.Run("signed by another hub key", func(t *testing.T) {
		w := newClientWorld(t)
		w.hub.SetSigner(loadSigner(t, "attacker-rsa"))
		if _, err := w.client.Lookup(context.Background(), simpleID); !errors.Is(err, saml.ErrSignature) {
			t.Fatalf("%v", err)
		}
	})
	t.Run("no pinned certificate", func(t *testing.T) {
		w := newClientWorld(t)
		w.client.HubCerts = nil
		if _, err := w.client.Lookup(context.Background(), simpleID); !errors.Is(err, metadata.ErrHubUnavailable) {
			t.Fatalf("%v", err)
		}
	})
	t.Run("another entity's descriptor", func(t *testing.T) {
		// A hub (or a cache in front of it) that answers with a validly
		// signed descriptor of someone else.
		other := withValidity(participants()[0], time.Hour, 0)
		signed := mustSignEntity(t, other)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(signed) }))
		defer srv.Close()
		c := &metadata.Client{HubURL: srv.URL, HubCerts: []*x509.Certificate{hub(t).Cert}, Now: func() time.Time { return now }}
		if _, err := c.Lookup(context.Background(), simpleID); err == nil || !strings.Contains(err.Error(), "answered with") {
			t.Fatalf("%v", err)
		}
	})
}

func TestClientUnknownEntity(t *testing.T) {
	w := newClientWorld(t)
	const ghost = "https://ghost.example/kecis"
	for range 3 {
		if _, err := w.client.Lookup(context.Background(), ghost); !errors.Is(err, saml.ErrUnknownEntity) {
			t.Fatalf("%v", err)
		}
	}
	w.wantRequests(t, ghost, 1) // remembered for NegativeTTL
	w.hub.Put(metadatatest.Simple(ghost, loadCert(t, "merchant-ec")))
	w.client.Invalidate(ghost)
	w.lookup(t, ghost)
	w.wantRequests(t, ghost, 2)

	// A participant removed from the federation: once its cache entry is
	// due, the 404 drops it, even though its validUntil has not passed.
	w.hub.Remove(ghost)
	w.clock.Advance(time.Hour)
	if _, err := w.client.Lookup(context.Background(), ghost); !errors.Is(err, saml.ErrUnknownEntity) {
		t.Fatalf("%v", err)
	}
	// And the receive pipeline sees an unknown issuer.
	if _, err := w.client.SigningCertificates(context.Background(), ghost); !errors.Is(err, saml.ErrUnknownEntity) {
		t.Fatalf("%v", err)
	}
}

func TestClientConcurrentLookupsShareOneRequest(t *testing.T) {
	w := newClientWorld(t)
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			if _, err := w.client.Lookup(context.Background(), simpleID); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	w.wantRequests(t, simpleID, 1)
}

func TestClientAccessors(t *testing.T) {
	w := newClientWorld(t)
	ctx := context.Background()
	enc, err := w.client.EncryptionCertificate(ctx, simpleID)
	if err != nil || !enc.Equal(metadatatest.Pool()[0]) {
		t.Fatalf("%v", err)
	}
	ep, err := w.client.Endpoint(ctx, simpleID, saml.ServiceURI("card", "approve"), saml.BindingSOAP)
	if err != nil || ep.Location != "https://pg.example/kecis/soap" {
		t.Fatalf("%+v %v", ep, err)
	}
	if _, err := w.client.Endpoint(ctx, simpleID, saml.ServiceURI("card", "approve"), saml.BindingHTTPPOST); err == nil {
		t.Fatal("no POST endpoint is published")
	}
	gen := participants()[4]
	ep, err = w.client.Endpoint(ctx, gen.EntityID, gen.Services[0].Service, saml.BindingSOAP)
	if err != nil || !strings.Contains(ep.Location, "site1") {
		t.Fatalf("%+v %v", ep, err)
	}
}

// TestKeyRolloverThroughClient: a participant adds a signing key; during
// the overlap messages signed with either key verify in a receive pipeline
// that resolves keys with the Client; once the old key is removed (and the
// cache refreshed) a message signed with the old key is refused.
func TestKeyRolloverThroughClient(t *testing.T) {
	const merchant = "https://merchant.example/kecis"
	const dest = "https://pg.example/kecis/soap"
	w := newClientWorld(t)
	oldKey, newKey := loadSigner(t, "merchant-rsa"), loadSigner(t, "merchant-ec")
	w.hub.Put(metadatatest.Simple(merchant, oldKey.Cert))

	receiver := &saml.Receiver{
		Keys:                w.client,
		Replay:              saml.NewMemoryReplayCache(w.clock.Now),
		Destinations:        []string{dest},
		Now:                 w.clock.Now,
		AllowClearSensitive: true,
	}
	n := 0
	send := func(s *saml.Signer) error {
		t.Helper()
		n++
		b := &saml.Builder{Issuer: merchant, Now: w.clock.Now}
		req, err := b.NewRequest(dest, saml.ServiceURI("card", "cancel"))
		if err != nil {
			t.Fatal(err)
		}
		req.IdempotencyKey = "order-" + string(rune('a'+n))
		doc := etree.NewDocument()
		if err := doc.ReadFromString(`<kecis:Payload xmlns:kecis="urn:kecis:protocol:1.0"><Ecom SchemaVersion="urn:ietf:params:ecml:v2.0" ConsumerOrderID="ORDER-1"><Transaction Amount="15000" Currency="KRW" Type="credit"><Id Reference="APV0001"/></Transaction></Ecom></kecis:Payload>`); err != nil {
			t.Fatal(err)
		}
		if req.Payload, err = ecml.ParsePayload(doc.Root()); err != nil {
			t.Fatal(err)
		}
		el, err := req.Element()
		if err != nil {
			t.Fatal(err)
		}
		data, err := s.SignToBytes(el)
		if err != nil {
			t.Fatal(err)
		}
		_, err = receiver.ReceiveRequest(context.Background(), data)
		return err
	}

	// Before the rollover: the old key verifies, the new one is unknown.
	if err := send(oldKey); err != nil {
		t.Fatalf("old key before the rollover: %v", err)
	}
	if err := send(newKey); !errors.Is(err, saml.ErrSignature) {
		t.Fatalf("new key before it was published: %v", err)
	}

	// The participant publishes the new key beside the old one. Receivers
	// see it after their cache refreshes (or at once after Invalidate).
	w.hub.Put(metadatatest.Simple(merchant, oldKey.Cert, newKey.Cert))
	w.clock.Advance(time.Hour)
	for _, s := range []*saml.Signer{oldKey, newKey, oldKey, newKey} {
		if err := send(s); err != nil {
			t.Fatalf("overlap, %s: %v", s.Algorithm(), err)
		}
	}

	// The old key is removed.
	w.hub.Put(metadatatest.Simple(merchant, newKey.Cert))
	if err := send(oldKey); err != nil {
		t.Fatalf("until the cache refreshes, the old key still verifies: %v", err)
	}
	w.client.Invalidate(merchant)
	if err := send(oldKey); !errors.Is(err, saml.ErrSignature) {
		t.Fatalf("old key after its removal: %v", err)
	}
	if err := send(newKey); err != nil {
		t.Fatalf("new key after the rollover: %v", err)
	}
	// The same holds through an expiry-driven refresh.
	w.hub.Put(metadatatest.Simple(merchant, oldKey.Cert))
	w.clock.Advance(time.Hour)
	if err := send(newKey); !errors.Is(err, saml.ErrSignature) {
		t.Fatalf("removed key after a refresh: %v", err)
	}
}

func (w *clientWorld) aggregate(t *testing.T) *metadata.Aggregate {
	t.Helper()
	a, err := w.client.Aggregate(context.Background())
	if err != nil {
		t.Fatalf("Aggregate: %v", err)
	}
	return a
}

// TestClientAggregate: the aggregate goes through the same fetch, verify
// and cache as the per-entity lookups (KECIS §11.2), cached apart from
// them.
func TestClientAggregate(t *testing.T) {
	t.Run("cached for cacheDuration", func(t *testing.T) {
		w := newClientWorld(t)
		a := w.aggregate(t)
		if len(a.Entities) != 11 {
			t.Fatalf("%d entities", len(a.Entities))
		}
		if _, ok := a.Entity(simpleID); !ok {
			t.Fatal("the aggregate lacks the simple participant")
		}
		w.lookup(t, simpleID)
		w.wantRequests(t, simpleID, 1) // one cache, two documents
		w.clock.Advance(59 * time.Minute)
		if got := w.aggregate(t); got != a {
			t.Fatal("the cached aggregate was not reused")
		}
		w.wantRequests(t, metadata.AggregatePath, 1)
		w.clock.Advance(time.Minute)
		w.aggregate(t)
		w.wantRequests(t, metadata.AggregatePath, 2)
	})
	t.Run("MaxTTL and validUntil", func(t *testing.T) {
		w := newClientWorld(t)
		w.client.MaxTTL = 10 * time.Minute
		w.aggregate(t)
		w.clock.Advance(10 * time.Minute)
		w.aggregate(t)
		w.wantRequests(t, metadata.AggregatePath, 2)
		w.client.MaxTTL = 0
		w.hub.SetValidity(20*time.Minute, 6*time.Hour)
		w.clock.Advance(time.Hour)
		w.aggregate(t)
		w.clock.Advance(19 * time.Minute)
		w.aggregate(t)
		w.wantRequests(t, metadata.AggregatePath, 3)
		w.clock.Advance(time.Minute)
		w.aggregate(t)
		w.wantRequests(t, metadata.AggregatePath, 4)
	})
	t.Run("stale while the hub is down, never past validUntil", func(t *testing.T) {
		w := newClientWorld(t)
		w.hub.SetValidity(3*time.Hour, time.Hour)
		a := w.aggregate(t)
		w.hub.SetDown(true)
		w.clock.Advance(90 * time.Minute)
		if got := w.aggregate(t); got != a {
			t.Fatal("the stale aggregate was not served")
		}
		w.clock.Advance(10 * time.Second)
		w.aggregate(t) // within RetryInterval: no new attempt
		w.wantRequests(t, metadata.AggregatePath, 2)
		w.clock.Advance(90 * time.Minute)
		if _, err := w.client.Aggregate(context.Background()); !errors.Is(err, metadata.ErrHubUnavailable) {
			t.Fatalf("a stale, no longer valid aggregate was served: %v", err)
		}
		w.hub.SetDown(false)
		w.aggregate(t)
	})
	t.Run("refuses what the hub did not sign", func(t *testing.T) {
		w := newClientWorld(t)
		w.hub.SetTamper(func(b []byte) []byte {
			return []byte(strings.Replace(string(b), "https://pg.example/kecis/soap", "https://attacker.example/soap", 1))
		})
		if _, err := w.client.Aggregate(context.Background()); !errors.Is(err, saml.ErrSignature) || !errors.Is(err, metadata.ErrHubUnavailable) {
			t.Fatalf("tampered: %v", err)
		}
		w.hub.SetTamper(nil)
		w.hub.SetSigner(loadSigner(t, "attacker-rsa"))
		if _, err := w.client.Aggregate(context.Background()); !errors.Is(err, saml.ErrSignature) {
			t.Fatalf("another hub key: %v", err)
		}
	})
	t.Run("a 404 is no unknown entity", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		defer srv.Close()
		c := &metadata.Client{HubURL: srv.URL, HubCerts: []*x509.Certificate{hub(t).Cert}, Now: func() time.Time { return now }}
		if _, err := c.Aggregate(context.Background()); !errors.Is(err, metadata.ErrHubUnavailable) || errors.Is(err, saml.ErrUnknownEntity) {
			t.Fatalf("%v", err)
		}
	})
	t.Run("concurrent calls share one request", func(t *testing.T) {
		w := newClientWorld(t)
		var wg sync.WaitGroup
		for range 32 {
			wg.Go(func() {
				if _, err := w.client.Aggregate(context.Background()); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		w.wantRequests(t, metadata.AggregatePath, 1)
	})
}

package demo

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/internal/testutil"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// attacker drives the running demo from outside, as the tester of issue
// 12 did: with what demo.json gives a script and nothing else.
type attacker struct {
	t    *testing.T
	m    *Manifest
	dir  string
	pool *x509.CertPool
}

func (a *attacker) client(tlsCert, tlsKey string) *http.Client {
	tc := &tls.Config{RootCAs: a.pool, MinVersion: tls.VersionTLS12}
	if tlsCert != "" {
		kp, err := tls.LoadX509KeyPair(tlsCert, tlsKey)
		if err != nil {
			a.t.Fatal(err)
		}
		tc.Certificates = []tls.Certificate{kp}
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
}

// facade posts a raw body for merchant i and returns the status and the
// decoded answer.
func (a *attacker) facade(i int, path, key string, body []byte) (int, map[string]any) {
	a.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, a.m.HubURL+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+a.m.Merchants[i].APIKey)
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := a.client("", "").Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return resp.StatusCode, out
}

func (a *attacker) call(i int, op, key string, fields map[string]string, extra map[string]any) (int, map[string]any) {
	a.t.Helper()
	body := map[string]any{"fields": fields}
	for k, v := range extra {
		body[k] = v
	}
	b, _ := json.Marshal(body)
	return a.facade(i, "/v1/card/"+op, key, b)
}

func (a *attacker) approveFields(order string, amount, currency string) map[string]string {
	c := a.m.Cards[0]
	return map[string]string{"Ecom_ConsumerOrderID": order, "Ecom_Transaction_Amount": amount,
		"Ecom_Transaction_CurrencyCode": currency, "Ecom_Transaction_Type": "credit",
		"Ecom_Payment_Card_Number": c.Number, "Ecom_Payment_Card_ExpDate_Month": fmt.Sprintf("%02d", c.ExpMonth),
		"Ecom_Payment_Card_ExpDate_Year": fmt.Sprint(c.ExpYear)}
}

// answer is what a caller learns from an answer: outcome, statuses, message.
func answer(out map[string]any) string {
	return fmt.Sprintf("%v|%v|%v|%v", out["outcome"], out["status"], out["sub_status"], out["message"])
}

// TestAttacksOfIssue12AreRefused replays the authorization attacks of issue
// 12 against a running demo through the surfaces they used: the facade and
// the registration API, with two merchants' credentials from demo.json.
func TestAttacksOfIssue12AreRefused(t *testing.T) {
	logs := &testutil.SyncBuffer{}
	dir := t.TempDir()
	d, err := Start(context.Background(), Config{Dir: dir, RelayTimeout: 5 * time.Second, AllowClearCard: true,
		Log: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	m, err := ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Merchants) < 2 {
		t.Fatalf("the demo has %d merchants", len(m.Merchants))
	}
	ca, err := os.ReadFile(m.HubCA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	a := &attacker{t: t, m: m, dir: dir, pool: pool}

	// Finding 2: one merchant read, cancelled and refunded another's
	// payment through the PG, and order numbers collided.
	t.Run("another merchant's payment", func(t *testing.T) {
		code, out := a.call(0, "approve", "a-1", a.approveFields("ORDER-1", "15000", "KRW"), nil)
		if code != http.StatusOK || out["status"] != "Success" {
			t.Fatalf("shop 1 approves: %d %v", code, out)
		}
		byOrder := map[string]string{"Ecom_ConsumerOrderID": "ORDER-1"}
		refund := func(order string) map[string]string {
			return map[string]string{"Ecom_ConsumerOrderID": order, "Ecom_Transaction_Amount": "1000", "Ecom_Transaction_CurrencyCode": "KRW"}
		}
		for _, op := range []struct {
			name           string
			theirs, nobody map[string]string
		}{
			{"inquire", byOrder, map[string]string{"Ecom_ConsumerOrderID": "NO-SUCH-ORDER"}},
			{"cancel", byOrder, map[string]string{"Ecom_ConsumerOrderID": "NO-SUCH-ORDER"}},
			{"refund", refund("ORDER-1"), refund("NO-SUCH-ORDER")},
		} {
			_, ctl := a.call(1, op.name, "ctl-"+op.name, op.nobody, nil)
			_, got := a.call(1, op.name, "b-"+op.name, op.theirs, nil)
			if answer(got) != answer(ctl) || got["status"] == "Success" {
				t.Errorf("shop 2 %s of shop 1's order: %s; of an unknown order: %s", op.name, answer(got), answer(ctl))
			}
		}
		// Shop 1 still owns it, untouched.
		code, got := a.call(0, "inquire", "", byOrder, nil)
		if code != http.StatusOK || got["status"] != "Success" || got["fields"].(map[string]any)["Ecom_Transaction_ResponseData"] != "approved" {
			t.Fatalf("shop 1's inquire (by order number alone): %d %v", code, got)
		}
		// Order numbers are scoped per merchant.
		if code, got := a.call(1, "approve", "b-1", a.approveFields("ORDER-1", "12000", "KRW"), nil); code != http.StatusOK || got["status"] != "Success" {
			t.Fatalf("shop 2's own ORDER-1: %d %v", code, got)
		}
	})

	// Finding 3: routing rules fell through to the issuer.
	t.Run("routing rules bind", func(t *testing.T) {
		for _, tc := range []struct{ amount, currency string }{{"99", "KRW"}, {"12.34", "USD"}} {
			code, out := a.call(0, "approve", "r-"+tc.currency, a.approveFields("R-"+tc.currency, tc.amount, tc.currency), nil)
			if code != http.StatusUnprocessableEntity || out["type"] != "urn:kecis:problem:no-route" {
				t.Errorf("%s %s: %d %v (want no-route; never the issuer)", tc.amount, tc.currency, code, out)
			}
		}
		code, out := a.call(0, "approve", "r-named", a.approveFields("R-NAMED", "15000", "KRW"), map[string]any{"recipient": IssuerID})
		if code != http.StatusUnprocessableEntity || out["type"] != "urn:kecis:problem:no-route" {
			t.Errorf("a merchant names the issuer: %d %v", code, out)
		}
	})

	// Finding 5: the facade panicked on {} and on fields at the top level.
	t.Run("no input panics the facade", func(t *testing.T) {
		for _, body := range []string{`{}`, `{"Ecom_ConsumerOrderID":"ORDER-1"}`, `[]`, `{"fields":{"Ecom_Transaction_Amount":1}}`} {
			if code, out := a.facade(0, "/v1/card/inquire", "", []byte(body)); code >= 500 {
				t.Errorf("%s: %d %v", body, code, out)
			}
		}
		if bytes.Contains([]byte(logs.String()), []byte("panic")) {
			t.Error("a panic in the logs")
		}
	})

	// Finding 1: an active merchant rewrote its metadata to become the
	// issuer of the demo card's BIN, with an endpoint of its own. The change
	// is pending and in force nowhere: the published metadata does not show
	// it, and the card still goes to the real issuer.
	t.Run("a merchant claims the issuer's BIN", func(t *testing.T) {
		shop := m.Merchants[1]
		agg := a.aggregate()
		var ed *metadata.EntityDescriptor
		for _, e := range agg.Entities {
			if e.EntityID == shop.EntityID {
				ed = e
			}
		}
		if ed == nil {
			t.Fatal("shop 2 is not in the aggregate")
		}
		bins, _ := metadata.ParseBINList(ecml.PAN(m.Cards[0].Number).BIN())
		ed.Roles = append(ed.Roles, metadata.RoleIssuer)
		ed.Services = append(ed.Services, metadata.OfferedService{Service: saml.ServiceURI("card", "approve"), BINs: bins, Callers: []metadata.Role{metadata.RolePG}})
		ed.Endpoints = append(ed.Endpoints, metadata.Endpoint{Service: metadata.AnyService, Binding: saml.BindingSOAP, Location: "https://127.0.0.1:1/evil/soap"})
		ed.ValidUntil, ed.CacheDuration, ed.ID = time.Time{}, 0, ""
		md, err := metadata.Marshal(ed)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodPut, m.HubURL+"/kecis/federation/participants?entity_id="+url.QueryEscape(shop.EntityID), bytes.NewReader(md))
		req.Header.Set("Content-Type", "application/samlmetadata+xml")
		resp, err := a.client(shop.TLSCert, shop.TLSKey).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("the widening update: %d %s (want 202, pending an operator)", resp.StatusCode, b)
		}
		for _, e := range a.aggregate().Entities {
			if e.EntityID == shop.EntityID && (e.HasRole(metadata.RoleIssuer) || len(e.Services) > 0) {
				t.Fatalf("the pending change is published: roles %v, %d services", e.Roles, len(e.Services))
			}
		}
		// The PG's resolver still sends the card to the issuer.
		code, out := a.call(0, "approve", "f1-1", a.approveFields("F1-1", "15000", "KRW"), nil)
		if code != http.StatusOK || out["status"] != "Success" {
			t.Fatalf("shop 1's payment after the claim: %d %v", code, out)
		}
	})
	testutil.AssertNoPANInSQLite(t, filepath.Join(dir, "hub", "hub.db"))
}

func (a *attacker) aggregate() *metadata.Aggregate {
	a.t.Helper()
	resp, err := a.client("", "").Get(a.m.HubURL + metadata.AggregatePath)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	pem, err := os.ReadFile(a.m.HubSigningCert)
	if err != nil {
		a.t.Fatal(err)
	}
	certs, err := saml.ParseCertificatesPEM(pem)
	if err != nil {
		a.t.Fatal(err)
	}
	agg, err := metadata.VerifyAggregate(b, certs, time.Now())
	if err != nil {
		a.t.Fatal(err)
	}
	return agg
}

package sidecar

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

const (
	shopA = "https://shop.test/kecis"
	shopB = "https://shop2.test/kecis"
	hubID = "https://hub.test/kecis"
)

// fakeNative is a native PG with one account per API key, as the example
// PG has: each account sees its own orders only.
type fakeNative struct {
	t        *testing.T
	mu       sync.Mutex
	accounts map[string]string            // API key → mid
	orders   map[string]map[string]string // mid → order → tid
	calls    []string                     // "<mid> <method> <path>"
	common   []string                     // X-Client of each call
}

func newFakeNative(t *testing.T, accounts map[string]string) *fakeNative {
	return &fakeNative{t: t, accounts: accounts, orders: map[string]map[string]string{}}
}

func (f *fakeNative) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	mid, ok := f.accounts[r.Header.Get("X-PG-Key")]
	if !ok {
		w.WriteHeader(401)
		io.WriteString(w, `{"resultCode":"1001","resultMsg":"unknown key"}`)
		return
	}
	f.calls = append(f.calls, mid+" "+r.Method+" "+r.URL.Path)
	f.common = append(f.common, r.Header.Get("X-Client"))
	if f.orders[mid] == nil {
		f.orders[mid] = map[string]string{}
	}
	switch {
	case r.Method == "POST" && r.URL.Path == "/pg/v1/payments":
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body["mid"] != mid {
			f.t.Errorf("native: approve for mid %v with the key of %s", body["mid"], mid)
			io.WriteString(w, `{"resultCode":"1001","resultMsg":"mid mismatch"}`)
			return
		}
		order := body["orderNo"].(string)
		if _, dup := f.orders[mid][order]; dup {
			io.WriteString(w, `{"resultCode":"1006","resultMsg":"duplicate order"}`)
			return
		}
		tid := fmt.Sprintf("T%s-%s", mid, order)
		f.orders[mid][order] = tid
		fmt.Fprintf(w, `{"resultCode":"0000","tid":%q,"approvalNo":"12345678","amount":%v,"status":"APPROVED"}`, tid, body["amount"])
	case r.Method == "GET" && r.URL.Path == "/pg/v1/payments":
		q := r.URL.Query()
		tid, ok := f.orders[mid][q.Get("orderNo")]
		if !ok || q.Get("mid") != mid {
			io.WriteString(w, `{"resultCode":"1007","resultMsg":"not found"}`)
			return
		}
		fmt.Fprintf(w, `{"resultCode":"0000","tid":%q}`, tid)
	case r.Method == "POST" && strings.HasSuffix(r.URL.Path, "/cancel"):
		tid := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/pg/v1/payments/"), "/cancel")
		if !strings.HasPrefix(tid, "T"+mid+"-") {
			io.WriteString(w, `{"resultCode":"1007","resultMsg":"not found"}`)
			return
		}
		io.WriteString(w, `{"resultCode":"0000","status":"CANCELLED","amount":15000,"refundedAmount":15000}`)
	default:
		w.WriteHeader(404)
	}
}

func (f *fakeNative) seen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// goodEngine is the engine of testdata/good.yaml against native, with the
// two shops' keys.
func goodEngine(t *testing.T, native http.Handler) map[string]connectors.ServiceFunc {
	t.Helper()
	data, err := os.ReadFile("testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{"PG_KEY": "key-of-shop-a", "PG_KEY_2": "key-of-shop-b"}
	cfg, err := Parse(data, "good.yaml", t.TempDir(), func(k string) string { return keys[k] })
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(native)
	t.Cleanup(srv.Close)
	cfg.Native.BaseURL = srv.URL
	return NewEngine(cfg, nil, nil).Services()
}

func approveForm(t *testing.T, order string) *ecml.Payload {
	t.Helper()
	p, err := ecml.FromForm(url.Values{"Ecom_SchemaVersion": {ecml.SchemaVersion}, "Ecom_ConsumerOrderID": {order},
		"Ecom_Transaction_Amount": {"15000"}, "Ecom_Transaction_CurrencyCode": {"KRW"}, "Ecom_Payment_Card_Number": {"9490100895085583"},
		"Ecom_Payment_Card_ExpDate_Month": {"11"}, "Ecom_Payment_Card_ExpDate_Year": {"2031"}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func orderForm(t *testing.T, order string) *ecml.Payload {
	t.Helper()
	p, err := ecml.FromForm(url.Values{"Ecom_SchemaVersion": {ecml.SchemaVersion}, "Ecom_ConsumerOrderID": {order}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCallerWithoutAccountRefused: a caller the merchants table does not
// list — another merchant, the hub on its own behalf — is refused with
// Requester / RequestDenied before any native call, whatever the service;
// a request the hub sends on behalf of a listed merchant is that
// merchant's (KECIS §13.1).
func TestCallerWithoutAccountRefused(t *testing.T) {
	native := newFakeNative(t, map[string]string{"key-of-shop-a": "M000001", "key-of-shop-b": "M000002"})
	svc := goodEngine(t, native)
	ctx := context.Background()
	for _, c := range []struct{ issuer, onBehalfOf string }{
		{"https://other.test/kecis", ""},
		{hubID, ""},
		{hubID, "https://other.test/kecis"},
	} {
		for _, s := range []struct {
			uri     string
			payload *ecml.Payload
		}{{"urn:kecis:service:card:approve", approveForm(t, "ORD-X")}, {"urn:kecis:service:card:cancel", orderForm(t, "ORD-X")}} {
			_, err := svc[s.uri](ctx, &connectors.Request{Service: s.uri, Issuer: c.issuer, OnBehalfOf: c.onBehalfOf, IdempotencyKey: "k", Payload: s.payload})
			st, ok := connectors.AsStatus(err)
			if !ok || st.Code != saml.StatusRequester || st.SubCode != saml.StatusRequestDenied {
				t.Errorf("%s for %+v: %v, want Requester/RequestDenied", s.uri, c, err)
			}
		}
	}
	if calls := native.seen(); len(calls) != 0 {
		t.Fatalf("native calls for refused callers: %v", calls)
	}
	// On behalf of shop A: shop A's account.
	if _, err := svc["urn:kecis:service:card:approve"](ctx, &connectors.Request{Service: "urn:kecis:service:card:approve",
		Issuer: hubID, OnBehalfOf: shopA, IdempotencyKey: "k", Payload: approveForm(t, "ORD-H")}); err != nil {
		t.Fatal(err)
	}
	if calls := native.seen(); len(calls) != 1 || calls[0] != "M000001 POST /pg/v1/payments" {
		t.Fatalf("native calls %v, want shop A's approval", calls)
	}
}

// TestMerchantsUseTheirOwnAccounts: each merchant's requests reach the
// native API with its own key and merchant ID (and the common headers);
// two merchants may use one order number, and one cannot cancel the
// other's order by it.
func TestMerchantsUseTheirOwnAccounts(t *testing.T) {
	native := newFakeNative(t, map[string]string{"key-of-shop-a": "M000001", "key-of-shop-b": "M000002"})
	svc := goodEngine(t, native)
	ctx := context.Background()
	approve := func(merchant, key string) error {
		_, err := svc["urn:kecis:service:card:approve"](ctx, &connectors.Request{Service: "urn:kecis:service:card:approve",
			Issuer: merchant, IdempotencyKey: key, Payload: approveForm(t, "ORD-1")})
		return err
	}
	if err := approve(shopA, "a1"); err != nil {
		t.Fatal(err)
	}
	if err := approve(shopB, "b1"); err != nil {
		t.Fatalf("shop B's ORD-1 after shop A's: %v", err)
	}
	want := []string{"M000001 POST /pg/v1/payments", "M000002 POST /pg/v1/payments"}
	if got := native.seen(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("native calls %v, want %v", got, want)
	}
	for i, c := range native.common {
		if c != "kecis-sidecar" {
			t.Errorf("call %d: X-Client %q, want the common header", i, c)
		}
	}
	// Shop B cancels "ORD-1": its own, found and cancelled in its account.
	if _, err := svc["urn:kecis:service:card:cancel"](ctx, &connectors.Request{Service: "urn:kecis:service:card:cancel",
		Issuer: shopB, IdempotencyKey: "b2", Payload: orderForm(t, "ORD-1")}); err != nil {
		t.Fatal(err)
	}
	got := native.seen()[2:]
	want = []string{"M000002 GET /pg/v1/payments", "M000002 POST /pg/v1/payments/TM000002-ORD-1/cancel"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("shop B's cancel: native calls %v, want %v", got, want)
	}
}

// TestMerchantsTableChecked: a malformed merchants table is reported at
// start-up (and by --check) with the file, the line and the field, never
// with a header's value.
func TestMerchantsTableChecked(t *testing.T) {
	good, err := os.ReadFile("testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	const table = `  merchants:
    https://shop.test/kecis: {id: M000001, headers: {X-PG-Key: "${PG_KEY}"}}
    https://shop2.test/kecis: {id: M000002, headers: {X-PG-Key: "${PG_KEY_2}"}}
`
	if !strings.Contains(string(good), table) {
		t.Fatal("testdata/good.yaml changed: update this test")
	}
	env := map[string]string{"PG_KEY": "secret-a", "PG_KEY_2": "secret-b"}
	for _, c := range []struct {
		name, table string
		files       map[string]string
		want        []string
	}{
		{name: "no table", table: "", want: []string{
			"good.yaml:18: native.merchants: lists no merchant: every caller would be refused"}},
		{name: "empty table", table: "  merchants: {}\n", want: []string{
			"good.yaml:21: native.merchants: lists no merchant"}},
		{name: "no account", table: "  merchants:\n    https://shop.test/kecis: {}\n    https://shop2.test/kecis:\n", want: []string{
			"good.yaml:22: native.merchants.https://shop.test/kecis: names no native account (id:, headers:)",
			"good.yaml:23: native.merchants.https://shop2.test/kecis: names no native account"}},
		{name: "id missing", table: "  merchants:\n    https://shop.test/kecis: {headers: {X-PG-Key: a}}\n", want: []string{
			"good.yaml:22: native.merchants.https://shop.test/kecis.id: is required: a mapping sends {merchant: native}"}},
		{name: "unset variable", table: "  merchants:\n    https://shop.test/kecis: {id: M1, headers: {X-PG-Key: \"${UNSET}\"}}\n", want: []string{
			"good.yaml:22: native.merchants.https://shop.test/kecis.headers.X-PG-Key: ${UNSET} is not set"}},
		{name: "bad header name", table: "  merchants:\n    https://shop.test/kecis: {id: M1, headers: {\"X PG Key\": a}}\n", want: []string{
			"native.merchants.https://shop.test/kecis.headers.X PG Key: is not an HTTP header name"}},
		{name: "not an entityID", table: "  merchants:\n    shop.test: {id: M1}\n", want: []string{
			"good.yaml:22: native.merchants.shop.test: is not a merchant's entityID"}},
		{name: "one account for two", table: "  merchants:\n    https://shop.test/kecis: {id: M1, headers: {X-PG-Key: \"${PG_KEY}\"}}\n    https://shop2.test/kecis: {id: M1, headers: {x-pg-key: \"${PG_KEY}\"}}\n", want: []string{
			"good.yaml:23: native.merchants.https://shop2.test/kecis: reaches the native API as the same account as https://shop.test/kecis: each merchant needs its own"}},
		{name: "the old form", table: "  merchants:\n    https://shop.test/kecis: M000001\n", want: []string{"good.yaml"}},
		{name: "file unreadable", table: "  merchants_file: nowhere.yaml\n", want: []string{
			"good.yaml:21: native.merchants_file: cannot be read"}},
		{name: "file", table: "  merchants:\n    https://shop.test/kecis: {id: M1, headers: {X-PG-Key: a}}\n  merchants_file: m.yaml\n",
			files: map[string]string{"m.yaml": "merchants:\n  https://shop.test/kecis: {id: M2, headers: {X-PG-Key: b}}\n  https://shop2.test/kecis: {headers: {X-PG-Key: \"${PG_KEY_2}\"}}\n  https://shop3.test/kecis: {id: M3, headers: {X-PG-Key: \"\"}}\n"},
			want: []string{
				"m.yaml:2: merchants.https://shop.test/kecis: is also in native.merchants of good.yaml: a merchant has one native account",
				"m.yaml:3: merchants.https://shop2.test/kecis.id: is required",
				"m.yaml:4: merchants.https://shop3.test/kecis.headers.X-PG-Key: is empty"}},
		{name: "file typo", table: "  merchants_file: m.yaml\n", files: map[string]string{"m.yaml": "merchant:\n  https://shop.test/kecis: {id: M1}\n"},
			want: []string{"m.yaml"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, text := range c.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			data := strings.Replace(string(good), table, c.table, 1)
			_, err := Parse([]byte(data), "good.yaml", dir, func(k string) string { return env[k] })
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("missing %q in:\n%v", w, err)
				}
			}
			if strings.Contains(err.Error(), "secret-") {
				t.Errorf("a header value in the error: %v", err)
			}
		})
	}
	// A merchants file alone, expanded from the environment, is merged.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "m.yaml"), []byte("merchants:\n  https://shop.test/kecis: {id: M1, headers: {X-PG-Key: \"${PG_KEY}\"}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse([]byte(strings.Replace(string(good), table, "  merchants_file: m.yaml\n", 1)), "good.yaml", dir, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if m := cfg.Native.Merchants[shopA]; m == nil || m.ID != "M1" || m.Headers["X-PG-Key"] != "secret-a" || len(cfg.Native.Merchants) != 1 {
		t.Fatalf("merchants %+v", cfg.Native.Merchants)
	}
}

// TestNotFoundStatus: NotFound names a service's object rule's answer to
// an unknown object; a service without an object rule cannot use it.
func TestNotFoundStatus(t *testing.T) {
	good, err := os.ReadFile("testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	env := func(string) string { return "k" }
	withCodes := strings.Replace(string(good), `codes: {"3011": Declined,`, `codes: {"1007": NotFound, "3011": Declined,`, 1)
	if withCodes == string(good) {
		t.Fatal("testdata/good.yaml changed: update this test")
	}
	if _, err := Parse([]byte(withCodes), "good.yaml", t.TempDir(), env); err != nil {
		t.Fatalf("NotFound for card:approve: %v", err)
	}
	other := strings.Replace(withCodes, "urn:kecis:service:card:approve:", "urn:kecis:service:demo:echo:", 1)
	_, err = Parse([]byte(other), "good.yaml", t.TempDir(), env)
	if err == nil || !strings.Contains(err.Error(), `services.urn:kecis:service:demo:echo.status.codes.1007: urn:kecis:service:demo:echo has no object rule`) {
		t.Fatalf("NotFound for a service without an object rule: %v", err)
	}
}

package sidecar

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/callapi"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

// Engine turns the mapping file's services into SDK service functions
// that call the native API.
type Engine struct {
	cfg     *Config
	http    *http.Client
	log     *slog.Logger
	metrics *Metrics // nil: not counted
}

// NewEngine builds the engine for a loaded configuration.
func NewEngine(cfg *Config, hc *http.Client, log *slog.Logger) *Engine {
	if hc == nil {
		t := cfg.Native.Timeout
		if t == 0 {
			t = 15 * time.Second
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = connectors.MaxIdleConnsPerHost // concurrent calls to the one native API
		hc = &http.Client{Timeout: t, Transport: tr}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Engine{cfg: cfg, http: hc, log: log}
}

// Services returns the SDK functions, one per mapped service.
func (e *Engine) Services() map[string]connectors.ServiceFunc {
	out := map[string]connectors.ServiceFunc{}
	for uri, s := range e.cfg.Services {
		uri, s := uri, s
		out[uri] = func(ctx context.Context, r *connectors.Request) (*connectors.Response, error) {
			return e.run(ctx, uri, s, r, signedResults(r))
		}
	}
	return out
}

// signedResults are the signed kecis:AuthenticationResult elements a
// request from the hub embeds, standalone and base64, as a {kecis:
// authentication_results} source yields them: passed on unchanged to the
// native system, which forwards them with its approval to the issuer
// (KECIS §3.2, §15.7).
func signedResults(r *connectors.Request) []string {
	els := make([]*etree.Element, 0, len(r.SignedAuthResults))
	for _, el := range r.SignedAuthResults {
		els = append(els, saml.DetachAuthResult(el))
	}
	return callapi.EncodeAuthenticationResults(els)
}

// call state: the request's flat fields, the caller (its entityID, KECIS
// §13.1) and its native account, captured values, the signed
// authentication results it carries (base64).
type callState struct {
	fields      url.Values
	caller      string
	account     *Merchant
	captured    map[string]string
	authResults []string
}

// account is the native account of the request's caller (KECIS §13.1,
// §13.3): a caller without one is refused as the function level refuses
// (Requester / RequestDenied), before any native call, the reason in the
// log only.
func (e *Engine) account(ctx context.Context, uri string, r *connectors.Request) (*Merchant, error) {
	if m := e.cfg.Native.Merchants[r.Merchant()]; m != nil {
		return m, nil
	}
	e.log.WarnContext(ctx, "caller refused: no native merchant account", "service", uri, "caller", r.Merchant(), "issuer", r.Issuer)
	return nil, &connectors.StatusError{Status: saml.ErrCallerDenied.StatusValue()}
}

// run runs the mapping s of service uri for r. authResults are the signed
// kecis:AuthenticationResult elements of the request, base64 — what a
// {kecis: authentication_results} source yields: those a request from the
// hub embeds (signedResults: an issuer's cardholder authentication, KECIS
// §15.7), or those the sidecar's own amountauth engine attaches to the
// purchase it approves.
func (e *Engine) run(ctx context.Context, uri string, s *Service, r *connectors.Request, authResults []string) (*connectors.Response, error) {
	acct, err := e.account(ctx, uri, r)
	if err != nil {
		return nil, err
	}
	st := &callState{fields: url.Values{}, caller: r.Merchant(), account: acct, captured: map[string]string{}, authResults: authResults}
	if r.Payload != nil {
		st.fields = r.Payload.Form()
	}
	key := ""
	if r.IdempotencyKey != "" {
		// The native API's own idempotency key: stable for a KECIS retry
		// (same merchant, same key, same service), short, opaque.
		sum := sha256.Sum256([]byte(r.Merchant() + "\x00" + r.IdempotencyKey + "\x00" + uri))
		key = "kecis-" + hex.EncodeToString(sum[:16])
	}
	if s.Lookup != nil {
		res, _, err := e.do(ctx, uri, "lookup", s.Lookup, st, "", s.Retry)
		if err != nil {
			return nil, err
		}
		for name, path := range s.Lookup.Capture {
			v, ok := lookupPath(res, path)
			if !ok {
				return nil, notFound(uri)
			}
			st.captured[name] = v
		}
	}
	res, httpStatus, err := e.do(ctx, uri, "main", &s.Call, st, key, s.Retry)
	if err != nil {
		return nil, err
	}
	code, _ := lookupPath(res, s.Status.Field)
	e.log.InfoContext(ctx, "native call", "service", uri, "http_status", httpStatus, "result_code", code)
	switch {
	case slices.Contains(s.Status.Success, code):
	case slices.Contains(s.Status.Pending, code):
		return &connectors.Response{Status: saml.Status{Code: saml.StatusResponder, SubCode: saml.CodePending, Message: "the provider has not decided yet"}}, nil
	default:
		name, ok := s.Status.Codes[code]
		if !ok {
			name = s.Status.Default
		}
		if name == "" {
			name = "ProviderUnavailable"
		}
		if name == StatusNotFound {
			return nil, notFound(uri)
		}
		msg, _ := lookupPath(res, "resultMsg")
		return nil, refuse(saml.StatusResponder, statusNames[name], ecml.RedactPANs(msg))
	}
	form := url.Values{}
	// Amounts last: their transform needs the currency, which the answer
	// may carry (a cancel's request names none).
	fields := make([]string, 0, len(s.Response))
	for field, src := range s.Response {
		if src.Transform == "integer" || src.Transform == "minor" {
			fields = append(fields, field)
		} else {
			fields = append([]string{field}, fields...)
		}
	}
	for _, field := range fields {
		src := s.Response[field]
		v, ok := "", false
		if src.Const != "" {
			v, ok = src.Const, true
		} else {
			v, ok = lookupPath(res, src.Native)
		}
		if !ok {
			if src.Default != "" {
				v, ok = src.Default, true
			} else if src.Optional || src.OmitZero {
				continue
			} else {
				return nil, fmt.Errorf("sidecar: %s: the native answer lacks %s", uri, src.Native)
			}
		}
		if src.OmitZero && isZero(v) {
			continue
		}
		if m, has := src.Map[v]; has {
			v = m
		}
		ctxFields := st.fields
		if c := form.Get("Ecom_Transaction_CurrencyCode"); c != "" {
			ctxFields = url.Values{"Ecom_Transaction_CurrencyCode": {c}}
		}
		v, err := fromNative(v, src.Transform, ctxFields)
		if err != nil {
			return nil, fmt.Errorf("sidecar: %s: response %s: %w", uri, field, err)
		}
		if src.Format != "" {
			v = strings.Replace(src.Format, "{}", v, 1)
		}
		form.Set(field, v)
	}
	if len(form) == 0 {
		return &connectors.Response{}, nil
	}
	if form.Get("Ecom_SchemaVersion") == "" {
		form.Set("Ecom_SchemaVersion", ecml.SchemaVersion)
	}
	p, err := ecml.FromForm(form)
	if err != nil {
		return nil, fmt.Errorf("sidecar: %s: the mapped answer is not valid ECML: %w", uri, err)
	}
	return &connectors.Response{Payload: p}, nil
}

// notFound answers a request whose object the native API does not know:
// with the service's object rule's NotFound, word for word (KECIS §13.3),
// never with the native message, so that nothing tells an unknown object
// from another merchant's.
func notFound(uri string) error {
	if r, ok := connectors.ObjectRuleOf(uri); ok {
		return &connectors.StatusError{Status: r.NotFound}
	}
	return refuse(saml.StatusRequester, saml.CodeDeclined, "the provider knows no such transaction")
}

func refuse(top, sub, msg string) error {
	return &connectors.StatusError{Status: saml.Status{Code: top, SubCode: sub, Message: msg}}
}

// do performs one native call of service uri — its main call or its
// lookup (kind) — and decodes its JSON answer.
func (e *Engine) do(ctx context.Context, uri, kind string, c *Call, st *callState, idemKey, retry string) (map[string]any, int, error) {
	what := uri
	if kind != "main" {
		what += " " + kind
	}
	path := placeholder.ReplaceAllStringFunc(c.Path, func(m string) string {
		name := m[1 : len(m)-1]
		if v, ok := st.captured[name]; ok {
			return url.PathEscape(v)
		}
		return url.PathEscape(st.fields.Get(name))
	})
	u := strings.TrimRight(e.cfg.Native.BaseURL, "/") + path
	if err := lacking(c, st); err != nil {
		return nil, 0, err
	}
	q := url.Values{}
	for name, src := range c.Query {
		v, ok, err := e.value(src, st)
		if err != nil {
			return nil, 0, err
		}
		if ok {
			q.Set(name, fmt.Sprint(v))
		}
	}
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var body io.Reader
	ctype := ""
	if len(c.Request) > 0 {
		if c.Encoding == "form" {
			f := url.Values{}
			for name, src := range c.Request {
				v, ok, err := e.value(src, st)
				if err != nil {
					return nil, 0, err
				}
				if ok {
					f.Set(name, fmt.Sprint(v))
				}
			}
			body, ctype = strings.NewReader(f.Encode()), "application/x-www-form-urlencoded"
		} else {
			obj := map[string]any{}
			for name, src := range c.Request {
				v, ok, err := e.value(src, st)
				if err != nil {
					return nil, 0, err
				}
				if ok {
					setPath(obj, name, v)
				}
			}
			b, _ := json.Marshal(obj)
			body, ctype = bytes.NewReader(b), "application/json"
		}
	}
	var raw []byte
	if body != nil {
		raw, _ = io.ReadAll(body)
	}
	attempts := 1
	if retry == "connect" {
		attempts = 3
	}
	var lastErr error
	for i := 0; i < attempts; i++ {
		req, err := http.NewRequestWithContext(ctx, c.Method, u, bytes.NewReader(raw))
		if err != nil {
			return nil, 0, err
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		req.Header.Set("Accept", "application/json")
		for k, v := range e.cfg.Native.Headers {
			req.Header.Set(k, v)
		}
		for k, v := range st.account.Headers {
			req.Header.Set(k, v) // the caller's own account, over the common headers
		}
		if idemKey != "" {
			req.Header.Set("Idempotency-Key", idemKey)
		}
		began := time.Now()
		resp, err := e.http.Do(req)
		if err != nil {
			e.metrics.nativeCall(uri, kind, "unreachable", 0)
			lastErr = err
			var op *net.OpError
			if errors.As(err, &op) && op.Op == "dial" && i+1 < attempts {
				time.Sleep(time.Duration(100*(i+1)) * time.Millisecond)
				continue
			}
			// Perhaps delivered: never retried; the caller learns Pending.
			e.log.WarnContext(ctx, "native API unreachable", "call", what, "err", err)
			return nil, 0, refuse(saml.StatusResponder, saml.CodeProviderUnavailable, "the provider's system did not answer")
		}
		defer resp.Body.Close()
		rb, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
		e.metrics.nativeCall(uri, kind, strconv.Itoa(resp.StatusCode), time.Since(began))
		if err != nil {
			return nil, resp.StatusCode, refuse(saml.StatusResponder, saml.CodeProviderUnavailable, "the provider's system did not answer")
		}
		var out map[string]any
		if err := json.Unmarshal(rb, &out); err != nil {
			e.log.WarnContext(ctx, "native answer is not JSON", "call", what, "http_status", resp.StatusCode)
			return nil, resp.StatusCode, refuse(saml.StatusResponder, saml.CodeProviderUnavailable, "the provider's system answered unreadably")
		}
		return out, resp.StatusCode, nil
	}
	return nil, 0, fmt.Errorf("sidecar: %s: %w", what, lastErr)
}

// value resolves a source for the request direction.
func (e *Engine) value(src *Source, st *callState) (any, bool, error) {
	if src.KECIS != "" { // authentication_results, the only one (checked at load)
		if len(st.authResults) == 0 && src.Optional {
			return nil, false, nil
		}
		return append([]string{}, st.authResults...), true, nil
	}
	var v string
	switch {
	case src.Const != "":
		v = src.Const
	case src.Capture != "":
		v = st.captured[src.Capture]
	case src.Merchant == MerchantEntity:
		v = st.caller
	case src.Merchant != "":
		v = st.account.ID // required by the configuration check
	default:
		v = st.fields.Get(src.ECML)
	}
	if v == "" {
		if src.Default != "" {
			v = src.Default
		} else if src.Optional {
			return nil, false, nil
		} else {
			return nil, false, refuse(saml.StatusRequester, saml.CodeInvalidPayload, "the request lacks "+firstNonEmpty(src.ECML, src.Capture, "a field"))
		}
	}
	if m, ok := src.Map[v]; ok {
		v = m
	}
	return toNative(v, src.Transform, st.fields)
}

// lacking refuses a request that lacks ECML fields the call maps, naming
// every one, sorted — not the first a map's order reaches, which told a
// request without a card that it lacked Ecom_Payment_Card_ExpDate_Month.
func lacking(c *Call, st *callState) error {
	var names []string
	for _, srcs := range []map[string]*Source{c.Query, c.Request} {
		for _, src := range srcs {
			if src.ECML != "" && src.Const == "" && src.Capture == "" && src.Merchant == "" && src.Default == "" && !src.Optional &&
				st.fields.Get(src.ECML) == "" {
				names = append(names, src.ECML)
			}
		}
	}
	if len(names) == 0 {
		return nil
	}
	slices.Sort(names)
	return refuse(saml.StatusRequester, saml.CodeInvalidPayload, "the request lacks "+strings.Join(slices.Compact(names), ", "))
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// toNative applies a transform in the request direction.
func toNative(v, transform string, f url.Values) (any, bool, error) {
	switch transform {
	case "":
		return v, true, nil
	case "integer", "minor":
		m, err := ecml.ParseAmount(v, f.Get("Ecom_Transaction_CurrencyCode"))
		if err != nil {
			return nil, false, refuse(saml.StatusRequester, saml.CodeInvalidPayload, "the amount is not valid")
		}
		return m.Minor, true, nil
	case "yymm":
		y, mo := f.Get("Ecom_Payment_Card_ExpDate_Year"), f.Get("Ecom_Payment_Card_ExpDate_Month")
		if len(y) != 4 || mo == "" {
			return nil, false, refuse(saml.StatusRequester, saml.CodeInvalidPayload, "the expiry date is incomplete")
		}
		if len(mo) == 1 {
			mo = "0" + mo
		}
		return y[2:] + mo, true, nil
	case "upper":
		return strings.ToUpper(v), true, nil
	case "lower":
		return strings.ToLower(v), true, nil
	case "digits", "yyyymmdd":
		return keepDigits(v), true, nil
	case "string":
		return v, true, nil
	}
	return nil, false, fmt.Errorf("unknown transform %q", transform)
}

// fromNative applies a transform in the response direction.
func fromNative(v, transform string, f url.Values) (string, error) {
	switch transform {
	case "integer", "minor":
		n, err := strconv.ParseInt(strings.TrimSuffix(v, ".0"), 10, 64)
		if err != nil {
			return "", fmt.Errorf("%q is not an integer amount", v)
		}
		return ecml.FormatAmount(ecml.Money{Minor: n, Currency: f.Get("Ecom_Transaction_CurrencyCode")})
	case "upper":
		return strings.ToUpper(v), nil
	case "lower":
		return strings.ToLower(v), nil
	case "digits", "yyyymmdd":
		return keepDigits(v), nil
	}
	return v, nil
}

func keepDigits(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			b = append(b, s[i])
		}
	}
	return string(b)
}

// lookupPath reads a dotted path of a decoded JSON object as a string.
func lookupPath(obj map[string]any, path string) (string, bool) {
	var cur any = obj
	for _, part := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return "", false
		}
		if cur, ok = m[part]; !ok {
			return "", false
		}
	}
	switch x := cur.(type) {
	case string:
		return x, true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case bool:
		return strconv.FormatBool(x), true
	case nil:
		return "", false
	}
	b, _ := json.Marshal(cur)
	return string(b), true
}

// setPath sets a dotted path in a JSON object.
func setPath(obj map[string]any, path string, v any) {
	parts := strings.Split(path, ".")
	cur := obj
	for _, p := range parts[:len(parts)-1] {
		next, ok := cur[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			cur[p] = next
		}
		cur = next
	}
	cur[parts[len(parts)-1]] = v
}

// isZero reports an empty value or a number equal to zero ("0", "0.00").
func isZero(v string) bool {
	if v == "" {
		return true
	}
	f, err := strconv.ParseFloat(v, 64)
	return err == nil && f == 0
}

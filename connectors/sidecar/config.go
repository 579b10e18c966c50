// Package sidecar is `kecis adapter`: a process beside a provider's own API
// that terminates KECIS for it — the same receive pipeline, idempotency
// authority and signed answers as the Go SDK (it is built on it) — and maps
// each KECIS service to a call of the provider's native HTTP API, as a
// mapping file declares: ECML fields ↔ native fields, with the small
// transformations real APIs need, native result codes → KECIS statuses. It
// also serves the calling direction: the provider's backend posts JSON to a
// local endpoint, and the sidecar sends the KECIS request through the hub.
// A mapping mistake is reported at start-up with the file, line and field.
package sidecar

import (
	"fmt"
	"maps"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"

	"github.com/kecis/kecis/connectors"
	_ "github.com/kecis/kecis/connectors/card" // the card service's object rules (KECIS §13.3), for the Handler and NotFound
	"github.com/kecis/kecis/connectors/ratelimit"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// Config is adapter.yaml.
type Config struct {
	EntityID   string `yaml:"entity_id"`
	Listen     string `yaml:"listen"`      // the KECIS SOAP endpoint (HTTPS)
	PublicURL  string `yaml:"public_url"`  // how the hub reaches it
	CallListen string `yaml:"call_listen"` // the local calling endpoint (loopback HTTP)
	// OpsListen serves /healthz, /readyz and /metrics over plain HTTP for
	// the orchestrator and Prometheus; empty: not served. Keep it on
	// loopback or a private interface.
	OpsListen string `yaml:"ops_listen"`
	Hub       struct {
		URL         string `yaml:"url"`
		EntityID    string `yaml:"entity_id"`
		SigningCert string `yaml:"signing_cert"` // pins the hub's metadata signature
		TLSCert     string `yaml:"tls_cert"`     // pins the hub's TLS server, and admits its client
	} `yaml:"hub"`
	Keys struct {
		Signing    KeyPair `yaml:"signing"`
		Encryption KeyPair `yaml:"encryption"`
		TLS        KeyPair `yaml:"tls"`
	} `yaml:"keys"`
	State struct {
		DSN                string `yaml:"dsn"`
		AtRestKeyFile      string `yaml:"at_rest_key_file"`
		IdempotencyKeyFile string `yaml:"idempotency_key_file"`
	} `yaml:"state"`
	// RateLimits bound each caller of the KECIS endpoint (KECIS §12.7).
	RateLimits RateLimits `yaml:"rate_limits"`
	// Testers admits registered testers' TLS client certificates (SHA-256)
	// on the back channel: test mode only.
	Testers []string `yaml:"testers"`
	Native  Native   `yaml:"native"`
	// Services maps each KECIS service URI to a native call.
	Services map[string]*Service `yaml:"services"`
	// AmountAuth turns on amount authentication (KECIS §15.3) for the
	// native PG; nil or not enabled: off.
	AmountAuth *AmountAuth `yaml:"amountauth"`

	dir   string
	lines map[string]int // config path → line, for error messages
	file  string
	// The merchants file: its name, its lines, the entityIDs it gave.
	mfile    string
	mlines   map[string]int
	fromFile map[string]bool
}

// RateLimits is the KECIS endpoint's limit per caller — its TLS client
// certificate, or its address when it presented none (KECIS §12.7): on
// average PerSecond requests a second, Burst at once; past it the request
// is answered 429 with Retry-After and a SOAP fault before it is read.
type RateLimits struct {
	// PerSecond defaults to DefaultRatePerSecond; 0 turns the limit off.
	PerSecond *float64 `yaml:"per_second"`
	// Burst defaults to twice PerSecond (at least 1).
	Burst int `yaml:"burst"`
}

// DefaultRatePerSecond is the KECIS endpoint's limit per caller when
// rate_limits.per_second is not set: far above what one provider's native
// API takes from the hub in normal operation, it stops a runaway caller
// (a tester in a loop) before the native API does.
const DefaultRatePerSecond = 200

// Limit is the endpoint's limiter configuration; ok is false when the
// limit is off (per_second: 0).
func (r RateLimits) Limit() (cfg ratelimit.Config, ok bool) {
	perSecond := float64(DefaultRatePerSecond)
	if r.PerSecond != nil {
		perSecond = *r.PerSecond
	}
	if perSecond == 0 {
		return ratelimit.Config{}, false
	}
	burst := r.Burst
	if burst == 0 {
		burst = max(1, int(math.Ceil(2*perSecond)))
	}
	return ratelimit.Config{PerSecond: perSecond, Burst: burst}, true
}

// KeyPair names a PEM key and certificate.
type KeyPair struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// Native is the provider's own API.
type Native struct {
	BaseURL string `yaml:"base_url"`
	// Headers go with every native call, whoever the caller; the headers
	// of a merchant's own account are in Merchants. Values may use ${ENV}.
	Headers map[string]string `yaml:"headers"`
	Timeout time.Duration     `yaml:"timeout"`
	// Merchants maps each federation merchant — the caller of a request
	// (KECIS §13.1), by entityID — to its own account at the native API
	// (KECIS §13.3): every native call made for the merchant uses that
	// account, and a caller without an entry is refused (Requester /
	// RequestDenied) before any native call. There is no default account.
	Merchants map[string]*Merchant `yaml:"merchants"`
	// MerchantsFile names a YAML file holding more entries under its own
	// "merchants:" key (relative to the configuration's directory, ${ENV}
	// expanded too), so that onboarding a merchant changes no mapping and
	// its credentials stay out of it. An entityID may appear only once.
	MerchantsFile string `yaml:"merchants_file"`
}

// Merchant is a federation merchant's own account at the native API.
type Merchant struct {
	// ID is the native API's identifier of the account, the value of a
	// {merchant: native} source; required when a mapping uses one.
	ID string `yaml:"id"`
	// Headers authenticate the account (e.g. its API key): sent with
	// every native call made for the merchant, over native.headers of the
	// same name. Values may use ${ENV}.
	Headers map[string]string `yaml:"headers"`
	// AmountAuth overrides amountauth.options for the merchant (its
	// return URL, say) and names it in the cardholder's text; used when
	// amountauth is enabled.
	AmountAuth *MerchantAA `yaml:"amountauth,omitempty"`
}

// Service maps one KECIS service.
type Service struct {
	// Lookup is an optional first call whose response fields are captured
	// for the main call (e.g. a transaction ID found by order number).
	Lookup *Call `yaml:"lookup"`
	Call   `yaml:",inline"`
	// Response maps ECML flat fields of the answer from the native response.
	Response map[string]*Source `yaml:"response"`
	Status   StatusMap          `yaml:"status"`
	// Retry: "none" (default) or "connect" — retry only a call that failed
	// to connect, the only failure known not to have reached the API.
	Retry string `yaml:"retry"`
}

// Call is one native HTTP call.
type Call struct {
	Method string `yaml:"method"`
	// Path may hold {name} placeholders: an ECML flat field, or a captured
	// lookup field.
	Path string `yaml:"path"`
	// Request maps native JSON fields from sources. Keys may be dotted
	// paths ("card.number") to nest.
	Request map[string]*Source `yaml:"request"`
	// Query maps query parameters from sources.
	Query map[string]*Source `yaml:"query"`
	// Encoding: "json" (default) or "form".
	Encoding string `yaml:"encoding"`
	// Capture names fields of a lookup's response to keep: name → native path.
	Capture map[string]string `yaml:"capture"`
}

// Source says where a value comes from, and how to transform it.
type Source struct {
	ECML      string            `yaml:"ecml"`      // an ECML flat field name (Ecom_…)
	Const     string            `yaml:"const"`     // a constant
	Native    string            `yaml:"native"`    // a native response field (dotted path)
	Merchant  string            `yaml:"merchant"`  // "native": the native merchant ID of the KECIS merchant; "entity": its entityID (MerchantEntity)
	Capture   string            `yaml:"capture"`   // a field captured by the lookup
	KECIS     string            `yaml:"kecis"`     // a part of the KECIS request (requests only): KECISAuthenticationResults
	Transform string            `yaml:"transform"` // see transforms
	Map       map[string]string `yaml:"map"`       // an enumeration mapping
	Default   string            `yaml:"default"`
	Optional  bool              `yaml:"optional"`
	// Format (responses only) wraps the transformed value: "{}" stands
	// for it, e.g. "refunded={}" for the amount refunded so far, which the
	// card service carries in Ecom_Transaction_PrivateUseData
	// (card.ApprovalPayload).
	Format string `yaml:"format"`
	// OmitZero (responses only) leaves the field out when the native
	// value is absent (and no Default is set), empty or the number 0.
	OmitZero bool `yaml:"omit_zero"`
}

// StatusMap maps native result codes to KECIS statuses.
type StatusMap struct {
	Field   string            `yaml:"field"`   // the native result code's path
	Success []string          `yaml:"success"` // codes that mean success
	Codes   map[string]string `yaml:"codes"`   // native code → KECIS second-level name (Declined, …)
	Default string            `yaml:"default"` // for unknown codes (default ProviderUnavailable)
	// Pending codes mean the provider does not know yet: the key stays
	// retryable and the caller is told Pending.
	Pending []string `yaml:"pending"`
}

// MappingError is a configuration mistake, with where it is.
type MappingError struct {
	File  string
	Line  int
	Field string
	Msg   string
}

func (e *MappingError) Error() string {
	if e.Field == "" {
		return e.File + ": " + e.Msg
	}
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Field, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", e.File, e.Field, e.Msg)
}

// Errors collects mapping errors.
type Errors []*MappingError

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Load reads and checks adapter.yaml: ${VAR}s expanded from the
// environment per value (see expandEnv), strict decoding, then every
// mapping checked (ECML names, transforms, status names, placeholders).
// Every problem found is reported at once, with file, line and field: the
// error is then an Errors.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parse(data, path, filepath.Dir(path), os.LookupEnv)
}

// Parse is Load on bytes: name is the file name errors cite, dir resolves
// relative paths, and ${VAR} references are expanded with getenv, for
// which an empty value means the variable is not set.
func Parse(data []byte, name, dir string, getenv func(string) string) (*Config, error) {
	return parse(data, name, dir, func(k string) (string, bool) {
		v := getenv(k)
		return v, v != ""
	})
}

func parse(data []byte, name, dir string, lookup func(string) (string, bool)) (*Config, error) {
	c := &Config{dir: dir, file: name}
	var errs Errors
	unset := map[string]bool{}
	body, lines, err := decodeExpanded(data, name, lookup, &errs, unset)
	if err != nil {
		return nil, err
	}
	if err := yaml.NodeToValue(body, c, yaml.Strict(), yaml.DisallowUnknownField()); err != nil {
		return nil, decodeError(errs, name, err)
	}
	c.lines = lines
	merrs, err := c.loadMerchantsFile(lookup, unset)
	if err != nil {
		return nil, decodeError(errs, c.Path(c.Native.MerchantsFile), err)
	}
	errs = append(errs, merrs...)
	for _, e := range c.check() {
		// An unset ${VAR} was reported as such: not again as the empty
		// value it left ("is required", "is empty"), nor as the merchants
		// an unset merchants_file did not give.
		consequence := unset[e.File+"\x00"+e.Field] ||
			e.File == name && e.Field == "native.merchants" && unset[name+"\x00native.merchants_file"]
		if !consequence {
			errs = append(errs, e)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return c, nil
}

// decodeExpanded parses a YAML file, records the line of every key and
// expands the environment references of its values (adding a problem to
// errs for each unset variable, and its path, keyed by file, to unset). It
// returns the document's body for decoding; an error is a file that is
// not YAML.
func decodeExpanded(data []byte, file string, lookup func(string) (string, bool), errs *Errors, unset map[string]bool) (ast.Node, map[string]int, error) {
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", file, err)
	}
	if len(f.Docs) != 1 || f.Docs[0].Body == nil {
		return nil, nil, fmt.Errorf("%s: want one YAML document", file)
	}
	lines := map[string]int{}
	index(f.Docs[0].Body, "", lines)
	set := map[string]bool{}
	expandEnv(f.Docs[0].Body, "", lookup, func(path, msg string) { failIn(errs, file, lines, path, msg) }, set)
	for p := range set {
		unset[file+"\x00"+p] = true
	}
	return f.Docs[0].Body, lines, nil
}

// decodeError is a file that does not decode, after the problems already
// found: one error listing them all.
func decodeError(errs Errors, file string, err error) error {
	if len(errs) == 0 {
		return fmt.Errorf("%s: %w", file, err)
	}
	return append(errs, &MappingError{File: file, Msg: err.Error()})
}

// loadMerchantsFile adds the entries of native.merchants_file to
// native.merchants. A file that cannot be read or has an entityID the
// configuration already maps is a mapping error; one that does not decode
// is an error with the decoder's position.
func (c *Config) loadMerchantsFile(lookup func(string) (string, bool), unset map[string]bool) (Errors, error) {
	if c.Native.MerchantsFile == "" {
		return nil, nil
	}
	var errs Errors
	path := c.Path(c.Native.MerchantsFile)
	data, err := os.ReadFile(path)
	if err != nil {
		c.fail(&errs, "native.merchants_file", "cannot be read: "+err.Error())
		return errs, nil
	}
	var mf struct {
		Merchants map[string]*Merchant `yaml:"merchants"`
	}
	body, lines, err := decodeExpanded(data, path, lookup, &errs, unset)
	if err != nil {
		return nil, err
	}
	if err := yaml.NodeToValue(body, &mf, yaml.Strict(), yaml.DisallowUnknownField()); err != nil {
		return nil, decodeError(errs, path, err)
	}
	c.mfile, c.mlines, c.fromFile = path, lines, map[string]bool{}
	if c.Native.Merchants == nil {
		c.Native.Merchants = map[string]*Merchant{}
	}
	for _, id := range slices.Sorted(maps.Keys(mf.Merchants)) {
		if _, dup := c.Native.Merchants[id]; dup {
			errs = append(errs, &MappingError{File: path, Line: c.mlines["merchants."+id], Field: "merchants." + id,
				Msg: "is also in native.merchants of " + c.file + ": a merchant has one native account"})
			continue
		}
		c.Native.Merchants[id] = mf.Merchants[id]
		c.fromFile[id] = true
	}
	return errs, nil
}

// index records the line of every mapping key by its dotted path.
func index(n ast.Node, prefix string, out map[string]int) {
	switch m := n.(type) {
	case *ast.MappingNode:
		for _, v := range m.Values {
			index(v, prefix, out)
		}
	case *ast.MappingValueNode:
		key := strings.Trim(m.Key.GetToken().Value, `"'`)
		p := key
		if prefix != "" {
			p = prefix + "." + key
		}
		out[p] = m.Key.GetToken().Position.Line
		index(m.Value, p, out)
	}
}

var transforms = map[string]bool{
	"":         true,
	"integer":  true, // ECML amount in a zero-decimal currency ↔ a JSON number
	"minor":    true, // ECML amount → int64 minor units as a JSON number (and back)
	"yymm":     true, // ExpDate month+year → YYMM (request only, from Ecom_Payment_Card_ExpDate_Year)
	"yyyymmdd": true, // a native date → the same digits
	"upper":    true,
	"lower":    true,
	"digits":   true, // keep only the digits
	"string":   true, // a JSON number → its decimal string
}

// Values of a {merchant: …} source: the caller's native merchant ID (its
// account in the merchants table), or its entityID in the federation
// (KECIS §13.1) — what a PG names the merchant by to an issuer, which
// binds a cardholder authentication value to it (KECIS §15.7).
const (
	MerchantNative = "native"
	MerchantEntity = "entity"
)

// KECISAuthenticationResults is the {kecis: …} source of the signed
// kecis:AuthenticationResult elements the KECIS request carries (requests
// of a JSON call only): a JSON array of base64 strings, each element
// embedded unchanged (KECIS §3.2) — those the request from the hub embeds,
// or those of the purchase the amountauth engine approves (Engine.run). With optional: true the field is left out
// when there are none.
const KECISAuthenticationResults = "authentication_results"

var placeholder = regexp.MustCompile(`\{([A-Za-z0-9_]+)\}`)

func (c *Config) fail(errs *Errors, path, msg string) {
	failIn(errs, c.file, c.lines, path, msg)
}

// failIn reports a mistake at path of file, at the line of path or of
// its nearest parent (a sequence item, "key[i]", at its key's).
func failIn(errs *Errors, file string, lines map[string]int, path, msg string) {
	line := lines[path]
	for p := path; line == 0; line = lines[p] {
		if i := strings.LastIndex(p, "["); i > 0 && strings.HasSuffix(p, "]") {
			p = p[:i]
		} else if i := strings.LastIndex(p, "."); i >= 0 {
			p = p[:i]
		} else {
			break
		}
	}
	*errs = append(*errs, &MappingError{File: file, Line: line, Field: path, Msg: msg})
}

func (c *Config) check() Errors {
	var errs Errors
	need := func(v, path string) {
		if v == "" {
			c.fail(&errs, path, "is required")
		}
	}
	need(c.EntityID, "entity_id")
	need(c.Listen, "listen")
	need(c.PublicURL, "public_url")
	need(c.Hub.URL, "hub.url")
	need(c.Hub.EntityID, "hub.entity_id")
	need(c.Hub.SigningCert, "hub.signing_cert")
	need(c.Hub.TLSCert, "hub.tls_cert")
	need(c.Keys.Signing.Cert, "keys.signing.cert")
	need(c.Keys.Encryption.Cert, "keys.encryption.cert")
	need(c.Keys.TLS.Cert, "keys.tls.cert")
	need(c.State.DSN, "state.dsn")
	need(c.Native.BaseURL, "native.base_url")
	if c.OpsListen != "" {
		if _, _, err := net.SplitHostPort(c.OpsListen); err != nil {
			c.fail(&errs, "ops_listen", "is not host:port")
		}
	}
	if r := c.RateLimits.PerSecond; r != nil && (*r < 0 || math.IsNaN(*r) || math.IsInf(*r, 0)) {
		c.fail(&errs, "rate_limits.per_second", "must be a number of requests a second, 0 to turn the limit off")
	}
	if c.RateLimits.Burst < 0 {
		c.fail(&errs, "rate_limits.burst", "must be at least 1 (or left out: twice per_second)")
	}
	for _, name := range slices.Sorted(maps.Keys(c.Native.Headers)) {
		checkHeader(&errs, c.file, c.lines, "native.headers."+name, name, c.Native.Headers[name])
	}
	c.checkMerchants(&errs)
	c.checkAmountAuth(&errs)
	flat := map[string]bool{}
	for _, n := range ecml.FlatNames() {
		flat[n] = true
	}
	for _, uri := range slices.Sorted(maps.Keys(c.Services)) {
		s := c.Services[uri]
		base := "services." + uri
		if _, _, ok := saml.SplitService(uri); !ok {
			c.fail(&errs, base, "is not a KECIS service URI (urn:kecis:service:<group>:<operation>)")
		}
		if s == nil {
			c.fail(&errs, base, "has no mapping")
			continue
		}
		captured := map[string]bool{}
		if s.Lookup != nil {
			c.checkCall(&errs, base+".lookup", s.Lookup, flat, nil)
			for k := range s.Lookup.Capture {
				captured[k] = true
			}
		}
		c.checkCall(&errs, base, &s.Call, flat, captured)
		for field, src := range s.Response {
			p := base + ".response." + field
			if !flat[field] {
				c.fail(&errs, p, "unknown ECML field "+field)
			}
			if src == nil || (src.Native == "" && src.Const == "") {
				c.fail(&errs, p, "needs native: (a response field) or const:")
				continue
			}
			if src.KECIS != "" {
				c.fail(&errs, p+".kecis", "applies to requests only")
			}
			if !transforms[src.Transform] {
				c.fail(&errs, p+".transform", "unknown transform "+src.Transform)
			}
			if src.Format != "" && strings.Count(src.Format, "{}") != 1 {
				c.fail(&errs, p+".format", "needs exactly one {} (the value)")
			}
		}
		if s.Status.Field == "" {
			c.fail(&errs, base+".status.field", "is required (the native result code)")
		}
		if len(s.Status.Success) == 0 {
			c.fail(&errs, base+".status.success", "lists no success code")
		}
		for code, name := range s.Status.Codes {
			c.checkStatus(&errs, base+".status.codes."+code, uri, name)
		}
		if s.Status.Default != "" {
			c.checkStatus(&errs, base+".status.default", uri, s.Status.Default)
		}
		switch s.Retry {
		case "", "none", "connect":
		default:
			c.fail(&errs, base+".retry", "must be none or connect")
		}
	}
	return errs
}

// checkMerchants checks the merchants table (KECIS §13.3): a mapped
// service needs at least one merchant; every entry is an entityID with a
// native account of its own — an ID when a mapping sends one, else
// headers — and no two merchants reach the native API as one account.
func (c *Config) checkMerchants(errs *Errors) {
	if len(c.Services) > 0 && len(c.Native.Merchants) == 0 {
		c.fail(errs, "native.merchants", "lists no merchant: every caller would be refused (each merchant needs its own native account)")
		return
	}
	sendsID := false
	for _, s := range c.Services {
		if s == nil {
			continue
		}
		calls := []*Call{&s.Call}
		if s.Lookup != nil {
			calls = append(calls, s.Lookup)
		}
		for _, call := range calls {
			for _, m := range []map[string]*Source{call.Request, call.Query} {
				for _, src := range m {
					if src != nil && src.Merchant != "" {
						sendsID = true
					}
				}
			}
		}
	}
	account := map[string]string{} // what the native API sees → entityID
	for _, id := range slices.Sorted(maps.Keys(c.Native.Merchants)) {
		file, lines, path := c.file, c.lines, "native.merchants."+id
		if c.fromFile[id] {
			file, lines, path = c.mfile, c.mlines, "merchants."+id
		}
		if err := metadata.CheckEntityID(id); err != nil {
			failIn(errs, file, lines, path, "is not a merchant's entityID: "+err.Error())
		}
		m := c.Native.Merchants[id]
		if m == nil || m.ID == "" && len(m.Headers) == 0 {
			failIn(errs, file, lines, path, "names no native account (id:, headers:)")
			continue
		}
		if sendsID && m.ID == "" {
			failIn(errs, file, lines, path+".id", "is required: a mapping sends {merchant: native}")
		}
		seen := map[string]string{}
		for _, name := range slices.Sorted(maps.Keys(c.Native.Headers)) {
			seen[http.CanonicalHeaderKey(name)] = c.Native.Headers[name]
		}
		for _, name := range slices.Sorted(maps.Keys(m.Headers)) {
			checkHeader(errs, file, lines, path+".headers."+name, name, m.Headers[name])
			seen[http.CanonicalHeaderKey(name)] = m.Headers[name]
		}
		var sig strings.Builder
		if sendsID {
			fmt.Fprintf(&sig, "id %d:%s;", len(m.ID), m.ID)
		}
		for _, name := range slices.Sorted(maps.Keys(seen)) {
			fmt.Fprintf(&sig, "%s %d:%s;", name, len(seen[name]), seen[name])
		}
		if other, dup := account[sig.String()]; dup {
			failIn(errs, file, lines, path, "reaches the native API as the same account as "+other+": each merchant needs its own")
			continue
		}
		account[sig.String()] = id
	}
}

var headerName = regexp.MustCompile("^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")

// checkHeader checks a native header; its value never appears in an
// error.
func checkHeader(errs *Errors, file string, lines map[string]int, path, name, value string) {
	switch {
	case !headerName.MatchString(name):
		failIn(errs, file, lines, path, "is not an HTTP header name")
	case strings.TrimSpace(value) == "":
		failIn(errs, file, lines, path, "is empty")
	case strings.ContainsAny(value, "\r\n\x00"):
		failIn(errs, file, lines, path, "holds a line break or NUL")
	}
}

func (c *Config) checkCall(errs *Errors, base string, call *Call, flat, captured map[string]bool) {
	switch call.Method {
	case "GET", "POST", "PUT", "DELETE":
	default:
		c.fail(errs, base+".method", "must be GET, POST, PUT or DELETE")
	}
	if !strings.HasPrefix(call.Path, "/") {
		c.fail(errs, base+".path", "must start with /")
	}
	for _, m := range placeholder.FindAllStringSubmatch(call.Path, -1) {
		if !flat[m[1]] && !captured[m[1]] {
			c.fail(errs, base+".path", "placeholder {"+m[1]+"} is neither an ECML field nor a captured lookup field")
		}
	}
	switch call.Encoding {
	case "", "json", "form":
	default:
		c.fail(errs, base+".encoding", "must be json or form")
	}
	for _, group := range []struct {
		name string
		m    map[string]*Source
	}{{"request", call.Request}, {"query", call.Query}} {
		for field, src := range group.m {
			p := base + "." + group.name + "." + field
			if src == nil {
				c.fail(errs, p, "has no source")
				continue
			}
			n := 0
			for _, v := range []string{src.ECML, src.Const, src.Merchant, src.Capture, src.KECIS} {
				if v != "" {
					n++
				}
			}
			if n != 1 {
				c.fail(errs, p, "needs exactly one of ecml:, const:, merchant:, capture:, kecis:")
			}
			if src.KECIS != "" {
				switch {
				case src.KECIS != KECISAuthenticationResults:
					c.fail(errs, p+".kecis", "must be "+KECISAuthenticationResults)
				case group.name != "request" || call.Encoding == "form":
					c.fail(errs, p+".kecis", "yields a JSON array: only in the request of a JSON call")
				case src.Transform != "" || src.Map != nil || src.Default != "":
					c.fail(errs, p+".kecis", "takes no transform:, map: or default:")
				}
			}
			if src.ECML != "" && !flat[src.ECML] {
				c.fail(errs, p+".ecml", "unknown ECML field "+src.ECML)
			}
			if src.Capture != "" && !captured[src.Capture] {
				c.fail(errs, p+".capture", "no lookup captures "+src.Capture)
			}
			if src.Merchant != "" && src.Merchant != MerchantNative && src.Merchant != MerchantEntity {
				c.fail(errs, p+".merchant", "must be native or entity")
			}
			if !transforms[src.Transform] {
				c.fail(errs, p+".transform", "unknown transform "+src.Transform)
			}
			if src.Format != "" || src.OmitZero {
				c.fail(errs, p, "format: and omit_zero: apply to responses only")
			}
		}
	}
}

var statusNames = map[string]string{
	"Declined": saml.CodeDeclined, "InsufficientFunds": saml.CodeInsufficientFunds, "InvalidCard": saml.CodeInvalidCard,
	"Expired": saml.CodeExpired, "LimitExceeded": saml.CodeLimitExceeded, "PolicyViolation": saml.CodePolicyViolation,
	"Duplicate": saml.CodeDuplicate, "AuthenticationRequired": saml.CodeAuthenticationRequired,
	"ProviderUnavailable": saml.CodeProviderUnavailable, "Pending": saml.CodePending, "InvalidPayload": saml.CodeInvalidPayload,
}

// StatusNotFound is the status name of the answer a service gives for an
// unknown object — its object rule's NotFound (KECIS §13.3). Map the
// native API's "no such order or transaction" to it, so that another
// merchant's object and an unknown one read the same, and the same as the
// SDK's own refusal of them.
const StatusNotFound = "NotFound"

func (c *Config) checkStatus(errs *Errors, path, uri, name string) {
	if name == StatusNotFound {
		if _, ok := connectors.ObjectRuleOf(uri); !ok {
			c.fail(errs, path, uri+" has no object rule: NotFound means nothing for it")
		}
		return
	}
	if _, ok := statusNames[name]; !ok {
		c.fail(errs, path, "unknown KECIS status "+name)
	}
}

// Path resolves a configured path against the config file's directory.
func (c *Config) Path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.dir, p)
}

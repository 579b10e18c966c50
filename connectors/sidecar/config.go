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
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

// Config is adapter.yaml.
type Config struct {
	EntityID   string `yaml:"entity_id"`
	Listen     string `yaml:"listen"`      // the KECIS SOAP endpoint (HTTPS)
	PublicURL  string `yaml:"public_url"`  // how the hub reaches it
	CallListen string `yaml:"call_listen"` // the local calling endpoint (loopback HTTP)
	Hub        struct {
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
	// Testers admits registered testers' TLS client certificates (SHA-256)
	// on the back channel: test mode only.
	Testers []string `yaml:"testers"`
	Native  Native   `yaml:"native"`
	// Services maps each KECIS service URI to a native call.
	Services map[string]*Service `yaml:"services"`

	dir   string
	lines map[string]int // config path → line, for error messages
	file  string
}

// KeyPair names a PEM key and certificate.
type KeyPair struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// Native is the provider's own API.
type Native struct {
	BaseURL string            `yaml:"base_url"`
	Headers map[string]string `yaml:"headers"` // values may use ${ENV}
	Timeout time.Duration     `yaml:"timeout"`
	// Merchants maps federation merchants (entityIDs) to the native API's
	// merchant identifiers, available to mappings as {merchant: native}.
	Merchants map[string]string `yaml:"merchants"`
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
	Merchant  string            `yaml:"merchant"`  // "native": the native merchant ID of the KECIS merchant
	Capture   string            `yaml:"capture"`   // a field captured by the lookup
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

// Load reads and checks adapter.yaml: strict decoding, then every mapping
// checked (ECML names, transforms, status names, placeholders), every
// problem reported with file, line and field.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data, path, filepath.Dir(path), os.Getenv)
}

// Parse is Load on bytes: name is the file name errors cite, dir resolves
// relative paths, and ${VAR} references are expanded with getenv.
func Parse(data []byte, name, dir string, getenv func(string) string) (*Config, error) {
	path := name
	expanded := []byte(os.Expand(string(data), getenv))
	c := &Config{dir: dir, file: name}
	if err := yaml.NewDecoder(bytes.NewReader(expanded), yaml.Strict(), yaml.DisallowUnknownField()).Decode(c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	f, err := parser.ParseBytes(expanded, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c.lines = map[string]int{}
	for _, d := range f.Docs {
		index(d.Body, "", c.lines)
	}
	if errs := c.check(); len(errs) > 0 {
		return nil, errs
	}
	return c, nil
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

var placeholder = regexp.MustCompile(`\{([A-Za-z0-9_]+)\}`)

func (c *Config) fail(errs *Errors, path, msg string) {
	line := c.lines[path]
	for p := path; line == 0 && strings.Contains(p, "."); {
		p = p[:strings.LastIndex(p, ".")]
		line = c.lines[p]
	}
	*errs = append(*errs, &MappingError{File: c.file, Line: line, Field: path, Msg: msg})
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
	flat := map[string]bool{}
	for _, n := range ecml.FlatNames() {
		flat[n] = true
	}
	names := make([]string, 0, len(c.Services))
	for n := range c.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, uri := range names {
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
			if !knownStatus(name) {
				c.fail(&errs, base+".status.codes."+code, "unknown KECIS status "+name)
			}
		}
		if s.Status.Default != "" && !knownStatus(s.Status.Default) {
			c.fail(&errs, base+".status.default", "unknown KECIS status "+s.Status.Default)
		}
		switch s.Retry {
		case "", "none", "connect":
		default:
			c.fail(&errs, base+".retry", "must be none or connect")
		}
	}
	return errs
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
			for _, v := range []string{src.ECML, src.Const, src.Merchant, src.Capture} {
				if v != "" {
					n++
				}
			}
			if n != 1 {
				c.fail(errs, p, "needs exactly one of ecml:, const:, merchant:, capture:")
			}
			if src.ECML != "" && !flat[src.ECML] {
				c.fail(errs, p+".ecml", "unknown ECML field "+src.ECML)
			}
			if src.Capture != "" && !captured[src.Capture] {
				c.fail(errs, p+".capture", "no lookup captures "+src.Capture)
			}
			if src.Merchant != "" && src.Merchant != "native" {
				c.fail(errs, p+".merchant", "must be native")
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

func knownStatus(n string) bool { _, ok := statusNames[n]; return ok }

// Path resolves a configured path against the config file's directory.
func (c *Config) Path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.dir, p)
}

var errNoService = errors.New("sidecar: no such service")

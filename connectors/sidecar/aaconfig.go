package sidecar

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kecis/kecis/connectors/amountauth"
	"github.com/kecis/kecis/connectors/card"
)

// AmountAuth is the amountauth: section of adapter.yaml: the sidecar runs
// amount authentication (KECIS §15.3, connectors/amountauth) for a native
// PG — the services amountauth:start, confirm and status, the cardholder's
// page, and the recovery run — on top of the PG's native approve (the
// card:approve mapping) and of the issuer's card service through the hub.
type AmountAuth struct {
	Enabled Switch `yaml:"enabled"`
	// KeyFile holds the HMAC key of challenges, cards and users (32
	// random bytes in hex, made on first run like the at-rest key).
	KeyFile string `yaml:"key_file"`
	// PageListen is the cardholder's page's listener (host:port). It
	// serves plain HTTP unless PageTLS: on loopback (the demo) or behind
	// a reverse proxy that terminates TLS.
	PageListen string `yaml:"page_listen"`
	// PageTLS serves the page over HTTPS with keys.tls.
	PageTLS Switch `yaml:"page_tls"`
	// PageURL is the page's public URL, published in the PG's metadata as
	// the amountauth endpoint with the HTTP-POST binding (KECIS §10.2,
	// §15.3.2; Sidecar.Endpoints): https, or http on a loopback host. Its
	// path is where the page is served on PageListen.
	PageURL string `yaml:"page_url"`
	// TrustedProxies are the reverse proxies (addresses or CIDR prefixes)
	// in front of the page, whose X-Forwarded-For names the client the
	// page's rate limit counts.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// RecoverEvery is the period of the recovery run that voids what
	// sessions left (KECIS §15.3.3); default DefaultRecoverEvery. It also
	// runs at start-up.
	RecoverEvery time.Duration `yaml:"recover_every"`
	// Options are every merchant's defaults; a merchant's entry in the
	// merchants table overrides the fields it sets (amountauth: {...}).
	Options AAOptions `yaml:"options"`
	Limits  AALimits  `yaml:"limits"`
}

// DefaultRecoverEvery is the period of the recovery run when
// amountauth.recover_every is not set.
const DefaultRecoverEvery = time.Minute

// Switch is a YAML boolean that may also come from ${VAR}: true or false,
// kept as written so that a wrong value is reported at its line (the
// configuration check), not by the decoder.
type Switch string

// UnmarshalYAML implements the decoder's interface unmarshaler.
func (s *Switch) UnmarshalYAML(unmarshal func(any) error) error {
	var v any
	if err := unmarshal(&v); err != nil {
		return err
	}
	if v == nil {
		*s = ""
	} else {
		*s = Switch(fmt.Sprint(v))
	}
	return nil
}

// On reports whether the switch is true.
func (s Switch) On() bool {
	b, _ := strconv.ParseBool(strings.TrimSpace(string(s)))
	return b
}

// valid reports whether the switch is left out, true or false.
func (s Switch) valid() bool {
	if s == "" {
		return true
	}
	_, err := strconv.ParseBool(strings.TrimSpace(string(s)))
	return err == nil
}

// AAOptions are a merchant's amount-authentication policy (KECIS §15.3.4,
// amountauth.Options), amounts in minor units of the purchase's currency.
// A field left out takes the section's default, then the engine's
// (amountauth.DefaultOptions).
type AAOptions struct {
	Method           string         `yaml:"method,omitempty"` // amount or descriptor
	LowestChallenge  *int64         `yaml:"lowest_challenge,omitempty"`
	HighestChallenge *int64         `yaml:"highest_challenge,omitempty"`
	MinPurchase      *int64         `yaml:"min_purchase,omitempty"`
	Timeout          *time.Duration `yaml:"timeout,omitempty"`
	Attempts         *int           `yaml:"attempts,omitempty"`
	// ProfilePeriod: 0 turns the profile store off (the default).
	ProfilePeriod *time.Duration `yaml:"profile_period,omitempty"`
	// ReturnURL is where the page returns the browser (KECIS §15.3.2).
	ReturnURL string `yaml:"return_url,omitempty"`
}

// MerchantAA is a merchant's entry of amountauth options in the merchants
// table: the options it overrides, and the name the cardholder's text
// shows when its start names no Ecom/@Merchant.
type MerchantAA struct {
	AAOptions `yaml:",inline"`
	Name      string `yaml:"name,omitempty"`
}

// AALimits are the rate limits of amount authentication
// (amountauth.Limits; KECIS §15.3.4): sessions per card, user and
// merchant, failed sessions per card and day, entries per client on the
// page. Zero or absent fields take amountauth.DefaultLimits.
type AALimits struct {
	CardPerHour        float64 `yaml:"card_per_hour"`
	CardBurst          int     `yaml:"card_burst"`
	CardFailuresPerDay int     `yaml:"card_failures_per_day"`
	UserPerHour        float64 `yaml:"user_per_hour"`
	UserBurst          int     `yaml:"user_burst"`
	MerchantPerSecond  float64 `yaml:"merchant_per_second"`
	MerchantBurst      int     `yaml:"merchant_burst"`
	ClientPerHour      float64 `yaml:"client_per_hour"`
	ClientBurst        int     `yaml:"client_burst"`
}

// AmountAuthEnabled reports whether the configuration turns amount
// authentication on.
func (c *Config) AmountAuthEnabled() bool { return c.AmountAuth != nil && c.AmountAuth.Enabled.On() }

// pagePrefix is the path the page is served under: page_url's, without a
// trailing slash.
func (a *AmountAuth) pagePrefix() string {
	u, err := url.Parse(a.PageURL)
	if err != nil {
		return ""
	}
	return strings.TrimRight(u.Path, "/")
}

// trusted parses trusted_proxies (checked at load).
func (a *AmountAuth) trusted() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range a.TrustedProxies {
		if p, ok := parseProxy(s); ok {
			out = append(out, p)
		}
	}
	return out
}

func parseProxy(s string) (netip.Prefix, bool) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), true
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), true
	}
	return netip.Prefix{}, false
}

// engineOptions is the engine's options for a merchant: the section's
// defaults overridden by the merchant's entry (m may be nil).
func (a *AmountAuth) engineOptions(m *MerchantAA) amountauth.Options {
	o := overlay(amountauth.Options{}, a.Options)
	if m != nil {
		o = overlay(o, m.AAOptions)
	}
	return o
}

// overlay sets the fields of o that x sets.
func overlay(o amountauth.Options, x AAOptions) amountauth.Options {
	if x.Method != "" {
		o.Method = amountauth.Method(x.Method)
	}
	if x.LowestChallenge != nil {
		o.LowestChallenge = *x.LowestChallenge
	}
	if x.HighestChallenge != nil {
		o.HighestChallenge = *x.HighestChallenge
	}
	if x.MinPurchase != nil {
		o.MinPurchase = *x.MinPurchase
	}
	if x.Timeout != nil {
		o.Timeout = *x.Timeout
	}
	if x.Attempts != nil {
		o.Attempts = *x.Attempts
	}
	if x.ProfilePeriod != nil {
		o.ProfilePeriod = *x.ProfilePeriod
	}
	if x.ReturnURL != "" {
		o.ReturnURL = x.ReturnURL
	}
	return o
}

// engineLimits is the engine's limits.
func (a *AmountAuth) engineLimits() amountauth.Limits {
	l := a.Limits
	return amountauth.Limits{CardPerHour: l.CardPerHour, CardBurst: l.CardBurst, CardFailuresPerDay: l.CardFailuresPerDay,
		UserPerHour: l.UserPerHour, UserBurst: l.UserBurst, MerchantPerSecond: l.MerchantPerSecond, MerchantBurst: l.MerchantBurst,
		ClientPerHour: l.ClientPerHour, ClientBurst: l.ClientBurst}
}

// amountAuthServices are the services the amountauth engine serves: a
// mapping may not serve them too.
var amountAuthServices = []string{amountauth.ServiceStart, amountauth.ServiceConfirm, amountauth.ServiceStatus}

// checkAmountAuth checks the amountauth: section and the merchants'
// amountauth entries, each mistake at its file, line and field.
func (c *Config) checkAmountAuth(errs *Errors) {
	a := c.AmountAuth
	if a != nil {
		c.checkAAOptions(errs, c.file, c.lines, "amountauth.options", a.Options)
		c.checkAALimits(errs, a.Limits)
	}
	for _, id := range slices.Sorted(maps.Keys(c.Native.Merchants)) {
		m := c.Native.Merchants[id]
		if m == nil || m.AmountAuth == nil {
			continue
		}
		file, lines, path := c.file, c.lines, "native.merchants."+id+".amountauth"
		if c.fromFile[id] {
			file, lines, path = c.mfile, c.mlines, "merchants."+id+".amountauth"
		}
		c.checkAAOptions(errs, file, lines, path, m.AmountAuth.AAOptions)
		if n := m.AmountAuth.Name; n != "" && (len(n) > 100 || strings.ContainsAny(n, "\r\n\x00")) {
			failIn(errs, file, lines, path+".name", "must be one line of at most 100 bytes")
		}
		if o := m.AmountAuth; a != nil && (o.LowestChallenge != nil || o.HighestChallenge != nil || o.MinPurchase != nil) {
			// The options it sets must hold together with the defaults
			// (the engine's check).
			checkAARange(errs, file, lines, path, a.engineOptions(o))
		}
	}
	if a == nil {
		return
	}
	checkAARange(errs, c.file, c.lines, "amountauth.options", a.engineOptions(nil))
	for _, sw := range []struct {
		path string
		v    Switch
	}{{"amountauth.enabled", a.Enabled}, {"amountauth.page_tls", a.PageTLS}} {
		if !sw.v.valid() {
			c.fail(errs, sw.path, "must be true or false")
		}
	}
	if !a.Enabled.On() {
		return
	}
	need := func(v, path string) {
		if v == "" {
			c.fail(errs, path, "is required when amountauth is enabled")
		}
	}
	need(a.KeyFile, "amountauth.key_file")
	need(a.PageListen, "amountauth.page_listen")
	need(a.PageURL, "amountauth.page_url")
	if a.PageListen != "" {
		if _, _, err := net.SplitHostPort(a.PageListen); err != nil {
			c.fail(errs, "amountauth.page_listen", "is not host:port")
		}
	}
	if a.PageURL != "" {
		if msg := checkPageURL(a.PageURL); msg != "" {
			c.fail(errs, "amountauth.page_url", msg)
		}
	}
	for i, p := range a.TrustedProxies {
		if _, ok := parseProxy(p); !ok {
			c.fail(errs, fmt.Sprintf("amountauth.trusted_proxies[%d]", i), "is not an IP address or CIDR prefix")
		}
	}
	if a.RecoverEvery < 0 || a.RecoverEvery > 0 && a.RecoverEvery < time.Second {
		c.fail(errs, "amountauth.recover_every", "must be at least 1s (default 1m)")
	}
	if s := c.Services[card.ServiceApprove]; s == nil {
		c.fail(errs, "amountauth.enabled", "needs the mapping of "+card.ServiceApprove+": the verified purchase is approved through it")
	}
	for _, uri := range amountAuthServices {
		if _, mapped := c.Services[uri]; mapped {
			c.fail(errs, "services."+uri, "is served by the amountauth engine when amountauth is enabled: remove the mapping")
		}
	}
}

// checkPageURL checks the page's public URL: absolute, https (or http on a
// loopback host), no query or fragment.
func checkPageURL(s string) string {
	u, err := url.Parse(s)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "":
		return "is not an absolute http(s) URL"
	case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return "must have no query, fragment or user"
	case u.Scheme == "https":
	case u.Scheme == "http":
		if ip, err := netip.ParseAddr(u.Hostname()); (err != nil || !ip.IsLoopback()) && u.Hostname() != "localhost" {
			return "must be https: the cardholder's browser posts the session to it (http only on a loopback host)"
		}
	default:
		return "is not an absolute http(s) URL"
	}
	if p := strings.TrimRight(u.Path, "/"); p != "" && (strings.Contains(p, "//") || url.PathEscape(strings.ReplaceAll(p, "/", "")) != strings.ReplaceAll(p, "/", "")) {
		return "has a path the page cannot be served under (letters, digits, - . _ ~ between single slashes)"
	}
	return ""
}

// checkAAOptions checks the fields an options entry sets.
func (c *Config) checkAAOptions(errs *Errors, file string, lines map[string]int, path string, o AAOptions) {
	switch o.Method {
	case "", string(amountauth.ByAmount), string(amountauth.ByDescriptor):
	default:
		failIn(errs, file, lines, path+".method", "must be amount or descriptor")
	}
	for _, f := range []struct {
		name string
		v    *int64
	}{{"lowest_challenge", o.LowestChallenge}, {"highest_challenge", o.HighestChallenge}, {"min_purchase", o.MinPurchase}} {
		if f.v != nil && *f.v < 1 {
			failIn(errs, file, lines, path+"."+f.name, "must be an amount of at least 1 (minor units)")
		}
	}
	if o.Timeout != nil && *o.Timeout < time.Second {
		failIn(errs, file, lines, path+".timeout", "must be at least 1s")
	}
	if o.Attempts != nil && (*o.Attempts < 1 || *o.Attempts > 10) {
		failIn(errs, file, lines, path+".attempts", "must be from 1 to 10")
	}
	if o.ProfilePeriod != nil && *o.ProfilePeriod < 0 {
		failIn(errs, file, lines, path+".profile_period", "must be a duration, 0 for no profile store")
	}
	if o.ReturnURL != "" {
		if u, err := url.Parse(o.ReturnURL); err != nil || u.Scheme != "https" && u.Scheme != "http" || u.Host == "" || u.User != nil {
			failIn(errs, file, lines, path+".return_url", "is not an absolute http(s) URL")
		}
	}
}

// checkAARange checks what the engine checks of merged options: the
// challenge's range and the minimum purchase above its lowest.
func checkAARange(errs *Errors, file string, lines map[string]int, path string, o amountauth.Options) {
	d := amountauth.DefaultOptions
	lo, hi := o.LowestChallenge, o.HighestChallenge
	if lo <= 0 {
		lo = d.LowestChallenge
	}
	if hi <= 0 {
		hi = d.HighestChallenge
	}
	if hi <= lo {
		failIn(errs, file, lines, path+".highest_challenge", fmt.Sprintf("must be above the lowest challenge (%d)", lo))
	}
	if o.MinPurchase > 0 && o.MinPurchase <= lo {
		failIn(errs, file, lines, path+".min_purchase", fmt.Sprintf("must be above the lowest challenge (%d)", lo))
	}
}

// checkAALimits checks the limits: none negative.
func (c *Config) checkAALimits(errs *Errors, l AALimits) {
	for _, f := range []struct {
		name string
		v    float64
	}{{"card_per_hour", l.CardPerHour}, {"card_burst", float64(l.CardBurst)}, {"card_failures_per_day", float64(l.CardFailuresPerDay)},
		{"user_per_hour", l.UserPerHour}, {"user_burst", float64(l.UserBurst)}, {"merchant_per_second", l.MerchantPerSecond},
		{"merchant_burst", float64(l.MerchantBurst)}, {"client_per_hour", l.ClientPerHour}, {"client_burst", float64(l.ClientBurst)}} {
		if f.v < 0 || f.v != f.v {
			c.fail(errs, "amountauth.limits."+f.name, "must not be negative (0 or absent: the default)")
		}
	}
}

package sms

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"text/template"
	"time"
	"unicode/utf8"

	"github.com/kecis/kecis/ecml"
)

// Defaults of [GatewayConfig].
const (
	DefaultAPIKeyHeader   = "X-API-Key"
	DefaultRefHeader      = "Idempotency-Key"
	DefaultMessageIDField = "message_id"
	DefaultContentType    = "application/json; charset=utf-8"
	DefaultGatewayTimeout = 10 * time.Second
	DefaultMaxAttempts    = 3
	DefaultRetryBackoff   = 200 * time.Millisecond
	DefaultMaxRetryAfter  = 30 * time.Second
	// DefaultBodyTemplate is the JSON body {"from","to","text","ref","type"}.
	DefaultBodyTemplate = `{"from":{{json .From}},"to":{{json .To}},"text":{{json .Text}},"ref":{{json .Ref}},"type":{{json .Type}}}`

	maxResponseBody = 64 << 10
	maxBackoff      = 5 * time.Second
)

var (
	// ErrNotDelivered is wrapped when a send certainly did not reach the
	// gateway (every connection attempt failed): sending again is safe.
	ErrNotDelivered = errors.New("sms: message not delivered to the gateway")
	// ErrDeliveryUnknown is wrapped when the request may have reached the
	// gateway but no answer came back (a timeout or a connection lost
	// after the request was written): send again with the same Ref, which
	// the gateway deduplicates.
	ErrDeliveryUnknown = errors.New("sms: delivery to the gateway unknown")
	// ErrNoMessageID is wrapped when the gateway accepted a message but its
	// answer does not carry a message id where the configuration says.
	ErrNoMessageID = errors.New("sms: gateway response has no message id")
)

// GatewayError is a non-2xx answer from the gateway.
type GatewayError struct {
	StatusCode int
	// Body is the start of the answer, stripped of card numbers, for
	// diagnosis. Error does not include it: some gateways echo the
	// message text, which may carry a one-time code.
	Body string
}

func (e *GatewayError) Error() string {
	return fmt.Sprintf("sms: gateway answered %d %s", e.StatusCode, http.StatusText(e.StatusCode))
}

// GatewayConfig configures an [HTTPGateway]. Only URL is required.
type GatewayConfig struct {
	// URL is where messages are POSTed.
	URL string
	// APIKey is sent in APIKeyHeader (DefaultAPIKeyHeader), after
	// APIKeyScheme and a space when a scheme is set ("Bearer").
	APIKey       string
	APIKeyHeader string
	APIKeyScheme string
	// Headers are extra static request headers.
	Headers map[string]string

	// BodyTemplate is a text/template executed with a [TemplateData] to
	// produce the request body (DefaultBodyTemplate). Besides the
	// text/template built-ins (urlquery among them) it may call json,
	// which writes its argument as a JSON value.
	BodyTemplate string
	// ContentType of the body (DefaultContentType).
	ContentType string
	// RefHeader carries Message.Ref as the idempotency key of the send
	// (DefaultRefHeader; "-" sends none). A message without a Ref gets a
	// random one, so that the gateway's retries are deduplicated too.
	RefHeader string
	// MessageIDField is the dotted path of the message id in the JSON
	// response ("message_id", "result.msgId"; DefaultMessageIDField); "-"
	// means the gateway returns none and Send returns "".
	MessageIDField string

	// DefaultFrom is used for messages without From.
	DefaultFrom string

	// Timeout bounds one attempt (DefaultGatewayTimeout).
	Timeout time.Duration
	// MaxAttempts bounds the attempts of one Send (DefaultMaxAttempts; 1
	// disables retries). Send retries only a connection that failed before
	// the request was written, and a 429 or 503 answer that carries
	// Retry-After (no later than MaxRetryAfter).
	MaxAttempts   int
	RetryBackoff  time.Duration // first backoff after a connection failure, doubled each time (DefaultRetryBackoff)
	MaxRetryAfter time.Duration // DefaultMaxRetryAfter

	// HTTPClient sends the requests (a client without its own timeout by
	// default; Timeout applies per attempt).
	HTTPClient *http.Client
	// Logger receives one line per send (slog.Default() by default): the
	// masked recipient, the text's length, the Ref and the outcome; never
	// the text.
	Logger *slog.Logger
	// Now is the clock for HTTP-date Retry-After values (time.Now).
	Now func() time.Time
	// Sleep waits between attempts (a timer by default); tests replace
	// it to run without real waits.
	Sleep func(ctx context.Context, d time.Duration) error
}

// TemplateData is what a body template sees.
type TemplateData struct {
	From       string // caller number as configured
	To         string // recipient, E.164
	ToNational string // recipient in national form (01012345678) for Korean numbers, else E.164
	Text       string
	Ref        string
	Type       Kind // SMS or LMS
	Bytes      int  // EUC-KR length of Text
}

// HTTPGateway is a [Sender] that POSTs messages to an HTTP SMS gateway.
// It is safe for concurrent use.
type HTTPGateway struct {
	cfg  GatewayConfig
	tmpl *template.Template
	url  *url.URL
}

var _ Sender = (*HTTPGateway)(nil)

// NewHTTPGateway checks cfg, fills in its defaults and parses its template.
func NewHTTPGateway(cfg GatewayConfig) (*HTTPGateway, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("sms: gateway URL must be an absolute http(s) URL")
	}
	if cfg.APIKeyHeader == "" {
		cfg.APIKeyHeader = DefaultAPIKeyHeader
	}
	if cfg.RefHeader == "" {
		cfg.RefHeader = DefaultRefHeader
	}
	if cfg.MessageIDField == "" {
		cfg.MessageIDField = DefaultMessageIDField
	}
	if cfg.BodyTemplate == "" {
		cfg.BodyTemplate = DefaultBodyTemplate
	}
	if cfg.ContentType == "" {
		cfg.ContentType = DefaultContentType
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultGatewayTimeout
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.RetryBackoff <= 0 {
		cfg.RetryBackoff = DefaultRetryBackoff
	}
	if cfg.MaxRetryAfter <= 0 {
		cfg.MaxRetryAfter = DefaultMaxRetryAfter
	}
	if cfg.HTTPClient == nil {
		// Texts go to one gateway, often several at once: keep their
		// connections (net/http keeps 2 idle per host by default).
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 32
		cfg.HTTPClient = &http.Client{Transport: tr}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleep
	}
	if cfg.DefaultFrom != "" {
		if _, err := NormalizeCallerID(cfg.DefaultFrom); err != nil {
			return nil, fmt.Errorf("sms: gateway DefaultFrom: %w", err)
		}
	}
	tmpl, err := template.New("body").Option("missingkey=error").Funcs(template.FuncMap{"json": jsonValue}).Parse(cfg.BodyTemplate)
	if err != nil {
		return nil, fmt.Errorf("sms: gateway body template: %w", err)
	}
	return &HTTPGateway{cfg: cfg, tmpl: tmpl, url: u}, nil
}

// jsonValue writes v as JSON without HTML escaping.
func jsonValue(v any) (string, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Send validates m (recipient, caller number, text length and encoding),
// renders the body and POSTs it, retrying as [GatewayConfig.MaxAttempts]
// describes, and returns the gateway's message id.
func (g *HTTPGateway) Send(ctx context.Context, m Message) (string, error) {
	data, err := g.prepare(m)
	if err != nil {
		return "", err
	}
	var body bytes.Buffer
	if err := g.tmpl.Execute(&body, data); err != nil {
		return "", fmt.Errorf("sms: render gateway body: %w", err)
	}
	log := g.cfg.Logger.With("to", MaskPhone(data.To), "ref", data.Ref, "type", string(data.Type), "bytes", data.Bytes)

	backoff := g.cfg.RetryBackoff
	for attempt := 1; ; attempt++ {
		id, wait, err := g.attempt(ctx, data, body.Bytes())
		if err == nil {
			log.InfoContext(ctx, "sms sent", "message_id", id, "attempts", attempt)
			return id, nil
		}
		if wait < 0 || attempt >= g.cfg.MaxAttempts {
			log.WarnContext(ctx, "sms send failed", "attempts", attempt, "error", err)
			return "", err
		}
		if wait == 0 {
			wait = backoff
			backoff = min(2*backoff, maxBackoff)
		}
		log.InfoContext(ctx, "sms send retrying", "attempt", attempt, "wait", wait, "error", err)
		if serr := g.cfg.Sleep(ctx, wait); serr != nil {
			return "", fmt.Errorf("%w: %w", err, serr)
		}
	}
}

// prepare validates m and builds the template data.
func (g *HTTPGateway) prepare(m Message) (TemplateData, error) {
	to, err := NormalizePhone(m.To)
	if err != nil {
		return TemplateData{}, fmt.Errorf("sms: recipient: %w", err)
	}
	from := m.From
	if from == "" {
		from = g.cfg.DefaultFrom
	}
	if from == "" {
		return TemplateData{}, fmt.Errorf("sms: message without From and no DefaultFrom configured")
	}
	if _, err := NormalizeCallerID(from); err != nil {
		return TemplateData{}, fmt.Errorf("sms: caller number: %w", err)
	}
	info, err := Measure(m.Text)
	if err != nil {
		return TemplateData{}, err
	}
	ref := m.Ref
	if ref == "" {
		h, err := ecml.RandomHex(rand.Reader, 12)
		if err != nil {
			return TemplateData{}, fmt.Errorf("sms: random ref: %w", err)
		}
		ref = "sms-" + h
	}
	return TemplateData{
		From: from, To: to, ToNational: National(to), Text: m.Text, Ref: ref,
		Type: info.Kind, Bytes: info.Bytes,
	}, nil
}

// attempt makes one request. wait tells Send what to do on error: -1 stop,
// 0 retry after the backoff, >0 retry after that long.
func (g *HTTPGateway) attempt(ctx context.Context, data TemplateData, body []byte) (id string, wait time.Duration, err error) {
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, g.cfg.Timeout)
	defer cancel()

	var gotConn atomic.Bool
	trace := &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) { gotConn.Store(true) }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodPost, g.url.String(), bytes.NewReader(body))
	if err != nil {
		return "", -1, fmt.Errorf("sms: gateway request: %w", err)
	}
	req.Header.Set("Content-Type", g.cfg.ContentType)
	req.Header.Set("Accept", "application/json")
	for k, v := range g.cfg.Headers {
		req.Header.Set(k, v)
	}
	if g.cfg.APIKey != "" {
		v := g.cfg.APIKey
		if g.cfg.APIKeyScheme != "" {
			v = g.cfg.APIKeyScheme + " " + v
		}
		req.Header.Set(g.cfg.APIKeyHeader, v)
	}
	if g.cfg.RefHeader != "-" {
		req.Header.Set(g.cfg.RefHeader, data.Ref)
	}

	resp, err := g.cfg.HTTPClient.Do(req)
	if err != nil {
		if !gotConn.Load() || isDialError(err) {
			// No connection, so no request: safe to try again, unless
			// the caller gave up.
			err = fmt.Errorf("%w: %w", ErrNotDelivered, err)
			if parent.Err() != nil {
				return "", -1, err
			}
			return "", 0, err
		}
		return "", -1, fmt.Errorf("%w: %w", ErrDeliveryUnknown, err)
	}
	defer resp.Body.Close()
	respBody, rerr := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		gerr := &GatewayError{StatusCode: resp.StatusCode, Body: cleanBody(respBody)}
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
			if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), g.cfg.Now()); ok && d <= g.cfg.MaxRetryAfter {
				return "", max(d, time.Millisecond), gerr
			}
		}
		return "", -1, gerr
	}
	if rerr != nil {
		return "", -1, fmt.Errorf("%w: reading the answer: %w", ErrDeliveryUnknown, rerr)
	}
	if g.cfg.MessageIDField == "-" {
		return "", 0, nil
	}
	id, err = extractID(respBody, g.cfg.MessageIDField)
	if err != nil {
		return "", -1, err
	}
	return id, 0, nil
}

// isDialError reports whether err is a failure to open the connection (the
// request cannot have been sent).
func isDialError(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && (op.Op == "dial" || op.Op == "proxyconnect") {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}

// parseRetryAfter reads delta-seconds or an HTTP-date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0, false
		}
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// extractID finds the message id at a dotted path of a JSON document.
func extractID(body []byte, path string) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", fmt.Errorf("%w: the answer is not JSON", ErrNoMessageID)
	}
	for _, k := range strings.Split(path, ".") {
		obj, ok := v.(map[string]any)
		if !ok {
			return "", fmt.Errorf("%w at %q", ErrNoMessageID, path)
		}
		v = obj[k]
	}
	switch x := v.(type) {
	case string:
		if x != "" {
			return x, nil
		}
	case json.Number:
		return x.String(), nil
	}
	return "", fmt.Errorf("%w at %q", ErrNoMessageID, path)
}

// cleanBody shortens an error body for an error message and masks card
// numbers in it.
func cleanBody(b []byte) string {
	const max = 256
	s := strings.TrimSpace(string(b))
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return ecml.RedactPANs(s)
}

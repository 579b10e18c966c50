package sms

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Webhook signature headers. The signature is
//
//	v1=hex(HMAC-SHA256(secret, "v1:" + timestamp + ":" + body))
//
// over the exact request body, with timestamp the decimal Unix time in
// seconds that the timestamp header carries. A sender rotating its secret
// may send several signatures separated by commas; one valid signature is
// enough.
const (
	HeaderTimestamp = "X-Kecis-Sms-Timestamp"
	HeaderSignature = "X-Kecis-Sms-Signature"
)

const (
	// MinSecretLen is the shortest webhook secret accepted, in bytes.
	MinSecretLen = 16
	// DefaultReplayWindow is how far a webhook timestamp may be from the
	// receiver's clock, in either direction.
	DefaultReplayWindow = 5 * time.Minute
	// DefaultMaxWebhookBody caps a webhook request body.
	DefaultMaxWebhookBody = 64 << 10
	// maxSeen caps the replay cache of one webhook handler.
	maxSeen = 1 << 16
)

var (
	// ErrBadSignature is wrapped when no webhook signature matches.
	ErrBadSignature = errors.New("sms: webhook signature invalid")
	// ErrStaleTimestamp is wrapped when a webhook timestamp is missing,
	// malformed or outside the replay window.
	ErrStaleTimestamp = errors.New("sms: webhook timestamp outside the replay window")
	// ErrReplayed is returned for a webhook request that was already
	// accepted.
	ErrReplayed = errors.New("sms: webhook request replayed")
)

// Sign returns the signature header value for body sent at ts.
func Sign(secret []byte, ts time.Time, body []byte) string {
	return "v1=" + hex.EncodeToString(mac(secret, strconv.FormatInt(ts.Unix(), 10), body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("v1:"))
	m.Write([]byte(ts))
	m.Write([]byte(":"))
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks a webhook request's timestamp and signature headers
// against body and any of secrets, at now and within window. It returns
// the verified signature (the replay cache key).
func Verify(secrets [][]byte, tsHeader, sigHeader string, body []byte, now time.Time, window time.Duration) ([]byte, error) {
	sec, err := strconv.ParseInt(strings.TrimSpace(tsHeader), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%w: missing or malformed %s", ErrStaleTimestamp, HeaderTimestamp)
	}
	ts := time.Unix(sec, 0)
	if d := now.Sub(ts); d > window || d < -window {
		return nil, fmt.Errorf("%w: %s off", ErrStaleTimestamp, d.Round(time.Second))
	}
	for _, part := range strings.Split(sigHeader, ",") {
		v, ok := strings.CutPrefix(strings.TrimSpace(part), "v1=")
		if !ok {
			continue
		}
		got, err := hex.DecodeString(v)
		if err != nil || len(got) != sha256.Size {
			continue
		}
		for _, s := range secrets {
			if hmac.Equal(got, mac(s, strings.TrimSpace(tsHeader), body)) {
				return got, nil
			}
		}
	}
	return nil, ErrBadSignature
}

// NewWebhookRequest builds the signed POST that a gateway sends to a
// participant's webhook to deliver reply r, timestamped now.
func NewWebhookRequest(ctx context.Context, url string, secret []byte, r Reply, now time.Time) (*http.Request, error) {
	body, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("sms: encode reply: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("sms: webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(HeaderSignature, Sign(secret, now, body))
	return req, nil
}

// WebhookOption configures [WebhookHandler].
type WebhookOption func(*webhook)

// WithClock sets the clock the replay window is checked against
// (time.Now by default).
func WithClock(now func() time.Time) WebhookOption {
	return func(w *webhook) { w.now = now }
}

// WithReplayWindow sets how far a request's timestamp may be from the
// clock ([DefaultReplayWindow] by default).
func WithReplayWindow(d time.Duration) WebhookOption {
	return func(w *webhook) { w.window = d }
}

// WithPreviousSecret accepts signatures made with an older secret too,
// while a gateway rotates to the new one.
func WithPreviousSecret(secret []byte) WebhookOption {
	return func(w *webhook) {
		if len(secret) > 0 {
			w.secrets = append(w.secrets, bytes.Clone(secret))
		}
	}
}

// WithLogger sets the logger (slog.Default() by default). The handler logs
// refusals and accepted replies with the masked number and the text's
// length, never the text.
func WithLogger(l *slog.Logger) WebhookOption {
	return func(w *webhook) { w.log = l }
}

// WithMaxBody caps the request body ([DefaultMaxWebhookBody] by default).
func WithMaxBody(n int64) WebhookOption {
	return func(w *webhook) { w.maxBody = n }
}

// WebhookHandler returns the endpoint at which a gateway delivers replies:
// a POST of a JSON [Reply] signed as [Sign] describes. It refuses a missing,
// malformed or wrong signature and a timestamp outside the replay window
// (401), a request it already accepted (409), a body that is not a reply
// (400) or too large (413), and any method but POST (405); it answers 204
// once h accepted the reply and 500 when h failed, so that the gateway
// tries again.
//
// secret must be at least [MinSecretLen] bytes and h non-nil; otherwise
// WebhookHandler panics, as for any other programming error.
func WebhookHandler(secret []byte, h ReplyHandler, opts ...WebhookOption) http.Handler {
	if len(secret) < MinSecretLen {
		panic(fmt.Sprintf("sms: WebhookHandler: secret shorter than %d bytes", MinSecretLen))
	}
	if h == nil {
		panic("sms: WebhookHandler: nil ReplyHandler")
	}
	w := &webhook{
		secrets: [][]byte{bytes.Clone(secret)},
		h:       h,
		now:     time.Now,
		window:  DefaultReplayWindow,
		maxBody: DefaultMaxWebhookBody,
		seen:    map[string]seenEntry{},
	}
	for _, o := range opts {
		o(w)
	}
	if w.log == nil {
		w.log = slog.Default()
	}
	return w
}

type webhook struct {
	secrets [][]byte
	h       ReplyHandler
	now     func() time.Time
	window  time.Duration
	maxBody int64
	log     *slog.Logger

	mu        sync.Mutex
	seen      map[string]seenEntry
	lastPrune time.Time
}

// seenEntry records a signature until its timestamp leaves the window.
type seenEntry struct {
	expires  time.Time
	inFlight bool
}

func (wh *webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, wh.maxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			wh.refuse(ctx, w, http.StatusRequestEntityTooLarge, "request body too large", err)
			return
		}
		wh.refuse(ctx, w, http.StatusBadRequest, "unreadable request body", err)
		return
	}
	now := wh.now()
	sig, err := Verify(wh.secrets, r.Header.Get(HeaderTimestamp), r.Header.Get(HeaderSignature), body, now, wh.window)
	if err != nil {
		wh.refuse(ctx, w, http.StatusUnauthorized, "signature or timestamp invalid", err)
		return
	}

	var reply Reply
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&reply); err != nil {
		wh.refuse(ctx, w, http.StatusBadRequest, "body is not a JSON reply", err)
		return
	}
	from, err := NormalizePhone(reply.From)
	if err != nil {
		wh.refuse(ctx, w, http.StatusBadRequest, "reply has no valid from number", err)
		return
	}
	reply.From = from
	if reply.Text == "" {
		wh.refuse(ctx, w, http.StatusBadRequest, "reply has no text", ErrEmptyText)
		return
	}
	if reply.ReceivedAt.IsZero() {
		reply.ReceivedAt = now
	}

	key := string(sig)
	ts, _ := strconv.ParseInt(strings.TrimSpace(r.Header.Get(HeaderTimestamp)), 10, 64)
	switch wh.claim(key, time.Unix(ts, 0).Add(wh.window), now) {
	case claimReplayed:
		wh.refuse(ctx, w, http.StatusConflict, "request already received", ErrReplayed)
		return
	case claimFull:
		w.Header().Set("Retry-After", "60")
		wh.refuse(ctx, w, http.StatusServiceUnavailable, "too many requests in the replay window", errors.New("sms: webhook replay cache full"))
		return
	}
	if err := wh.h.HandleReply(ctx, reply); err != nil {
		wh.release(key)
		wh.log.ErrorContext(ctx, "sms webhook: reply handler failed",
			"reply_id", reply.ID, "from", MaskPhone(reply.From), "in_reply_to", reply.InReplyTo, "error", err)
		http.Error(w, "reply not processed", http.StatusInternalServerError)
		return
	}
	wh.done(key)
	wh.log.InfoContext(ctx, "sms webhook: reply received",
		"reply_id", reply.ID, "from", MaskPhone(reply.From), "in_reply_to", reply.InReplyTo, "text_len", len(reply.Text))
	w.WriteHeader(http.StatusNoContent)
}

func (wh *webhook) refuse(ctx context.Context, w http.ResponseWriter, status int, public string, err error) {
	wh.log.WarnContext(ctx, "sms webhook: request refused", "status", status, "reason", public, "error", err)
	http.Error(w, public, status)
}

type claimResult int

const (
	claimOK claimResult = iota
	claimReplayed
	claimFull
)

// claim marks a verified signature as being processed; it fails when the
// signature was accepted before or is being processed now, or when the
// replay cache is full.
func (wh *webhook) claim(key string, expires, now time.Time) claimResult {
	wh.mu.Lock()
	defer wh.mu.Unlock()
	if now.Sub(wh.lastPrune) > wh.window/4 || len(wh.seen) >= maxSeen {
		for k, e := range wh.seen {
			if !e.inFlight && now.After(e.expires) {
				delete(wh.seen, k)
			}
		}
		wh.lastPrune = now
	}
	if _, dup := wh.seen[key]; dup {
		return claimReplayed
	}
	if len(wh.seen) >= maxSeen {
		return claimFull
	}
	wh.seen[key] = seenEntry{expires: expires, inFlight: true}
	return claimOK
}

// release forgets a claimed signature whose handler failed, so that the
// gateway may deliver the same signed request again.
func (wh *webhook) release(key string) {
	wh.mu.Lock()
	defer wh.mu.Unlock()
	delete(wh.seen, key)
}

// done keeps a signature whose handler succeeded until it expires.
func (wh *webhook) done(key string) {
	wh.mu.Lock()
	defer wh.mu.Unlock()
	if e, ok := wh.seen[key]; ok {
		e.inFlight = false
		wh.seen[key] = e
	}
}

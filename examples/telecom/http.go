package telecom

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/kecis/kecis/connectors/sms"
)

const (
	// maxAPIBody caps JSON request bodies (an LMS is at most 2,000 EUC-KR
	// bytes, about 3,000 in UTF-8, before JSON escaping).
	maxAPIBody = 64 << 10
	// maxLongPoll caps the wait parameter of the inbox API.
	maxLongPoll = 30 * time.Second
)

// Handler returns the telecom's HTTP interface (see the package
// documentation). Browser form posts are protected against cross-site
// requests with http.CrossOriginProtection.
func (t *Telecom) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/sms", t.handleSubmit)
	mux.HandleFunc("GET /api/messages/{id}", t.handleMessage)
	mux.HandleFunc("GET /api/phones/{number}/messages", t.handlePhoneMessages)
	mux.HandleFunc("POST /api/phones/{number}/replies", t.handleAPIReply)
	mux.HandleFunc("POST /api/admin/subscribers", t.admin(t.handleAddSubscriber))
	mux.HandleFunc("POST /api/admin/senders", t.admin(t.handleAddSender))
	mux.HandleFunc("GET /phones", t.handlePhonesPage)
	mux.HandleFunc("GET /phones/{number}", t.handlePhonePage)
	mux.HandleFunc("POST /phones/{number}/reply", t.handleFormReply)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := t.db.PingContext(r.Context()); err != nil {
			http.Error(w, "database unavailable", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/phones", http.StatusFound)
	})
	return http.NewCrossOriginProtection().Handler(mux)
}

// ---- JSON helpers ------------------------------------------------------

type apiError struct {
	Error string      `json:"error"`
	Code  string      `json:"code"`
	Reply *PhoneReply `json:"reply,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	_ = enc.Encode(v)
}

// errorStatus maps the package's errors to an HTTP status and a code.
func errorStatus(err error) (int, string) {
	switch {
	case errors.Is(err, ErrInvalid):
		return http.StatusBadRequest, "invalid_request"
	case errors.Is(err, ErrUnauthorized):
		return http.StatusUnauthorized, "unauthorized"
	case errors.Is(err, ErrCallerNotRegistered):
		return http.StatusForbidden, "caller_not_registered"
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrNotSubscriber):
		return http.StatusNotFound, "not_found"
	case errors.Is(err, ErrExists):
		return http.StatusConflict, "exists"
	case errors.Is(err, ErrIdempotencyConflict):
		return http.StatusUnprocessableEntity, "idempotency_key_reused"
	case errors.Is(err, ErrNoWebhook), errors.Is(err, ErrWebhookFailed):
		return http.StatusBadGateway, "webhook_failed"
	}
	return http.StatusInternalServerError, "internal"
}

// writeError answers err; internal errors are logged and not disclosed.
func (t *Telecom) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, code := errorStatus(err)
	msg := err.Error()
	if status == http.StatusInternalServerError {
		t.log.ErrorContext(r.Context(), "telecom: request failed", "method", r.Method, "path", r.URL.Path, "error", err)
		msg = "internal error"
	}
	writeJSON(w, status, apiError{Error: msg, Code: code})
}

func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAPIBody))
	if err := dec.Decode(v); err != nil {
		return invalid(fmt.Errorf("request body: %w", err))
	}
	return nil
}

// apiKey reads the sender's key from X-API-Key or Authorization: Bearer.
func apiKey(r *http.Request) string {
	if k := r.Header.Get(sms.DefaultAPIKeyHeader); k != "" {
		return k
	}
	if v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return strings.TrimSpace(v)
	}
	return ""
}

// ---- gateway -----------------------------------------------------------

// submitRequest is the default body of sms.HTTPGateway.
type submitRequest struct {
	From string   `json:"from"`
	To   string   `json:"to"`
	Text string   `json:"text"`
	Ref  string   `json:"ref"`
	Type sms.Kind `json:"type"`
}

type submitResponse struct {
	MessageID string   `json:"message_id"`
	Status    Status   `json:"status"`
	Type      sms.Kind `json:"type"`
	Bytes     int      `json:"bytes"`
}

func (t *Telecom) handleSubmit(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	s, err := t.senderByAPIKey(ctx, apiKey(r))
	if err != nil {
		t.writeError(w, r, err)
		return
	}
	var req submitRequest
	if err := decodeJSON(w, r, &req); err != nil {
		t.writeError(w, r, err)
		return
	}
	if h := r.Header.Get(sms.DefaultRefHeader); h != "" {
		if req.Ref != "" && req.Ref != h {
			t.writeError(w, r, invalid(fmt.Errorf("%s header and ref differ", sms.DefaultRefHeader)))
			return
		}
		req.Ref = h
	}
	kind := sms.Kind(strings.ToUpper(string(req.Type)))
	msg, replayed, err := t.submit(ctx, s, sms.Message{From: req.From, To: req.To, Text: req.Text, Ref: req.Ref}, kind)
	if err != nil {
		t.writeError(w, r, err)
		return
	}
	if replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	writeJSON(w, http.StatusAccepted, submitResponse{MessageID: msg.ID, Status: msg.Status, Type: msg.Type, Bytes: msg.Bytes})
}

func (t *Telecom) handleMessage(w http.ResponseWriter, r *http.Request) {
	m, err := t.Message(r.Context(), r.PathValue("id"))
	if err != nil {
		t.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, m)
}

// ---- phones (JSON) -----------------------------------------------------

type messagesResponse struct {
	Phone    string    `json:"phone"`
	Messages []Message `json:"messages"`
}

func (t *Telecom) handlePhoneMessages(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	phone, err := sms.NormalizePhone(r.PathValue("number"))
	if err != nil {
		t.writeError(w, r, fmt.Errorf("%w: %w", ErrNotFound, err))
		return
	}
	since := r.URL.Query().Get("since")
	wait, err := parseWait(r.URL.Query().Get("wait"))
	if err != nil {
		t.writeError(w, r, err)
		return
	}
	var deadline <-chan time.Time
	if wait > 0 {
		timer := time.NewTimer(wait)
		defer timer.Stop()
		deadline = timer.C
	}
	for {
		ch := t.changedChan()
		msgs, err := t.MessagesSince(ctx, phone, since)
		if err != nil {
			t.writeError(w, r, err)
			return
		}
		if len(msgs) > 0 || wait == 0 {
			if msgs == nil {
				msgs = []Message{}
			}
			writeJSON(w, http.StatusOK, messagesResponse{Phone: phone, Messages: msgs})
			return
		}
		select {
		case <-ch:
		case <-deadline:
			wait = 0
		case <-ctx.Done():
			return
		}
	}
}

// parseWait reads the long-poll duration: "10s", or seconds ("10").
func parseWait(v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		s, serr := strconv.Atoi(v)
		if serr != nil {
			return 0, invalid(errors.New("wait: want a duration such as 10s"))
		}
		d = time.Duration(s) * time.Second
	}
	if d < 0 {
		return 0, invalid(errors.New("wait: negative"))
	}
	return min(d, maxLongPoll), nil
}

type replyRequest struct {
	Text      string `json:"text"`
	InReplyTo string `json:"in_reply_to"`
}

func (t *Telecom) handleAPIReply(w http.ResponseWriter, r *http.Request) {
	var req replyRequest
	if err := decodeJSON(w, r, &req); err != nil {
		t.writeError(w, r, err)
		return
	}
	rep, err := t.Reply(r.Context(), r.PathValue("number"), req.Text, req.InReplyTo)
	if err != nil {
		status, code := errorStatus(err)
		if rep.ID != "" && status != http.StatusInternalServerError {
			writeJSON(w, status, apiError{Error: err.Error(), Code: code, Reply: &rep})
			return
		}
		t.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, rep)
}

// ---- admin -------------------------------------------------------------

// admin guards an endpoint with Config.AdminToken; without a token the
// endpoint does not exist.
func (t *Telecom) admin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if t.cfg.AdminToken == "" {
			http.NotFound(w, r)
			return
		}
		got, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if subtle.ConstantTimeCompare([]byte(got), []byte(t.cfg.AdminToken)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="telecom-admin"`)
			writeJSON(w, http.StatusUnauthorized, apiError{Error: "admin token required", Code: "unauthorized"})
			return
		}
		h(w, r)
	}
}

type subscriberRequest struct {
	Phone      string `json:"phone"`
	HolderName string `json:"holder_name"`
	BirthDate  string `json:"birth_date"`
	Status     string `json:"status"`
}

func (t *Telecom) handleAddSubscriber(w http.ResponseWriter, r *http.Request) {
	var req subscriberRequest
	if err := decodeJSON(w, r, &req); err != nil {
		t.writeError(w, r, err)
		return
	}
	birth, err := time.Parse(time.DateOnly, req.BirthDate)
	if err != nil {
		t.writeError(w, r, invalid(errors.New("birth_date: want YYYY-MM-DD")))
		return
	}
	err = t.AddSubscriber(r.Context(), Subscriber{
		Phone: req.Phone, HolderName: req.HolderName, BirthDate: birth, Status: SubscriberStatus(req.Status),
	})
	if err != nil {
		t.writeError(w, r, err)
		return
	}
	p, _ := sms.NormalizePhone(req.Phone)
	writeJSON(w, http.StatusCreated, map[string]string{"phone": p})
}

type senderRequest struct {
	ID            string   `json:"id"`
	Name          string   `json:"name"`
	APIKey        string   `json:"api_key"`
	Numbers       []string `json:"numbers"`
	WebhookURL    string   `json:"webhook_url"`
	WebhookSecret string   `json:"webhook_secret"`
}

func (t *Telecom) handleAddSender(w http.ResponseWriter, r *http.Request) {
	var req senderRequest
	if err := decodeJSON(w, r, &req); err != nil {
		t.writeError(w, r, err)
		return
	}
	err := t.AddSender(r.Context(), SenderAccount{
		ID: req.ID, Name: req.Name, APIKey: req.APIKey, Numbers: req.Numbers,
		WebhookURL: req.WebhookURL, WebhookSecret: []byte(req.WebhookSecret),
	})
	if err != nil {
		t.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"id": req.ID})
}

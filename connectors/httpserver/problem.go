package httpserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kecis/kecis/ecml"
)

// Problem is an HTTP answer a server gives itself: an RFC 9457 problem
// document (KECIS §12.4) with a public face and a private cause, as the
// envelope layer's protocol errors have (KECIS §6). Each kind is declared
// once as a value by the package that answers it — its Type (the document's
// type is urn:kecis:problem:<Type>), HTTP Status and public Title;
// WithDetail and WithCause return a copy. The detail is sent and holds only
// names — of fields, members, services, participants — never a value; the
// cause is for the log and is never sent.
type Problem struct {
	Type   string
	Status int
	Title  string
	detail string
	cause  error
	// retryAfter, when positive, is sent as Retry-After (RFC 9110 §10.2.3).
	retryAfter time.Duration
}

// NewProblem declares a kind of problem. A type has one status and one
// title in a whole program — the hub's endpoints, its facade and the
// adapter sidecar's caller answer the same type the same way: declaring a
// type again with the same status and title gives the first declaration
// back, and with another status or title panics, so that a program that
// links two different declarations of one type fails as it starts (its
// tests fail) instead of answering with two titles. Declared lists them.
func NewProblem(typ string, status int, title string) *Problem {
	declared.Lock()
	defer declared.Unlock()
	if q, ok := declared.byType[typ]; ok {
		if q.Status != status || q.Title != title {
			panic(fmt.Sprintf("httpserver: problem type %q declared as %d %q and as %d %q: one type has one status and one title; share one declaration",
				typ, q.Status, q.Title, status, title))
		}
		return q
	}
	p := &Problem{Type: typ, Status: status, Title: title}
	if declared.byType == nil {
		declared.byType = map[string]*Problem{}
	}
	declared.byType[typ] = p
	return p
}

// declared are the kinds NewProblem declared, by type.
var declared struct {
	sync.Mutex
	byType map[string]*Problem
}

// Declared lists every kind of problem the program declared (NewProblem),
// sorted by type.
func Declared() []*Problem {
	declared.Lock()
	defer declared.Unlock()
	out := make([]*Problem, 0, len(declared.byType))
	for _, p := range declared.byType {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *Problem) int { return strings.Compare(a.Type, b.Type) })
	return out
}

// ProblemInternal is the answer to an error that is no Problem: its cause is
// logged, nothing of it sent.
var ProblemInternal = NewProblem("internal", http.StatusInternalServerError, "internal error")

// The problems of a request's form, whatever the endpoint: each type has
// this one title everywhere (the hub's facade and its own endpoints, the
// sidecar's calling endpoint); the detail says what to fix.
var (
	// ProblemBadRequest is a request that is not as the endpoint's API
	// description defines it: the detail names the member, field or
	// parameter at fault.
	ProblemBadRequest = NewProblem("bad-request", http.StatusBadRequest,
		"the request is not as the API description defines it; the detail names what to fix")
	// ProblemTooLarge is a body over the endpoint's cap.
	ProblemTooLarge = NewProblem("too-large", http.StatusRequestEntityTooLarge,
		"request body too large")
	// ProblemUnreadable is a body that could not be read (the client went
	// away, a broken chunked encoding).
	ProblemUnreadable = NewProblem("unreadable", http.StatusBadRequest,
		"request body could not be read")
)

// BodyProblem is the answer to an error reading a request's body:
// ProblemTooLarge past the cap (*http.MaxBytesError), else
// ProblemUnreadable; err is the cause.
func BodyProblem(err error) *Problem {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return ProblemTooLarge.WithCause(err)
	}
	return ProblemUnreadable.WithCause(err)
}

// ProblemMetadataUnavailable is the answer of a server that needs the
// federation metadata and cannot have it now: the hub's metadata
// endpoints when the registry cannot be read, the adapter sidecar's caller
// when it cannot look up a recipient. 503: retry later.
var ProblemMetadataUnavailable = NewProblem("metadata-unavailable", http.StatusServiceUnavailable,
	"metadata is temporarily unavailable")

// ProblemUnavailable is the answer of a server whose database cannot take
// the request for now — unreachable, refusing writes, full (KECIS §12.8):
// 503 with Retry-After (WithRetryAfter); the client retries the same
// request later (with the same Idempotency-Key). Not an internal error:
// nothing is wrong with the request, nor with the server's code.
var ProblemUnavailable = NewProblem("unavailable", http.StatusServiceUnavailable,
	"temporarily unavailable; retry after the time Retry-After gives")

// ProblemRateLimited is the answer to a client over its rate limit (KECIS
// §12.7): 429 with Retry-After, the seconds until the client's next
// request is admitted (WithRetryAfter; connectors/ratelimit computes it).
var ProblemRateLimited = NewProblem("rate-limited", http.StatusTooManyRequests,
	"too many requests; retry after the time Retry-After gives")

// ProblemTypePrefix prefixes every problem type URI.
const ProblemTypePrefix = "urn:kecis:problem:"

// TypeURI is the problem's type: urn:kecis:problem:<Type>.
func (p *Problem) TypeURI() string { return ProblemTypePrefix + p.Type }

// Detail is what the answer's detail member says.
func (p *Problem) Detail() string { return p.detail }

// Cause is the private cause, for the log; nil when there is none.
func (p *Problem) Cause() error { return p.cause }

func (p *Problem) Error() string {
	s := p.Type + ": " + p.Title
	if p.detail != "" {
		s += " (" + p.detail + ")"
	}
	if p.cause != nil {
		s += ": " + p.cause.Error()
	}
	return s
}

// Unwrap returns the private cause.
func (p *Problem) Unwrap() error { return p.cause }

// Is matches a Problem of the same type, whatever its detail and cause.
func (p *Problem) Is(target error) bool {
	t, ok := target.(*Problem)
	return ok && t.Type == p.Type
}

// WithDetail returns a copy whose answer says detail: names only, never a
// value.
func (p *Problem) WithDetail(detail string) *Problem {
	q := *p
	q.detail = detail
	return &q
}

// WithCause returns a copy carrying err for the log.
func (p *Problem) WithCause(err error) *Problem {
	q := *p
	q.cause = err
	return &q
}

// WithRetryAfter returns a copy answered with a Retry-After header: d in
// whole seconds, rounded up, at least 1.
func (p *Problem) WithRetryAfter(d time.Duration) *Problem {
	q := *p
	q.retryAfter = d
	return &q
}

// RetryAfter is the delay the answer's Retry-After gives, 0 for none.
func (p *Problem) RetryAfter() time.Duration { return p.retryAfter }

// RetryAfterSeconds is Retry-After's delay-seconds (RFC 9110 §10.2.3): d
// rounded up to whole seconds, at least 1 (0 would invite a retry at
// once). Every 429 the project sends — a problem document, a SOAP
// endpoint's fault — gives its delay this way.
func RetryAfterSeconds(d time.Duration) string {
	s := int64((d + time.Second - 1) / time.Second)
	return strconv.FormatInt(max(s, 1), 10)
}

// AsProblem is the Problem err is or wraps, or ProblemInternal caused by
// err.
func AsProblem(err error) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	return ProblemInternal.WithCause(err)
}

// ProblemDocument is the RFC 9457 document a Problem is sent as.
type ProblemDocument struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
}

// Document is the problem as sent: its cause left out.
func (p *Problem) Document() ProblemDocument {
	return ProblemDocument{Type: p.TypeURI(), Title: p.Title, Status: p.Status, Detail: p.detail}
}

// Write sends the problem as application/problem+json. Logging is the
// caller's: it knows the request.
func (p *Problem) Write(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if p.retryAfter > 0 {
		w.Header().Set("Retry-After", RetryAfterSeconds(p.retryAfter))
	}
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p.Document())
}

// Fail answers err as a problem document on w and logs it with log under
// msg, with attrs naming the request: a refusal at Info, an unauthenticated
// or forbidden request at Warn, anything at or above 500 at Error with its
// cause. Neither the detail sent nor anything logged holds a card number
// (ecml.RedactPANs, KECIS §9.11); causes are built from names only.
func Fail(ctx context.Context, w http.ResponseWriter, log *slog.Logger, msg string, err error, attrs ...slog.Attr) {
	p := AsProblem(err)
	attrs = append([]slog.Attr{slog.String("problem", p.Type), slog.Int("status", p.Status)}, attrs...)
	if p.Detail() != "" {
		p = p.WithDetail(ecml.RedactPANs(p.Detail()))
		attrs = append(attrs, slog.String("detail", p.Detail()))
	}
	if p.Cause() != nil {
		attrs = append(attrs, slog.String("cause", ecml.RedactPANs(p.Cause().Error())))
	}
	lvl := slog.LevelInfo
	switch {
	case p.Status >= http.StatusInternalServerError:
		lvl = slog.LevelError
	case p.Status == http.StatusUnauthorized || p.Status == http.StatusForbidden:
		lvl = slog.LevelWarn
	}
	if log != nil {
		log.LogAttrs(ctx, lvl, msg, attrs...)
	}
	p.Write(w)
}

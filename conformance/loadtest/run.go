package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kecis/kecis/connectors/callapi"
)

// Bounds of a run: a load test always stops.
const (
	MaxRequests    = 500_000
	MaxConcurrency = 256
	MaxRate        = 10_000 // requests per second
	MaxDuration    = time.Hour
	MaxRetries     = 5
	MaxTimeout     = 2 * time.Minute
)

// Amounts (KRW, minor units = won). An approval of the run pays
// approveBase plus a multiple of 10 below approveSpan; the approvals
// settled before the run to be refunded pay prepAmount, refunded
// refundAmount at a time.
const (
	approveBase  = 1_000
	approveSpan  = 500
	prepAmount   = 20_000
	refundAmount = 100
)

// Operations, as the summary names them.
const (
	OpApprove = "approve"
	OpCancel  = "cancel"
	OpRefund  = "refund"
	OpInquire = "inquire"
)

// Options shape a run.
type Options struct {
	// Requests stops the run after this many requests; Duration stops it
	// from issuing new ones after that long. At least one is set; with
	// both, the first reached ends the run.
	Requests int
	Duration time.Duration
	// Concurrency is the number of requests in flight at most (workers).
	Concurrency int
	// Rate is the offered rate in requests per second (open loop); 0 sends
	// as fast as the workers go.
	Rate float64
	// Timeout bounds one attempt; Retries is how many times a request that
	// timed out, could not be sent, or was answered 503, 409 (in flight)
	// or 429 is sent again, with the same Idempotency-Key.
	Timeout time.Duration
	Retries int
	// Mix weighs the operations.
	Mix Mix
	// Seed of the run's random choices, and RunID, which names its orders,
	// idempotency keys and card ("" makes one from Seed).
	Seed  uint64
	RunID string
	// Clock paces and measures (WallClock when nil).
	Clock Clock
	// Progress receives a line every ProgressEvery (1s) while the run goes
	// (nil: none).
	Progress      io.Writer
	ProgressEvery time.Duration
	// Issuer issues the card and shows its ledger (nil: the target's
	// IssuerAPI, if any).
	Issuer Issuer
}

// Mix weighs the operations: each request is one of them with a
// probability proportional to its weight. A cancel, refund or inquiry
// with nothing to act on is an approval instead.
type Mix struct {
	Approve, Cancel, Refund, Inquire int
}

// DefaultMix is 60 % approvals, 15 % cancels, 10 % refunds, 15 % inquiries.
var DefaultMix = Mix{Approve: 60, Cancel: 15, Refund: 10, Inquire: 15}

func (m Mix) total() int { return m.Approve + m.Cancel + m.Refund + m.Inquire }

// String is the mix as ParseMix reads it.
func (m Mix) String() string {
	return fmt.Sprintf("approve=%d,cancel=%d,refund=%d,inquire=%d", m.Approve, m.Cancel, m.Refund, m.Inquire)
}

// ParseMix reads "approve=60,cancel=15,refund=10,inquire=15"; an
// operation left out weighs 0.
func ParseMix(s string) (Mix, error) {
	var m Mix
	for _, part := range strings.Split(s, ",") {
		name, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		n, err := strconv.Atoi(val)
		if !ok || err != nil || n < 0 || n > 1000 {
			return Mix{}, fmt.Errorf("mix %q: give op=weight pairs, weights 0–1000, e.g. %s", s, DefaultMix)
		}
		switch name {
		case OpApprove:
			m.Approve = n
		case OpCancel:
			m.Cancel = n
		case OpRefund:
			m.Refund = n
		case OpInquire:
			m.Inquire = n
		default:
			return Mix{}, fmt.Errorf("mix %q: no operation %q (approve, cancel, refund, inquire)", s, name)
		}
	}
	if m.Approve == 0 {
		return Mix{}, fmt.Errorf("mix %q: approve must weigh more than 0", s)
	}
	return m, nil
}

// ErrOptions is wrapped by Validate's errors: options no run can take.
var ErrOptions = errors.New("invalid options")

// Validate checks o against the bounds and fills its defaults.
func (o *Options) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrOptions, fmt.Sprintf(format, args...))
	}
	switch {
	case o.Requests == 0 && o.Duration == 0:
		return bad("give a number of requests or a duration")
	case o.Requests < 0 || o.Requests > MaxRequests:
		return bad("requests must be between 1 and %d", MaxRequests)
	case o.Duration < 0 || o.Duration > MaxDuration:
		return bad("duration must be at most %s", MaxDuration)
	case o.Concurrency < 1 || o.Concurrency > MaxConcurrency:
		return bad("concurrency must be between 1 and %d", MaxConcurrency)
	case o.Rate < 0 || o.Rate > MaxRate:
		return bad("rate must be between 0 (as fast as possible) and %d requests/s", MaxRate)
	case o.Timeout < 0 || o.Timeout > MaxTimeout:
		return bad("timeout must be at most %s", MaxTimeout)
	case o.Retries < 0 || o.Retries > MaxRetries:
		return bad("retries must be between 0 and %d", MaxRetries)
	}
	if o.Mix == (Mix{}) {
		o.Mix = DefaultMix
	}
	if o.Mix.Approve <= 0 || o.Mix.Cancel < 0 || o.Mix.Refund < 0 || o.Mix.Inquire < 0 {
		return bad("mix %s: approve must weigh more than 0, none less", o.Mix)
	}
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Clock == nil {
		o.Clock = WallClock{}
	}
	if o.ProgressEvery <= 0 {
		o.ProgressEvery = time.Second
	}
	return nil
}

// slots is the most requests the run can make: the number asked for, or
// what the rate offers in the duration, or MaxRequests.
func (o *Options) slots() int {
	n := o.Requests
	if n == 0 {
		n = MaxRequests
		if o.Rate > 0 {
			n = min(MaxRequests, int(o.Rate*o.Duration.Seconds())+1)
		}
	}
	return n
}

// outcome of an operation as the load test knows it.
type outcome int

const (
	none    outcome = iota
	acked           // the hub answered that it was done
	refused         // the hub or the provider refused it: nothing was done
	unknown         // no answer, or pending: it may have been done
)

// order is a merchant's order: an approval and what followed it.
type order struct {
	id       string
	n        int
	merchant int
	amount   int64
	prep     bool // approved before the run, to be settled and refunded
	settled  bool // settled before the run: refundable
	approve  outcome
	number   string // the issuer's approval number, once known
	cancel   outcome
	// refunded is what acknowledged refunds returned; maybeRefunded what
	// refunds without an answer may have.
	refunded, maybeRefunded int64
	refunds                 int
	busy                    bool // a cancel or refund is in flight
}

// sample is one request of the run as measured.
type sample struct {
	op      string
	latency time.Duration
	ok      bool
	status  string // "" when ok
	retries int
	hub     int // the index in hubs of the hub its last attempt went to
}

type runner struct {
	t    *Target
	o    Options
	hc   *http.Client
	card *Card
	run  string
	// hubs are the target's hubs (Target.Hubs); attempts counts the
	// attempts each was sent.
	hubs     []string
	attempts []atomic.Int64

	mu          sync.Mutex
	rng         *rand.Rand
	orders      []*order
	cancellable []*order // approved in the run, acknowledged, not yet cancelled, idle
	refundable  []*order // settled before the run, refundable left, idle
	inquirable  []*order // acknowledged
	samples     []sample

	issued, finished, failed, approvals, inFlight atomic.Int64
}

// Run makes the run o describes against t and reconciles it.
func Run(ctx context.Context, t *Target, o Options) (*Summary, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if len(t.Merchants) == 0 {
		return nil, errors.New("the target has no merchant to pay as")
	}
	r := &runner{t: t, o: o, hc: t.httpClient(o.Concurrency), rng: rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15)),
		hubs: t.Hubs()}
	r.attempts = make([]atomic.Int64, len(r.hubs))
	r.run = o.RunID
	if r.run == "" {
		const abc = "abcdefghijklmnopqrstuvwxyz0123456789"
		b := make([]byte, 8)
		for i := range b {
			b[i] = abc[r.rng.IntN(len(abc))]
		}
		r.run = string(b)
	}
	iss := o.Issuer
	if iss == nil && t.IssuerAPI != "" {
		iss = &IssuerAPI{URL: t.IssuerAPI, AdminKey: t.IssuerAdminKey, HTTP: r.hc}
	}
	// The work goes on when ctx ends (an interrupt): requests in flight
	// are answered, and what was done is reconciled; ctx only stops new
	// requests.
	work := context.WithoutCancel(ctx)
	prep := 0
	if o.Mix.Refund > 0 && t.SettleURL != "" {
		// Enough settled approvals to refund from (prepAmount/refundAmount
		// refunds each) and to keep every worker busy refunding.
		want := int64(o.slots()) * int64(o.Mix.Refund) / int64(o.Mix.total())
		prep = int(min(64, max(int64(2*o.Concurrency), want/(prepAmount/refundAmount)+1)))
	}
	switch {
	case iss != nil:
		limit := int64(o.slots())*(approveBase+approveSpan) + int64(prep)*prepAmount
		card, err := iss.IssueCard(work, limit, "lt-"+r.run+"-card")
		if err != nil {
			return nil, err
		}
		r.card = card
	case t.Card != nil:
		r.card = t.Card
	default:
		return nil, errors.New("the target names neither an issuer API nor a card")
	}
	if prep > 0 {
		if err := r.prepare(work, prep); err != nil {
			return nil, err
		}
	}
	sum := r.measure(ctx, work)
	sum.Card = r.card.Number.Masked()
	if unanswered := sum.Errors["transport"] + sum.Errors["timeout"]; sum.Requests > 0 && unanswered == sum.Requests {
		return sum, fmt.Errorf("the hub at %s answered none of the %d requests", strings.Join(r.hubs, ", "), sum.Requests)
	}
	r.resolve(work)
	if iss != nil && r.card.ID != "" {
		ledger, err := iss.Ledger(work, r.card.ID)
		if err != nil {
			return sum, err
		}
		rec := Reconcile(r.expectations(), ledger)
		sum.Reconciliation = &rec
	}
	return sum, nil
}

// prepare approves n orders before the run and settles them (the target's
// SettleURL), so that the run can refund them; an approval that fails is
// left out (resolve looks at it later).
func (r *runner) prepare(ctx context.Context, n int) error {
	var ok []*order
	for range n {
		o := r.newOrder(prepAmount)
		if a, _, _ := r.call(ctx, OpApprove, o, "lt-"+r.run+"-"+strconv.Itoa(o.n)+"-a", r.approveFields(o), o.n); r.approved(o, a) {
			ok = append(ok, o)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.t.SettleURL, nil)
	if err != nil {
		return err
	}
	res, err := r.hc.Do(req)
	if err != nil {
		return fmt.Errorf("settle before the run: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 1<<20))
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("settle before the run: %s answered HTTP %d", r.t.SettleURL, res.StatusCode)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, o := range ok {
		o.settled = true
		r.refundable = append(r.refundable, o)
		r.inquirable = append(r.inquirable, o)
	}
	return nil
}

// newOrder is the next order of the run, of the next merchant in turn.
func (r *runner) newOrder(amount int64) *order {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(r.orders) + 1
	prep := amount != 0
	if !prep {
		amount = approveBase + 10*int64(n%(approveSpan/10))
	}
	o := &order{id: fmt.Sprintf("LT-%s-%06d", r.run, n), n: n, merchant: (n - 1) % len(r.t.Merchants), amount: amount, prep: prep}
	r.orders = append(r.orders, o)
	return o
}

// measure runs the slots: a feeder hands them out as the pacer makes them
// due, the workers take them.
func (r *runner) measure(stop, work context.Context) *Summary {
	clock := r.o.Clock
	r.approvals.Store(0) // the run's, not those made to be refunded
	start := clock.Now()
	p := &pacer{clock: clock, start: start, rate: r.o.Rate, max: r.o.slots()}
	if r.o.Duration > 0 {
		p.end = start.Add(r.o.Duration)
	}
	slots := make(chan time.Time)
	go func() {
		defer close(slots)
		for {
			due, ok := p.next(stop)
			if !ok {
				return
			}
			select {
			case slots <- due:
			case <-stop.Done():
				return
			}
		}
	}()
	done := make(chan struct{})
	var printer sync.WaitGroup
	if r.o.Progress != nil {
		printer.Go(func() { r.progress(start, done) })
	}
	var wg sync.WaitGroup
	for range r.o.Concurrency {
		wg.Go(func() {
			for due := range slots {
				if due.IsZero() {
					due = clock.Now()
					if !p.end.IsZero() && !due.Before(p.end) {
						continue // the duration ran out while the slot waited
					}
				}
				r.one(work, due)
			}
		})
	}
	wg.Wait()
	close(done)
	printer.Wait() // no progress line after the summary
	return r.summarize(clock.Now().Sub(start), stop.Err() != nil)
}

// progress prints a line every ProgressEvery until done.
func (r *runner) progress(start time.Time, done <-chan struct{}) {
	tk := time.NewTicker(r.o.ProgressEvery)
	defer tk.Stop()
	total := strconv.Itoa(r.o.slots())
	if r.o.Requests == 0 {
		total = r.o.Duration.String()
	}
	for {
		select {
		case <-done:
			return
		case <-tk.C:
			el := r.o.Clock.Now().Sub(start).Seconds()
			n := r.finished.Load()
			fmt.Fprintf(r.o.Progress, "loadtest: %d/%s done in %.0fs, %.1f req/s, %.1f approvals/s, %d errors, %d in flight\n",
				n, total, el, float64(n)/el, float64(r.approvals.Load())/el, r.failed.Load(), r.inFlight.Load())
		}
	}
}

// one makes the request of a slot due at due, and records it. The n-th
// request of the run goes to the n-th hub in turn (Target.HubURLs).
func (r *runner) one(ctx context.Context, due time.Time) {
	n := int(r.issued.Add(1) - 1)
	r.inFlight.Add(1)
	defer r.inFlight.Add(-1)
	op, o := r.pick()
	var a answer
	var retries, hub int
	ok := false
	switch op {
	case OpApprove:
		a, retries, hub = r.call(ctx, op, o, "lt-"+r.run+"-"+strconv.Itoa(o.n)+"-a", r.approveFields(o), n)
		ok = r.approved(o, a)
	case OpCancel:
		a, retries, hub = r.call(ctx, op, o, "lt-"+r.run+"-"+strconv.Itoa(o.n)+"-c", map[string]string{fOrder: o.id}, n)
		ok = a.success() && a.resp.Fields[fResponseData] == "cancelled"
		r.mu.Lock()
		o.busy = false
		switch {
		case ok:
			o.cancel = acked
		case a.uncertain():
			o.cancel = unknown
		default:
			o.cancel = refused
		}
		r.mu.Unlock()
	case OpRefund:
		r.mu.Lock()
		o.refunds++
		key := "lt-" + r.run + "-" + strconv.Itoa(o.n) + "-r" + strconv.Itoa(o.refunds)
		r.mu.Unlock()
		a, retries, hub = r.call(ctx, op, o, key, map[string]string{fOrder: o.id, fAmount: strconv.Itoa(refundAmount), fCurrency: "KRW"}, n)
		ok = a.success()
		r.mu.Lock()
		o.busy = false
		switch {
		case ok:
			o.refunded += refundAmount
		case a.uncertain():
			o.maybeRefunded += refundAmount
		}
		if !a.refusal() && o.amount-o.refunded-o.maybeRefunded >= refundAmount {
			r.refundable = append(r.refundable, o)
		}
		r.mu.Unlock()
	case OpInquire:
		a, retries, hub = r.call(ctx, op, o, "", map[string]string{fOrder: o.id}, n)
		ok = a.success()
	}
	s := sample{op: op, latency: r.o.Clock.Now().Sub(due), ok: ok, retries: retries, hub: hub}
	if !ok {
		s.status = a.status()
		r.failed.Add(1)
	}
	r.mu.Lock()
	r.samples = append(r.samples, s)
	r.mu.Unlock()
	r.finished.Add(1)
}

// pick draws the next operation, and the order it acts on (a new one for
// an approval).
func (r *runner) pick() (string, *order) {
	r.mu.Lock()
	m := r.o.Mix
	w := r.rng.IntN(m.total())
	take := func(list *[]*order) *order {
		i := r.rng.IntN(len(*list))
		o := (*list)[i]
		(*list)[i] = (*list)[len(*list)-1]
		*list = (*list)[:len(*list)-1]
		o.busy = true
		return o
	}
	switch {
	case w < m.Approve:
	case w < m.Approve+m.Cancel:
		if len(r.cancellable) > 0 {
			o := take(&r.cancellable)
			r.mu.Unlock()
			return OpCancel, o
		}
	case w < m.Approve+m.Cancel+m.Refund:
		if len(r.refundable) > 0 {
			o := take(&r.refundable)
			r.mu.Unlock()
			return OpRefund, o
		}
	default:
		if len(r.inquirable) > 0 {
			o := r.inquirable[r.rng.IntN(len(r.inquirable))]
			r.mu.Unlock()
			return OpInquire, o
		}
	}
	r.mu.Unlock()
	return OpApprove, r.newOrder(0)
}

// approved records an approval's answer: whether it was acknowledged.
func (r *runner) approved(o *order, a answer) bool {
	ok := a.success() && a.resp.Fields[fApprovalCode] != ""
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case ok:
		o.approve, o.number = acked, a.resp.Fields[fApprovalCode]
		r.approvals.Add(1)
		r.inquirable = append(r.inquirable, o)
		if !o.prep {
			r.cancellable = append(r.cancellable, o)
		}
	case a.uncertain():
		o.approve = unknown
	default:
		o.approve = refused
	}
	return ok
}

// ECML flat fields the load test sends and reads (RFC 4112 names).
const (
	fOrder        = "Ecom_ConsumerOrderID"
	fAmount       = "Ecom_Transaction_Amount"
	fCurrency     = "Ecom_Transaction_CurrencyCode"
	fApprovalCode = "Ecom_Transaction_ApprovalCode"
	fResponseData = "Ecom_Transaction_ResponseData"
)

func (r *runner) approveFields(o *order) map[string]string {
	return map[string]string{
		fOrder: o.id, fAmount: strconv.FormatInt(o.amount, 10), fCurrency: "KRW", "Ecom_Transaction_Type": "credit",
		"Ecom_Payment_Card_Number":        r.card.Number.Reveal(),
		"Ecom_Payment_Card_ExpDate_Month": fmt.Sprintf("%02d", r.card.ExpMonth),
		"Ecom_Payment_Card_ExpDate_Year":  strconv.Itoa(r.card.ExpYear),
	}
}

// answer is what one attempt got.
type answer struct {
	code       int // HTTP status; 0 when none came
	resp       callapi.CallResponse
	problem    string // the hub's problem type, last segment
	err        error
	timeout    bool
	retryAfter time.Duration
}

func (a answer) success() bool {
	return a.err == nil && a.code == http.StatusOK && a.resp.Outcome == callapi.OutcomeAnswered && a.resp.Status == "Success"
}

// uncertain: the operation may have been carried out (no answer, pending,
// unavailable, in flight, rate limited, a server error).
func (a answer) uncertain() bool {
	return a.err != nil || a.code >= 500 || a.code == http.StatusAccepted || a.code == http.StatusConflict ||
		a.code == http.StatusTooManyRequests || a.resp.Outcome == callapi.OutcomePending || a.resp.Outcome == callapi.OutcomeUnavailable
}

// refusal: the provider or the hub said no (nothing was done).
func (a answer) refusal() bool { return !a.success() && !a.uncertain() }

// retry: worth sending again with the same key.
func (a answer) retry() bool {
	return a.err != nil || a.code == http.StatusServiceUnavailable || a.code == http.StatusConflict || a.code == http.StatusTooManyRequests
}

// status names the answer in the summary's errors: "timeout",
// "transport", or the HTTP status with the sub-status or problem.
func (a answer) status() string {
	switch {
	case a.timeout:
		return "timeout"
	case a.err != nil:
		return "transport"
	}
	s := strconv.Itoa(a.code)
	switch {
	case a.problem != "":
		s += " " + a.problem
	case a.resp.SubStatus != "":
		s += " " + a.resp.SubStatus
	case a.resp.Status != "" && a.resp.Status != "Success":
		s += " " + a.resp.Status
	case a.resp.Outcome != "" && a.resp.Outcome != callapi.OutcomeAnswered:
		s += " " + a.resp.Outcome
	}
	return s
}

// call sends op for o's merchant, again on an answer worth a retry, with
// the same key, up to Retries times; it returns the last answer, the
// number of retries and the hub the last attempt went to. The first
// attempt goes to hub first (modulo the hubs), each retry to the next
// one — as a load balancer moves a client off a replica that failed it.
func (r *runner) call(ctx context.Context, op string, o *order, key string, fields map[string]string, first int) (answer, int, int) {
	m := r.t.Merchants[o.merchant]
	body, _ := json.Marshal(callapi.CallRequest{Fields: fields})
	for n := 0; ; n++ {
		hub := (first + n) % len(r.hubs)
		r.attempts[hub].Add(1)
		a := r.attempt(ctx, r.hubs[hub], m, op, key, body)
		if !a.retry() || n >= r.o.Retries || ctx.Err() != nil {
			return a, n, hub
		}
		wait := time.Duration(n+1) * 100 * time.Millisecond
		if a.retryAfter > 0 {
			wait = min(a.retryAfter, 5*time.Second)
		}
		if r.o.Clock.SleepUntil(ctx, r.o.Clock.Now().Add(wait)) != nil {
			return a, n, hub
		}
	}
}

// maxAnswer bounds an answer's body.
const maxAnswer = 1 << 20

func (r *runner) attempt(ctx context.Context, hub string, m Merchant, op, key string, body []byte) answer {
	ctx, cancel := context.WithTimeout(ctx, r.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(hub, "/")+"/v1/card/"+op, bytes.NewReader(body))
	if err != nil {
		return answer{err: err}
	}
	req.Header.Set("Authorization", "Bearer "+m.APIKey)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	res, err := r.hc.Do(req)
	if err != nil {
		return answer{err: err, timeout: errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded)}
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, maxAnswer))
	if err != nil {
		return answer{err: err, timeout: errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded)}
	}
	a := answer{code: res.StatusCode}
	if s, err := strconv.Atoi(res.Header.Get("Retry-After")); err == nil && s > 0 {
		a.retryAfter = time.Duration(s) * time.Second
	}
	ct, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
		_ = json.Unmarshal(b, &a.resp)
	case "application/problem+json":
		var p struct {
			Type string `json:"type"`
		}
		_ = json.Unmarshal(b, &p)
		a.problem = p.Type[strings.LastIndex(p.Type, ":")+1:]
		if a.problem == "" {
			a.problem = "problem"
		}
	}
	return a
}

// resolve asks, by inquiry, what became of every approval whose outcome
// the run does not know: its approval number, if the issuer approved it.
func (r *runner) resolve(ctx context.Context) {
	r.mu.Lock()
	var todo []*order
	for _, o := range r.orders {
		if o.approve == unknown {
			todo = append(todo, o)
		}
	}
	r.mu.Unlock()
	for _, o := range todo {
		a, _, _ := r.call(ctx, OpInquire, o, "", map[string]string{fOrder: o.id}, o.n)
		r.mu.Lock()
		switch {
		case a.success() && a.resp.Fields[fApprovalCode] != "":
			o.number = a.resp.Fields[fApprovalCode]
		case a.refusal():
			o.approve = refused // nobody holds the order
		}
		r.mu.Unlock()
	}
}

// expectations are what the run knows of its orders, for Reconcile.
func (r *runner) expectations() []Expectation {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Expectation
	for _, o := range r.orders {
		if o.approve == refused || o.approve == none {
			continue
		}
		out = append(out, Expectation{
			Order: o.id, Amount: o.amount, Acknowledged: o.approve == acked, Number: o.number,
			CancelAcknowledged: o.cancel == acked, CancelAttempted: o.cancel == acked || o.cancel == unknown,
			Refunded: o.refunded, MaybeRefunded: o.maybeRefunded,
		})
	}
	return out
}

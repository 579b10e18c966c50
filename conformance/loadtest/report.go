package loadtest

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
)

// Summary is the outcome of a run, the JSON of --json.
type Summary struct {
	RunID       string  `json:"run_id"`
	Concurrency int     `json:"concurrency"`
	OfferedRate float64 `json:"offered_rate"` // requests/s; 0: as fast as possible
	Mix         string  `json:"mix"`
	// Requests made in the measured run (retries not counted), over
	// DurationS seconds, from the first slot to the last answer.
	Requests     int     `json:"requests"`
	DurationS    float64 `json:"duration_s"`
	RequestsPerS float64 `json:"requests_per_s"`
	// Approvals the hub acknowledged (Success) in the run, per second.
	Approvals     int     `json:"approvals"`
	ApprovalsPerS float64 `json:"approvals_per_s"`
	// Latency of the approvals, from the time each was due (at a fixed
	// rate) or sent, to its last answer, retries included: percentiles
	// by nearest rank over every approval of the run.
	P50MS float64 `json:"p50_ms"`
	P95MS float64 `json:"p95_ms"`
	P99MS float64 `json:"p99_ms"`
	MaxMS float64 `json:"max_ms"`
	// Operations: each operation's count and latency.
	Operations map[string]OpStats `json:"operations"`
	// Errors counts the requests that did not get the answer they wanted,
	// by status: the HTTP status and the sub-status or problem ("503
	// ProviderUnavailable", "422 PolicyViolation"), "timeout" or
	// "transport".
	Errors  map[string]int `json:"errors"`
	Retries int            `json:"retries"`
	// Card is the card the run paid with, masked.
	Card string `json:"card"`
	// Reconciliation against the issuer's ledger; null when the target has
	// no issuer API.
	Reconciliation *Reconciliation `json:"reconciliation"`
	// Interrupted: the run was stopped before its end (what was done is
	// reported and reconciled).
	Interrupted bool `json:"interrupted,omitempty"`
	// Targets are the run's figures by hub (one per --target URL, or the
	// one hub), in the order given: the requests went to them in turn.
	Targets []TargetStats `json:"targets,omitempty"`
}

// TargetStats are one hub's share of a run. A request counts at the hub
// its last attempt went to (a retry goes to the next hub).
type TargetStats struct {
	URL string `json:"url"`
	// Attempts sent to it, retries included.
	Attempts int `json:"attempts"`
	// Requests whose last attempt it took; OK those it answered as wanted,
	// Errors the others.
	Requests int `json:"requests"`
	OK       int `json:"ok"`
	Errors   int `json:"errors"`
	// Approvals it acknowledged, per second of the run.
	Approvals     int     `json:"approvals"`
	ApprovalsPerS float64 `json:"approvals_per_s"`
}

// OpStats are one operation's figures.
type OpStats struct {
	Count int     `json:"count"`
	OK    int     `json:"ok"`
	P50MS float64 `json:"p50_ms"`
	P95MS float64 `json:"p95_ms"`
	P99MS float64 `json:"p99_ms"`
	MaxMS float64 `json:"max_ms"`
}

// Percentile is the nearest-rank p-th percentile (0 < p ≤ 100) of sorted
// values, 0 of none.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// ms is d in milliseconds, to the hundredth.
func ms(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Millisecond)*100) / 100 }

// rate is n per second of d.
func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return math.Round(float64(n)/d.Seconds()*100) / 100
}

// summarize makes the summary of the samples measured over elapsed.
func (r *runner) summarize(elapsed time.Duration, interrupted bool) *Summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := &Summary{RunID: r.run, Concurrency: r.o.Concurrency, OfferedRate: r.o.Rate, Mix: r.o.Mix.String(),
		Requests: len(r.samples), DurationS: math.Round(elapsed.Seconds()*1000) / 1000, RequestsPerS: rate(len(r.samples), elapsed),
		Operations: map[string]OpStats{}, Errors: map[string]int{}, Interrupted: interrupted}
	lat := map[string][]time.Duration{}
	for _, x := range r.samples {
		lat[x.op] = append(lat[x.op], x.latency)
		st := s.Operations[x.op]
		st.Count++
		if x.ok {
			st.OK++
		} else {
			s.Errors[x.status]++
		}
		s.Operations[x.op] = st
		s.Retries += x.retries
	}
	for op, l := range lat {
		slices.Sort(l)
		st := s.Operations[op]
		st.P50MS, st.P95MS, st.P99MS, st.MaxMS = ms(Percentile(l, 50)), ms(Percentile(l, 95)), ms(Percentile(l, 99)), ms(l[len(l)-1])
		s.Operations[op] = st
	}
	s.Targets = make([]TargetStats, len(r.hubs))
	for i, h := range r.hubs {
		s.Targets[i] = TargetStats{URL: h, Attempts: int(r.attempts[i].Load())}
	}
	for _, x := range r.samples {
		ts := &s.Targets[x.hub]
		ts.Requests++
		if !x.ok {
			ts.Errors++
			continue
		}
		ts.OK++
		if x.op == OpApprove {
			ts.Approvals++
		}
	}
	for i := range s.Targets {
		s.Targets[i].ApprovalsPerS = rate(s.Targets[i].Approvals, elapsed)
	}
	a := s.Operations[OpApprove]
	s.Approvals, s.ApprovalsPerS = a.OK, rate(a.OK, elapsed)
	s.P50MS, s.P95MS, s.P99MS, s.MaxMS = a.P50MS, a.P95MS, a.P99MS, a.MaxMS
	return s
}

// Clean reports whether the reconciliation found nothing lost or doubled
// (true when there was none).
func (s *Summary) Clean() bool {
	return s.Reconciliation == nil || s.Reconciliation.Lost == 0 && s.Reconciliation.Doubled == 0
}

// WriteText writes the summary for people.
func (s *Summary) WriteText(w io.Writer) {
	offered := "as fast as possible"
	if s.OfferedRate > 0 {
		offered = fmt.Sprintf("offered %g/s", s.OfferedRate)
	}
	fmt.Fprintf(w, "run %s: %d requests in %.1f s (%.1f/s), concurrency %d, %s, mix %s\n",
		s.RunID, s.Requests, s.DurationS, s.RequestsPerS, s.Concurrency, offered, s.Mix)
	if s.Interrupted {
		fmt.Fprintln(w, "interrupted: what was done is reported")
	}
	fmt.Fprintf(w, "approvals  %d acknowledged, %.1f/s; latency p50 %.1f ms, p95 %.1f ms, p99 %.1f ms, max %.1f ms\n",
		s.Approvals, s.ApprovalsPerS, s.P50MS, s.P95MS, s.P99MS, s.MaxMS)
	for _, op := range []string{OpApprove, OpCancel, OpRefund, OpInquire} {
		if st, ok := s.Operations[op]; ok {
			fmt.Fprintf(w, "  %-8s %6d sent, %6d ok; p50 %.1f ms, p95 %.1f ms, p99 %.1f ms\n", op, st.Count, st.OK, st.P50MS, st.P95MS, st.P99MS)
		}
	}
	if len(s.Targets) > 1 {
		for _, t := range s.Targets {
			fmt.Fprintf(w, "  hub %s: %d requests (%d attempts), %d ok, %d errors; %d approvals, %.1f/s\n",
				t.URL, t.Requests, t.Attempts, t.OK, t.Errors, t.Approvals, t.ApprovalsPerS)
		}
	}
	if len(s.Errors) == 0 {
		fmt.Fprintf(w, "errors     none (%d retries)\n", s.Retries)
	} else {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(s.Errors)) {
			parts = append(parts, fmt.Sprintf("%s: %d", k, s.Errors[k]))
		}
		fmt.Fprintf(w, "errors     %s (%d retries)\n", strings.Join(parts, ", "), s.Retries)
	}
	rc := s.Reconciliation
	if rc == nil {
		fmt.Fprintf(w, "ledger     not reconciled: the target names no issuer API (card %s)\n", s.Card)
		return
	}
	verdict := "clean"
	if !s.Clean() {
		verdict = "FAILED"
	}
	fmt.Fprintf(w, "ledger     %s: %d acknowledged, %d in the issuer's ledger, %d lost, %d doubled; %d cancels acknowledged, %d reversed; refunds %d KRW acknowledged, %d in the ledger (card %s, %d ledger entries",
		verdict, rc.Acknowledged, rc.InLedger, rc.Lost, rc.Doubled, rc.CancelsAcknowledged, rc.Reversed, rc.RefundedAcknowledged, rc.RefundedInLedger, s.Card, rc.LedgerEntries)
	if rc.Resolved > 0 || rc.Unresolved > 0 {
		fmt.Fprintf(w, "; %d unanswered approvals found by inquiry, %d still unknown", rc.Resolved, rc.Unresolved)
	}
	fmt.Fprintln(w, ")")
	for _, p := range rc.Problems {
		fmt.Fprintln(w, "  -", p)
	}
}

// Expectation is what a run knows of one of its orders.
type Expectation struct {
	Order  string
	Amount int64
	// Acknowledged: the hub answered Success to the approval. Number is
	// its approval number, or the one an inquiry found for an approval
	// that got no answer; "" when nobody knows.
	Acknowledged bool
	Number       string
	// CancelAcknowledged: a cancel was answered cancelled; CancelAttempted:
	// a cancel was acknowledged or got no answer.
	CancelAcknowledged, CancelAttempted bool
	// Refunded is what acknowledged refunds returned, MaybeRefunded what
	// refunds that got no answer may have.
	Refunded, MaybeRefunded int64
}

// Reconciliation compares a run with the issuer's ledger of its card.
type Reconciliation struct {
	// Acknowledged approvals; those InLedger are in the issuer's ledger
	// once, with their amount.
	Acknowledged int `json:"acknowledged"`
	InLedger     int `json:"in_ledger"`
	// Lost counts what the hub acknowledged that the ledger lacks: an
	// approval, a cancel (the approval not reversed), a refund; and a
	// reversal nobody asked for.
	Lost int `json:"lost"`
	// Doubled counts what the ledger holds more than the run asked for: an
	// approval no order of the run accounts for, refunds above those sent.
	Doubled int `json:"doubled"`
	// Resolved: approvals that got no answer and that an inquiry found
	// approved; Unresolved: approvals whose outcome is still unknown (a
	// ledger entry of their amount counts as theirs, not as doubled).
	Resolved   int `json:"resolved_by_inquiry"`
	Unresolved int `json:"unresolved"`
	// Cancels acknowledged, and approvals the ledger shows reversed.
	CancelsAcknowledged int `json:"cancels_acknowledged"`
	Reversed            int `json:"reversed"`
	// Refunded amounts (KRW): acknowledged, and in the ledger.
	RefundedAcknowledged int64 `json:"refunded_acknowledged"`
	RefundedInLedger     int64 `json:"refunded_in_ledger"`
	// LedgerEntries is the number of approvals on the card.
	LedgerEntries int `json:"ledger_entries"`
	// Problems says what was lost or doubled, the first maxProblems
	// (orders and approval numbers; never card data).
	Problems []string `json:"problems,omitempty"`
}

// maxProblems bounds Reconciliation.Problems.
const maxProblems = 20

// Reconcile checks what a run knows of its orders against the issuer's
// ledger of the card it paid with (every approval on that card is the
// run's).
func Reconcile(exp []Expectation, ledger []LedgerEntry) Reconciliation {
	rc := Reconciliation{LedgerEntries: len(ledger)}
	problem := func(format string, args ...any) {
		if len(rc.Problems) < maxProblems {
			rc.Problems = append(rc.Problems, fmt.Sprintf(format, args...))
		}
	}
	byNumber := map[string]*LedgerEntry{}
	for i := range ledger {
		e := &ledger[i]
		if byNumber[e.Number] != nil {
			rc.Doubled++
			problem("approval %s is in the ledger twice", e.Number)
			continue
		}
		byNumber[e.Number] = e
	}
	claimed := map[string]string{} // approval number → order
	unresolved := map[int64]int{}  // amount → unresolved orders
	for _, x := range exp {
		if x.Acknowledged {
			rc.Acknowledged++
		}
		if x.Number == "" {
			rc.Unresolved++
			unresolved[x.Amount]++
			continue
		}
		if !x.Acknowledged {
			rc.Resolved++
		}
		if other, ok := claimed[x.Number]; ok {
			rc.Lost++
			problem("orders %s and %s were both answered with approval %s: one of them is not in the ledger", other, x.Order, x.Number)
			continue
		}
		claimed[x.Number] = x.Order
		e := byNumber[x.Number]
		if e == nil || e.Amount != x.Amount {
			rc.Lost++
			problem("order %s: approval %s of %d KRW is not in the issuer's ledger", x.Order, x.Number, x.Amount)
			continue
		}
		if x.Acknowledged {
			rc.InLedger++
		}
		reversed := e.Status == ledgerCancelled
		if reversed {
			rc.Reversed++
		}
		switch {
		case x.CancelAcknowledged:
			rc.CancelsAcknowledged++
			if !reversed {
				rc.Lost++
				problem("order %s: the cancel was acknowledged, the ledger shows approval %s %s", x.Order, x.Number, e.Status)
			}
		case reversed && !x.CancelAttempted:
			rc.Lost++
			problem("order %s: the ledger shows approval %s cancelled, no cancel was sent", x.Order, x.Number)
		}
		rc.RefundedAcknowledged += x.Refunded
		rc.RefundedInLedger += e.Refunded
		switch {
		case e.Refunded < x.Refunded:
			rc.Lost++
			problem("order %s: refunds of %d KRW acknowledged, the ledger shows %d refunded", x.Order, x.Refunded, e.Refunded)
		case e.Refunded > x.Refunded+x.MaybeRefunded:
			rc.Doubled++
			problem("order %s: refunds of %d KRW sent, the ledger shows %d refunded", x.Order, x.Refunded+x.MaybeRefunded, e.Refunded)
		}
	}
	var extra []*LedgerEntry
	for i := range ledger {
		e := &ledger[i]
		if _, ok := claimed[e.Number]; !ok && byNumber[e.Number] == e {
			extra = append(extra, e)
		}
	}
	sort.Slice(extra, func(i, j int) bool { return extra[i].Number < extra[j].Number })
	for _, e := range extra {
		if unresolved[e.Amount] > 0 {
			unresolved[e.Amount]-- // an approval nobody knows the outcome of
			continue
		}
		rc.Doubled++
		problem("the ledger holds approval %s of %d KRW (%s) that no order of the run accounts for", e.Number, e.Amount, e.Status)
	}
	return rc
}

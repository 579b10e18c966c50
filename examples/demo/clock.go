package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/kecis/kecis/examples/issuer"
)

// Clock is the demo issuer's business clock: a base clock (the wall
// clock, or Config.IssuerNow in tests) plus the time the operator skipped
// with Demo.Settle. It only moves forward, and the time skipped is kept in
// the demo's directory (issuer/clock-offset), so that a restarted demo
// goes on from the time it reached: approvals stamped in the skipped-to
// day do not fall back before their cut-off.
//
// Why a clock rather than a "settle now" that ignores the cut-off: the
// issuer's rule stays the one a card company applies — an approval can be
// cancelled until the settlement cut-off after it, and refunded once
// settled — and nothing at the issuer knows it runs in a demo; the demo
// makes the cut-off come sooner, as Stripe's test clocks make a
// subscription's month pass. The issuer's texts and admin page show its
// business time, ahead of the wall clock by what was skipped. Besides the
// issuer's business, bank A's escrow deadlines run on it (automatic
// confirmation, unpaid orders' expiry: escrow.go). Within the issuer, only
// its business runs on it: its cardholder authentication (TOTP
// codes, client certificates, AAVs, virtual numbers: issuer.Config.AuthNow)
// and the hub's and the participants' message times (which the hub checks
// for freshness) stay on the wall clock, and the PG has no settlement of
// its own (it learns the issuer's states by inquiry).
type Clock struct {
	mu     sync.Mutex
	base   func() time.Time
	offset time.Duration
	file   string
}

// openClock is the clock over base whose skipped time is kept in file.
func openClock(base func() time.Time, file string) (*Clock, error) {
	if base == nil {
		base = time.Now
	}
	c := &Clock{base: base, file: file}
	b, err := os.ReadFile(file)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, err
	default:
		if c.offset, err = time.ParseDuration(strings.TrimSpace(string(b))); err != nil || c.offset < 0 {
			return nil, fmt.Errorf("%s: not a duration ≥ 0: %q", file, strings.TrimSpace(string(b)))
		}
	}
	return c, nil
}

// Now is the business time: the base clock plus the time skipped.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.base().Add(c.offset)
}

// Skipped is the time skipped so far.
func (c *Clock) Skipped() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.offset
}

// advanceTo moves the clock forward to t (never back) and keeps the time
// skipped; it returns how far it moved.
func (c *Clock) advanceTo(t time.Time) (time.Duration, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := t.Sub(c.base().Add(c.offset))
	if d <= 0 {
		return 0, nil
	}
	if err := os.WriteFile(c.file, []byte((c.offset+d).String()+"\n"), 0o600); err != nil {
		return 0, err
	}
	c.offset += d
	return d, nil
}

// Settlement is what Settle did: the issuer's business time after it, how
// far its clock moved, and the settlement batch (empty when nothing was
// due).
type Settlement struct {
	IssuerTime time.Time        `json:"issuer_time"`
	Skipped    string           `json:"skipped"`
	BatchID    string           `json:"batch_id"`
	Settled    int              `json:"settled"`
	Totals     map[string]int64 `json:"totals"`
}

// Settle ends the issuer's business day: its clock moves to the next
// settlement cut-off (nothing at the issuer can happen in the time
// skipped) and the issuer's settlement job runs at that instant, so that
// every approval made so far is settled — refundable, no longer
// cancellable — as it would be after 23:00 KST. The demo's admin endpoint
// POST /demo/settle (demo.json settle_url) and `kecis-demo --settle` call
// it.
func (d *Demo) Settle(ctx context.Context) (*Settlement, error) {
	d.settleMu.Lock()
	defer d.settleMu.Unlock()
	cut := d.Issuer.CutOffAfter(d.Clock.Now())
	skipped, err := d.Clock.advanceTo(cut)
	if err != nil {
		return nil, err
	}
	s, err := d.Issuer.Settle(ctx, d.Clock.Now())
	if err != nil {
		return nil, err
	}
	d.cfg.Log.InfoContext(ctx, "demo: the issuer's business day ended", "skipped", skipped, "issuer_time", cut,
		"batch", s.BatchID, "settled", s.Count)
	return &Settlement{IssuerTime: cut.In(issuer.KST), Skipped: skipped.String(), BatchID: s.BatchID, Settled: s.Count,
		Totals: s.Totals}, nil
}

// SettlePath is the demo's admin endpoint that runs Settle, served beside
// the issuer's own API (demo.json settle_url).
const SettlePath = "/demo/settle"

// withAdmin serves the demo's admin endpoints in front of the issuer's
// own API: POST /demo/settle runs Settle and answers the Settlement;
// GET /demo/clock tells the issuer's business time.
func (d *Demo) withAdmin(issuerAPI http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", issuerAPI)
	mux.HandleFunc("POST "+SettlePath, func(w http.ResponseWriter, r *http.Request) {
		s, err := d.Settle(r.Context())
		if err != nil {
			d.cfg.Log.ErrorContext(r.Context(), "demo: settle", "err", err)
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "settlement failed; see demo.log"})
			return
		}
		writeJSON(w, http.StatusOK, s)
	})
	mux.HandleFunc("GET /demo/clock", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"issuer_time": d.Clock.Now().In(issuer.KST).Format(time.RFC3339),
			"skipped": d.Clock.Skipped().String()})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

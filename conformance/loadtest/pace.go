package loadtest

import (
	"context"
	"time"
)

// Clock is the time a load test paces and measures by; tests inject one.
type Clock interface {
	Now() time.Time
	// SleepUntil returns at t (at once when t has passed), or with
	// ctx.Err() when ctx ends first.
	SleepUntil(ctx context.Context, t time.Time) error
}

// WallClock is the real clock.
type WallClock struct{}

// Now implements Clock.
func (WallClock) Now() time.Time { return time.Now() }

// SleepUntil implements Clock.
func (WallClock) SleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}

// pacer hands out a run's request slots, at most max of them, none due at
// or after end (when set). At a fixed rate slot n is due at
// start + n/rate whenever it is handed out: a slot handed out late (every
// worker was busy) keeps the time it was due, and its latency counts from
// then — the queue the hub made is measured, not hidden (coordinated
// omission). Without a rate a slot is due when a worker takes it.
type pacer struct {
	clock      Clock
	start, end time.Time
	rate       float64 // requests per second; 0: as fast as the workers go
	max, n     int
}

// due is when slot n is due at the pacer's rate.
func (p *pacer) due(n int) time.Time {
	return p.start.Add(time.Duration(float64(n) * float64(time.Second) / p.rate))
}

// next waits until the next slot is due and returns the time it was due
// (zero without a rate: the worker that takes it reads the clock), or
// false when the run has no more slots or ctx ended.
func (p *pacer) next(ctx context.Context) (time.Time, bool) {
	if p.n >= p.max || ctx.Err() != nil {
		return time.Time{}, false
	}
	if p.rate <= 0 {
		if !p.end.IsZero() && !p.clock.Now().Before(p.end) {
			return time.Time{}, false
		}
		p.n++
		return time.Time{}, true
	}
	due := p.due(p.n)
	if !p.end.IsZero() && !due.Before(p.end) {
		return time.Time{}, false
	}
	if err := p.clock.SleepUntil(ctx, due); err != nil {
		return time.Time{}, false
	}
	p.n++
	return due, true
}

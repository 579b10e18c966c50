package sqlstore

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// IsRetryable reports whether err is a transient conflict after which the
// same transaction, run again, may succeed: SQLITE_BUSY or SQLITE_LOCKED
// (busy_timeout ran out, or a deferred transaction could not upgrade its
// lock), or a PostgreSQL serialization failure or deadlock. Each
// registered driver recognises its own errors (Driver.Retryable).
func IsRetryable(err error) bool {
	if err == nil {
		return false
	}
	for _, d := range registered() {
		if d.Retryable(err) {
			return true
		}
	}
	return false
}

// IsUniqueViolation reports whether err is a unique or primary-key
// constraint violation of a registered driver.
func IsUniqueViolation(err error) bool {
	if err == nil {
		return false
	}
	for _, d := range registered() {
		if d.UniqueViolation(err) {
			return true
		}
	}
	return false
}

// MaxAttempts is how many times Retry runs a function that keeps failing
// with a retryable error.
const MaxAttempts = 8

// Retry runs fn until it succeeds, fails with an error that IsRetryable
// does not accept, MaxAttempts runs failed, or ctx ends. Between runs it
// waits with jittered exponential backoff (5 ms doubling, at most 250 ms).
// Use it for single statements and whole transactions, never for part of
// one: after SQLITE_BUSY or a PostgreSQL serialization failure the
// transaction is over.
func Retry(ctx context.Context, fn func() error) error {
	backoff := 5 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || !IsRetryable(err) || attempt >= MaxAttempts {
			return err
		}
		wait := backoff/2 + rand.N(backoff) // jitter: [backoff/2, 1.5·backoff)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, ctx.Err())
		case <-t.C:
		}
		backoff = min(2*backoff, 250*time.Millisecond)
	}
}

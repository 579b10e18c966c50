package sqlstore

import (
	"context"
	"database/sql/driver"
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

// IsConnLost reports whether err says the database ended the connection
// or that it broke (PostgreSQL's admin_shutdown, crash_shutdown,
// cannot_connect_now, a connection exception, the connection closed under
// the driver): a transaction it carried and had not committed is rolled
// back, and may run again on a new connection (WriteTx does so once).
func IsConnLost(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, driver.ErrBadConn) {
		return true
	}
	for _, d := range registered() {
		if d.ConnLost != nil && d.ConnLost(err) {
			return true
		}
	}
	return false
}

// ErrCommitUnknown is returned (wrapped, with the driver's error) when the
// connection ended after COMMIT was sent: the transaction may or may not
// have committed. It is never retried; the caller treats the outcome as
// unknown.
var ErrCommitUnknown = errors.New("sqlstore: the connection ended after COMMIT was sent; whether the transaction committed is unknown")

// IsUnavailable reports whether err says the database cannot take the
// work for now though the work itself is fine: it is unreachable, ended
// the connection (IsConnLost), refuses writes (PostgreSQL read-only, a
// read-only SQLite file), is full, or a commit's outcome is unknown
// (ErrCommitUnknown). The caller should answer "try again later", not
// "internal error".
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var u interface{ Unavailable() bool }
	if errors.As(err, &u) && u.Unavailable() {
		return true
	}
	if errors.Is(err, ErrCommitUnknown) || IsConnLost(err) {
		return true
	}
	for _, d := range registered() {
		if d.Unavailable != nil && d.Unavailable(err) {
			return true
		}
	}
	return false
}

// UnavailableError marks an error IsUnavailable accepts, so that a layer
// above that does not import this package recognises it by its method
// Unavailable (federation/store.IsUnavailable). Retry, and so WriteTx and
// ReadTx, return their errors marked so.
type UnavailableError struct{ Err error }

func (e *UnavailableError) Error() string { return e.Err.Error() }
func (e *UnavailableError) Unwrap() error { return e.Err }

// Unavailable reports true: the database cannot take the work for now.
func (e *UnavailableError) Unavailable() bool { return true }

// markUnavailable wraps err in an UnavailableError when IsUnavailable
// accepts it and it is not marked yet.
func markUnavailable(err error) error {
	var u *UnavailableError
	if err == nil || errors.As(err, &u) || !IsUnavailable(err) {
		return err
	}
	return &UnavailableError{Err: err}
}

// RetryRead is Retry for an fn that only reads, outside a transaction: it
// also runs fn once more when the database ended the connection
// (IsConnLost), as WriteTx does for a transaction — a pooled connection
// that a restart or pg_terminate_backend closed fails its next statement.
// Never use it for a statement that writes: one whose connection ended
// may have committed.
func RetryRead(ctx context.Context, fn func() error) error {
	reconnected := false
	return Retry(ctx, func() error {
		for {
			err := fn()
			if err == nil || reconnected || !IsConnLost(err) || ctx.Err() != nil {
				return err
			}
			reconnected = true
		}
	})
}

// MaxAttempts is how many times Retry runs a function that keeps failing
// with a retryable error.
const MaxAttempts = 8

// Retry runs fn until it succeeds, fails with an error that IsRetryable
// does not accept, MaxAttempts runs failed, or ctx ends. Between runs it
// waits with jittered exponential backoff (5 ms doubling, at most 250 ms).
// Use it for single statements and whole transactions, never for part of
// one: after SQLITE_BUSY or a PostgreSQL serialization failure the
// transaction is over. An error that IsUnavailable accepts is returned
// as an UnavailableError.
func Retry(ctx context.Context, fn func() error) error {
	backoff := 5 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || !IsRetryable(err) || attempt >= MaxAttempts {
			return markUnavailable(err)
		}
		wait := backoff/2 + rand.N(backoff) // jitter: [backoff/2, 1.5·backoff)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return markUnavailable(errors.Join(err, ctx.Err()))
		case <-t.C:
		}
		backoff = min(2*backoff, 250*time.Millisecond)
	}
}

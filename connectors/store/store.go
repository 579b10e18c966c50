// Package store is what the SDK needs of the provider adapter's own state
// (KECIS §7.1, §13.3): the replay cache, the idempotency records that make
// the adapter the idempotency authority, and the owners of the provider's
// objects. It is an interface and its vocabulary only, so that the SDK
// (package connectors) links no database: the program that embeds the SDK
// chooses an implementation —
//
//   - connectors/store/sqlitestore: SQLite (modernc.org/sqlite), a file
//     next to the provider;
//   - connectors/store/pgstore: PostgreSQL (pgx), shared by replicas;
//
// both built on connectors/store/storesql, the one SQL implementation,
// and both run the conformance suite in connectors/store/conformance.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/kecis/kecis/saml"
)

// Store is the adapter's state as the Handler uses it. Implementations
// are safe for concurrent use, and two Stores on one database (two
// replicas of an adapter) never both win a replay, a key or an object.
// Every time comes from the caller: a Store never reads the clock.
type Store interface {
	// Replay returns the replay cache on the clock now.
	Replay(now func() time.Time) saml.ReplayCache
	// BeginObjects takes the key for a new attempt and says what it found,
	// in the vocabulary the hub's guard speaks too (saml.IdemResult,
	// KECIS §7.1): IdemAcquired for a new key and IdemReacquired for one
	// whose attempt crashed (its lease ran out) — the caller holds the key
	// and runs the service; IdemDone with the stored outcome when the key
	// finished with the same fingerprint; IdemInFlight while another
	// attempt holds an unexpired lease; IdemMismatch when the key was used
	// with another fingerprint. The error is for failures only. When it
	// takes the key it also checks and claims obj in the same transaction,
	// and a refusal (ErrNotFound) leaves the key untaken. A finished key
	// answers its outcome without looking at obj: its scope already holds
	// the owner.
	BeginObjects(ctx context.Context, scope, key string, fingerprint []byte, lease time.Duration, now time.Time, obj Objects) (saml.IdemResult, *Outcome, error)
	// BeginRemembered is BeginObjects for a request that arrived with
	// the message IDs in seen (the replay check of KECIS §7.2, which the
	// Handler's Receiver only collects): they are recorded in the
	// transaction that takes the key, so that a request costs one commit
	// before the provider's function runs instead of two. An ID already
	// recorded and not expired refuses the request with
	// saml.ErrAlreadySeen and writes nothing, so that of two replicas
	// receiving one message exactly one goes on. The IDs are recorded with
	// IdemAcquired, IdemReacquired and IdemDone (a retry answered from
	// its stored outcome); a refusal (IdemInFlight, IdemMismatch,
	// ErrNotFound) records nothing, and the Handler records them on their
	// own (Replay), so that a replay of the refused message is refused as
	// one.
	BeginRemembered(ctx context.Context, seen []ReplayEntry, scope, key string, fingerprint []byte, lease time.Duration, now time.Time, obj Objects) (saml.IdemResult, *Outcome, error)
	// FinishObjects records the outcome of the attempt that holds the key;
	// obj (the objects the outcome reveals, such as the approval number a
	// card:approve created) is checked and claimed in the same
	// transaction. On ErrNotFound nothing is written.
	FinishObjects(ctx context.Context, scope, key string, o *Outcome, obj Objects, now time.Time) error
	// Abandon releases a key whose attempt failed without an outcome (a
	// crash of the provider's function): the next retry runs it again. A
	// finished key is never released.
	Abandon(ctx context.Context, scope, key string, now time.Time) error
	// Objects decides o outside an idempotency key (a request without
	// one, such as an inquire): ErrNotFound when a checked object is not
	// the owner's or a claimed one is another's.
	Objects(ctx context.Context, o Objects, now time.Time) error
}

// ReplayEntry is a message ID as the replay cache keeps it: its issuer,
// its ID, and until when a message with it could be accepted.
type ReplayEntry struct {
	Issuer, ID string
	Expires    time.Time
}

// Outcome is what the adapter answered for a key: re-signed for every
// retry. Implementations seal it at rest.
type Outcome struct {
	Status  saml.Status
	Payload []byte // the kecis:Payload children as XML, before encryption for the requester
}

// ErrNotFound refuses a request that names an object that is unknown or
// another owner's. The two are one error on purpose: a caller must not
// learn that another's object exists (KECIS §13.3); the wrapped text, for
// the log, tells which.
var ErrNotFound = errors.New("adapter store: no such object for this owner")

// ErrNoOwner refuses objects without an owner: an owner that is not
// recorded must never match an object that is not either.
var ErrNoOwner = errors.New("adapter store: objects without an owner")

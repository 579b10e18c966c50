// Package store is the hub's one durable state: participants and their
// metadata, keys, endpoints and services; the replay cache; idempotency
// entries with leases; the audit log; routing rules; metadata snapshots.
// Backends: SQLite (modernc.org/sqlite, the embedded default) and
// PostgreSQL (pgx), so that several hub replicas can share one database.
// Every backend runs the conformance suite in federation/store/conformance.
//
// Correctness under concurrency is the database's job: replay and
// idempotency are enforced with unique constraints and transactions, never
// with an in-process lock, so that two replicas cannot both win.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/kecis/kecis/saml"
)

// Shared errors every backend returns (the conformance suite checks them).
var (
	ErrNotFound = errors.New("store: not found")
	// ErrExists: a participant, rule or snapshot with that key exists.
	ErrExists = errors.New("store: already exists")
	// ErrAlreadySeen: the (issuer, message ID) pair is in the replay cache.
	ErrAlreadySeen = errors.New("store: message ID already seen")
	// ErrConflict: an optimistic update lost (the version changed).
	ErrConflict = errors.New("store: concurrent update")
)

// IsUnavailable reports whether err says the database cannot take the work
// for now though the work itself is fine — unreachable, its connection
// ended, refusing writes (read-only, full), or a commit whose outcome is
// unknown — so that the hub answers "temporarily unavailable, retry" and
// not an internal error (KECIS §12.8). A backend marks such errors with a
// method Unavailable() bool returning true (connectors/sqlstore's
// UnavailableError).
func IsUnavailable(err error) bool {
	var u interface{ Unavailable() bool }
	return errors.As(err, &u) && u.Unavailable()
}

// Status is a participant's lifecycle state: pending → active →
// suspended → removed, with an operator approving the step to active.
type Status string

const (
	StatusPending   Status = "pending"
	StatusActive    Status = "active"
	StatusSuspended Status = "suspended"
	StatusRemoved   Status = "removed"
)

// Role of a participant.
type Role string

const (
	RoleMerchant Role = "merchant"
	RolePG       Role = "pg"
	RoleIssuer   Role = "issuer"
	RoleBank     Role = "bank"
	RoleTelecom  Role = "telecom"
	RoleTester   Role = "tester"
)

// Participant is one registered entity.
type Participant struct {
	EntityID    string
	DisplayName string
	Roles       []Role
	Status      Status
	// Metadata is the participant's md:EntityDescriptor as registered
	// (exact bytes); Keys, Endpoints and Services are derived from it.
	Metadata  []byte
	Keys      []Key
	Endpoints []Endpoint
	Services  []Service
	// Pending is a change of the metadata that awaits an operator's
	// decision (KECIS §13.6); nil when none does. Everything above is the
	// active version, the one the hub publishes and routes by.
	Pending *PendingVersion
	// Version increases with every change; updates compare it.
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// PendingVersion is a participant's metadata change that widens or alters
// what it is trusted with (roles, offered services and their terms): the
// md:EntityDescriptor exactly as submitted, and when. It takes effect only
// when an operator approves it (KECIS §13.6, §12.6).
type PendingVersion struct {
	Metadata    []byte
	RequestedAt time.Time
}

// KeyUse says what a certificate is for.
type KeyUse string

const (
	KeySigning    KeyUse = "signing"
	KeyEncryption KeyUse = "encryption"
	KeyTLSClient  KeyUse = "tls-client"
	KeyTLSServer  KeyUse = "tls-server"
)

// Key is one certificate of a participant (several per use during a rollover).
type Key struct {
	Use         KeyUse
	CertDER     []byte
	Fingerprint string // SHA-256, lower-case hex
	NotAfter    time.Time
}

// Endpoint is where a participant receives one service over one binding.
type Endpoint struct {
	Service  string // service URI, or "*" for every service offered
	Binding  string // SAML binding URI
	URL      string
	Priority int // lower first; failover moves only between one participant's endpoints
}

// Service is an offered service with its limits.
type Service struct {
	Service    string   // service URI
	Currencies []string // ISO 4217; empty: any
	MinAmount  int64    // minor units; 0: none
	MaxAmount  int64    // minor units; 0: none
	BINRanges  []string // "411111-411199" or "4111"; empty: any (issuers)
	BankCodes  []string // Korean bank codes (banks)
}

// ParticipantFilter selects participants.
type ParticipantFilter struct {
	Status []Status // empty: any
	Role   Role     // empty: any
}

// IdemState is the state of an idempotency entry.
type IdemState string

const (
	IdemInFlight IdemState = "in_flight"
	IdemDone     IdemState = "done"
)

// IdemEntry is the hub's guard for one idempotency key (KECIS §7.1):
// scoped to the issuer (and the OnBehalfOf merchant), with a fingerprint
// over public fields (an HMAC, never ciphertext) and an in-flight lease
// that expires, so that a crash does not block a key forever. The hub
// never stores a provider's outcome as the truth.
type IdemEntry struct {
	Scope        string // saml.IdemScope: the issuer entityID, plus "|" + merchant when on behalf of one
	Key          string
	Fingerprint  []byte
	State        IdemState
	LeaseOwner   string
	LeaseExpires time.Time
	RequestID    string // the latest message ID forwarded under this key
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// AuditRecord is one entry of the append-only audit log. Message holds a
// signed message exactly as received or sent — a backend may keep it
// compressed, but gives back the same bytes (KECIS §12.3); no field ever
// holds a clear card number, account number or code.
type AuditRecord struct {
	ID             int64 // assigned by the store
	Time           time.Time
	Kind           string // e.g. "message.in", "message.out", "participant.approve"
	Actor          string // entityID or operator
	EntityID       string // the participant concerned
	TxID           string // transaction (correlation) ID
	RequestID      string
	IdempotencyKey string
	Detail         string // JSON, public fields only
	Message        []byte
}

// AuditFilter selects audit records; zero fields match anything.
type AuditFilter struct {
	TxID      string
	RequestID string
	EntityID  string
	Kind      string
	Since     time.Time
	Until     time.Time
	Limit     int
}

// RoutingRule routes JSON-facade requests (KECIS §12.4: routing by rules
// happens only on the facade). Matching fields that are empty match
// anything; the lowest Priority that matches wins.
type RoutingRule struct {
	ID        string
	Priority  int
	Service   string // service URI or group prefix such as "urn:kecis:service:card:"
	Merchant  string
	BINPrefix string
	BankCode  string
	Currency  string
	MinAmount int64
	MaxAmount int64
	Target    string // entityID
	CreatedAt time.Time
}

// MetadataSnapshot is a signed metadata document in force from ValidFrom,
// kept so that evidence can be checked with the keys of its time.
type MetadataSnapshot struct {
	EntityID  string
	Version   int64
	ValidFrom time.Time
	Signed    []byte
}

// Participants stores the registry.
type Participants interface {
	// CreateParticipant stores a new participant (ErrExists if present).
	CreateParticipant(ctx context.Context, p *Participant) error
	// GetParticipant returns one participant with keys, endpoints, services.
	GetParticipant(ctx context.Context, entityID string) (*Participant, error)
	// ListParticipants returns participants in entityID order.
	ListParticipants(ctx context.Context, f ParticipantFilter) ([]*Participant, error)
	// UpdateParticipant replaces a participant's fields, keys, endpoints,
	// services and pending version (nil clears it) if its Version still
	// equals p.Version (else ErrConflict), and increments the version.
	UpdateParticipant(ctx context.Context, p *Participant) error
	// ParticipantByCertificate finds the participant that published a
	// certificate (by SHA-256 fingerprint) for the given use.
	ParticipantByCertificate(ctx context.Context, use KeyUse, fingerprint string) (*Participant, error)
}

// Replay is the replay cache.
type Replay interface {
	// RememberMessage records (issuer, id) until expires; ErrAlreadySeen if
	// an unexpired record exists. Atomic across replicas.
	RememberMessage(ctx context.Context, issuer, id string, expires, now time.Time) error
	// PurgeReplay deletes records that expired before now; returns how many.
	PurgeReplay(ctx context.Context, now time.Time) (int64, error)
}

// Idempotency holds the hub's idempotency guard.
type Idempotency interface {
	// AcquireIdem takes the lease on (scope, key) for owner until
	// leaseUntil, atomically, and says what it found in the vocabulary the
	// provider's store speaks too (saml.IdemResult, KECIS §7.1):
	// IdemAcquired for a new key; IdemReacquired for a known key with the
	// same fingerprint whose earlier attempt was answered or whose lease
	// expired (the caller holds the lease and forwards the retry, which
	// the provider answers); IdemInFlight while another attempt holds an
	// unexpired lease; IdemMismatch for a key used with a different
	// fingerprint. Never IdemDone: the hub stores no outcome. Of two racing
	// callers one acquires and the other sees IdemInFlight (or
	// IdemMismatch). The entry is returned as stored.
	AcquireIdem(ctx context.Context, scope, key string, fingerprint []byte, owner, requestID string, leaseUntil, now time.Time) (saml.IdemResult, *IdemEntry, error)
	// ReleaseIdem ends owner's lease: state Done when the provider
	// answered, or the entry stays retryable (lease cleared) when it did
	// not (a timeout is never an outcome). ErrConflict if owner does not
	// hold the lease.
	ReleaseIdem(ctx context.Context, scope, key, owner string, state IdemState, now time.Time) error
	GetIdem(ctx context.Context, scope, key string) (*IdemEntry, error)
	// CountInFlight counts unexpired leases (a metric).
	CountInFlight(ctx context.Context, now time.Time) (int64, error)
}

// Audit is the append-only audit log.
type Audit interface {
	AppendAudit(ctx context.Context, r *AuditRecord) error
	ListAudit(ctx context.Context, f AuditFilter) ([]*AuditRecord, error)
}

// ReplayEntry is one (issuer, message ID) for the replay cache, live until
// Expires (RememberMessage's arguments).
type ReplayEntry struct {
	Issuer  string
	ID      string
	Expires time.Time
}

// IdemClaim asks for an idempotency lease (AcquireIdem's arguments).
type IdemClaim struct {
	Scope       string
	Key         string
	Fingerprint []byte
	Owner       string
	RequestID   string
	LeaseUntil  time.Time
}

// IdemRelease ends a lease (ReleaseIdem's arguments).
type IdemRelease struct {
	Scope string
	Key   string
	Owner string
	State IdemState
}

// Writes is what one step of a request writes, committed by Commit in one
// transaction — one commit, one fsync — so that an approval costs the hub
// a commit before it forwards and one before it answers (KECIS §12.3):
// nothing of a step is visible without the rest of it after a crash.
// The parts are applied in this order, with the semantics of the
// single-purpose methods:
//   - Remember: the replay cache; an ID already live fails the whole
//     commit with ErrAlreadySeen and nothing is written;
//   - Claim: AcquireIdem; a refusal (IdemInFlight, IdemMismatch) is an
//     answer, not an error: the rest commits;
//   - Release: ReleaseIdem; a lease this owner no longer holds is reported
//     in Committed.ReleaseErr and the rest commits;
//   - Audit: appended in order, their IDs set;
//   - Prune: when set, at most Prune.Limit expired replay records and at
//     most Prune.Limit idempotency entries neither leased nor changed since
//     Prune.IdemBefore are deleted, so that the tables stay bounded at a
//     bounded cost per request.
//
// Now is the instant of the step (the store never reads the clock).
type Writes struct {
	Now      time.Time
	Remember []ReplayEntry
	Claim    *IdemClaim
	Release  *IdemRelease
	Audit    []*AuditRecord
	Prune    *Prune
}

// Prune bounds the clean-up a commit does (see Writes).
type Prune struct {
	Limit      int
	IdemBefore time.Time
}

// Empty reports whether w writes nothing.
func (w *Writes) Empty() bool {
	return len(w.Remember) == 0 && w.Claim == nil && w.Release == nil && len(w.Audit) == 0
}

// Committed is what Commit found.
type Committed struct {
	// Claim is the idempotency guard's answer and Entry the entry as
	// stored, when Writes.Claim was set.
	Claim saml.IdemResult
	Entry *IdemEntry
	// ReleaseErr is ErrConflict or ErrNotFound (wrapped) when Writes.Release
	// did not apply.
	ReleaseErr error
	// Pruned counts the rows Prune deleted.
	Pruned int64
}

// Batches commits several writes of one request at once.
type Batches interface {
	// Commit applies w in one transaction (see Writes).
	Commit(ctx context.Context, w *Writes) (*Committed, error)
}

// Routing stores routing rules.
type Routing interface {
	PutRoutingRule(ctx context.Context, r *RoutingRule) error
	DeleteRoutingRule(ctx context.Context, id string) error
	ListRoutingRules(ctx context.Context) ([]*RoutingRule, error)
}

// Snapshots stores signed metadata versions.
type Snapshots interface {
	PutSnapshot(ctx context.Context, s *MetadataSnapshot) error
	// SnapshotAt returns the snapshot of entityID in force at t (the latest
	// with ValidFrom <= t).
	SnapshotAt(ctx context.Context, entityID string, t time.Time) (*MetadataSnapshot, error)
}

// Store is everything the hub keeps.
type Store interface {
	Participants
	Replay
	Idempotency
	Audit
	Batches
	Routing
	Snapshots
	// Ping reports whether the database is reachable (readiness).
	Ping(ctx context.Context) error
	// Writable reports whether the database takes writes (readiness): an
	// error when it is read-only — a PostgreSQL standby or
	// default_transaction_read_only, a SQLite connection that is
	// query_only or at its max_page_count with no free page. It writes
	// nothing, so a disk that fills up is seen only when a write fails.
	Writable(ctx context.Context) error
	Close() error
}

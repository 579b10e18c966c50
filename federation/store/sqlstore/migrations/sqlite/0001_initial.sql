-- KECIS hub store, initial schema (SQLite).
-- Times are INTEGER Unix microseconds (UTC); byte columns are BLOBs and hold
-- signed documents exactly as received or sent. STRICT tables refuse values
-- of the wrong type.

CREATE TABLE hub_participants (
	entity_id    TEXT    PRIMARY KEY,
	display_name TEXT    NOT NULL,
	status       TEXT    NOT NULL,
	metadata     BLOB    NOT NULL,
	version      INTEGER NOT NULL CHECK (version > 0),
	created_at   INTEGER NOT NULL,
	updated_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX hub_participants_status ON hub_participants (status, entity_id);

-- Child rows keep the order they were given in (ord).
CREATE TABLE hub_participant_roles (
	entity_id TEXT    NOT NULL REFERENCES hub_participants (entity_id) ON DELETE CASCADE,
	ord       INTEGER NOT NULL,
	role      TEXT    NOT NULL,
	PRIMARY KEY (entity_id, ord)
) STRICT;
CREATE INDEX hub_participant_roles_role ON hub_participant_roles (role, entity_id);

CREATE TABLE hub_participant_keys (
	entity_id   TEXT    NOT NULL REFERENCES hub_participants (entity_id) ON DELETE CASCADE,
	ord         INTEGER NOT NULL,
	key_use     TEXT    NOT NULL,
	cert_der    BLOB    NOT NULL,
	fingerprint TEXT    NOT NULL,
	not_after   INTEGER NOT NULL,
	PRIMARY KEY (entity_id, ord)
) STRICT;
CREATE INDEX hub_participant_keys_fingerprint ON hub_participant_keys (key_use, fingerprint);

CREATE TABLE hub_participant_endpoints (
	entity_id TEXT    NOT NULL REFERENCES hub_participants (entity_id) ON DELETE CASCADE,
	ord       INTEGER NOT NULL,
	service   TEXT    NOT NULL,
	binding   TEXT    NOT NULL,
	url       TEXT    NOT NULL,
	priority  INTEGER NOT NULL,
	PRIMARY KEY (entity_id, ord)
) STRICT;

-- currencies, bin_ranges, bank_codes: JSON arrays of strings.
CREATE TABLE hub_participant_services (
	entity_id  TEXT    NOT NULL REFERENCES hub_participants (entity_id) ON DELETE CASCADE,
	ord        INTEGER NOT NULL,
	service    TEXT    NOT NULL,
	currencies TEXT    NOT NULL,
	min_amount INTEGER NOT NULL,
	max_amount INTEGER NOT NULL,
	bin_ranges TEXT    NOT NULL,
	bank_codes TEXT    NOT NULL,
	PRIMARY KEY (entity_id, ord)
) STRICT;

-- The replay cache: the primary key is what refuses a repeated ID.
CREATE TABLE hub_replay (
	issuer     TEXT    NOT NULL,
	message_id TEXT    NOT NULL,
	expires    INTEGER NOT NULL,
	PRIMARY KEY (issuer, message_id)
) STRICT;
CREATE INDEX hub_replay_expires ON hub_replay (expires);

-- The idempotency guard: one row per (scope, key); the lease is taken with
-- INSERT … ON CONFLICT DO UPDATE … WHERE <lease free>.
CREATE TABLE hub_idempotency (
	scope         TEXT    NOT NULL,
	idem_key      TEXT    NOT NULL,
	fingerprint   BLOB    NOT NULL,
	state         TEXT    NOT NULL CHECK (state IN ('in_flight', 'done')),
	lease_owner   TEXT    NOT NULL,
	lease_expires INTEGER NOT NULL,
	request_id    TEXT    NOT NULL,
	attempts      INTEGER NOT NULL,
	created_at    INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL,
	PRIMARY KEY (scope, idem_key)
) STRICT;
CREATE INDEX hub_idempotency_leases ON hub_idempotency (lease_expires) WHERE state = 'in_flight';

-- The audit log is append-only; AUTOINCREMENT never reuses an ID.
CREATE TABLE hub_audit (
	id              INTEGER PRIMARY KEY AUTOINCREMENT,
	time            INTEGER NOT NULL,
	kind            TEXT    NOT NULL,
	actor           TEXT    NOT NULL,
	entity_id       TEXT    NOT NULL,
	tx_id           TEXT    NOT NULL,
	request_id      TEXT    NOT NULL,
	idempotency_key TEXT    NOT NULL,
	detail          TEXT    NOT NULL,
	message         BLOB    NOT NULL
) STRICT;
CREATE INDEX hub_audit_time ON hub_audit (time);
CREATE INDEX hub_audit_tx ON hub_audit (tx_id) WHERE tx_id <> '';
CREATE INDEX hub_audit_request ON hub_audit (request_id) WHERE request_id <> '';
CREATE INDEX hub_audit_entity ON hub_audit (entity_id, time);
CREATE INDEX hub_audit_kind ON hub_audit (kind, time);

CREATE TRIGGER hub_audit_no_update BEFORE UPDATE ON hub_audit
BEGIN
	SELECT RAISE(ABORT, 'hub_audit is append-only');
END;

CREATE TABLE hub_routing_rules (
	id         TEXT    PRIMARY KEY,
	priority   INTEGER NOT NULL,
	service    TEXT    NOT NULL,
	merchant   TEXT    NOT NULL,
	bin_prefix TEXT    NOT NULL,
	bank_code  TEXT    NOT NULL,
	currency   TEXT    NOT NULL,
	min_amount INTEGER NOT NULL,
	max_amount INTEGER NOT NULL,
	target     TEXT    NOT NULL,
	created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX hub_routing_rules_priority ON hub_routing_rules (priority, id);

CREATE TABLE hub_metadata_snapshots (
	entity_id  TEXT    NOT NULL,
	version    INTEGER NOT NULL,
	valid_from INTEGER NOT NULL,
	signed     BLOB    NOT NULL,
	PRIMARY KEY (entity_id, version)
) STRICT;
CREATE INDEX hub_metadata_snapshots_valid_from ON hub_metadata_snapshots (entity_id, valid_from);

-- KECIS hub store, initial schema (PostgreSQL).
-- Times are TIMESTAMPTZ (microseconds); byte columns are BYTEA and hold
-- signed documents exactly as received or sent. Keys that are listed in order
-- use COLLATE "C" (byte order), as SQLite does.

CREATE TABLE hub_participants (
	entity_id    TEXT        COLLATE "C" PRIMARY KEY,
	display_name TEXT        NOT NULL,
	status       TEXT        NOT NULL,
	metadata     BYTEA       NOT NULL,
	version      BIGINT      NOT NULL CHECK (version > 0),
	created_at   TIMESTAMPTZ NOT NULL,
	updated_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX hub_participants_status ON hub_participants (status, entity_id);

-- Child rows keep the order they were given in (ord).
CREATE TABLE hub_participant_roles (
	entity_id TEXT    NOT NULL REFERENCES hub_participants (entity_id) ON DELETE CASCADE,
	ord       INTEGER NOT NULL,
	role      TEXT    NOT NULL,
	PRIMARY KEY (entity_id, ord)
);
CREATE INDEX hub_participant_roles_role ON hub_participant_roles (role, entity_id);

CREATE TABLE hub_participant_keys (
	entity_id   TEXT        NOT NULL REFERENCES hub_participants (entity_id) ON DELETE CASCADE,
	ord         INTEGER     NOT NULL,
	key_use     TEXT        NOT NULL,
	cert_der    BYTEA       NOT NULL,
	fingerprint TEXT        NOT NULL,
	not_after   TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (entity_id, ord)
);
CREATE INDEX hub_participant_keys_fingerprint ON hub_participant_keys (key_use, fingerprint);

CREATE TABLE hub_participant_endpoints (
	entity_id TEXT    NOT NULL REFERENCES hub_participants (entity_id) ON DELETE CASCADE,
	ord       INTEGER NOT NULL,
	service   TEXT    NOT NULL,
	binding   TEXT    NOT NULL,
	url       TEXT    NOT NULL,
	priority  INTEGER NOT NULL,
	PRIMARY KEY (entity_id, ord)
);

-- currencies, bin_ranges, bank_codes: JSON arrays of strings.
CREATE TABLE hub_participant_services (
	entity_id  TEXT    NOT NULL REFERENCES hub_participants (entity_id) ON DELETE CASCADE,
	ord        INTEGER NOT NULL,
	service    TEXT    NOT NULL,
	currencies TEXT    NOT NULL,
	min_amount BIGINT  NOT NULL,
	max_amount BIGINT  NOT NULL,
	bin_ranges TEXT    NOT NULL,
	bank_codes TEXT    NOT NULL,
	PRIMARY KEY (entity_id, ord)
);

-- The replay cache: the primary key is what refuses a repeated ID.
CREATE TABLE hub_replay (
	issuer     TEXT        NOT NULL,
	message_id TEXT        NOT NULL,
	expires    TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (issuer, message_id)
);
CREATE INDEX hub_replay_expires ON hub_replay (expires);

-- The idempotency guard: one row per (scope, key); the lease is taken with
-- INSERT … ON CONFLICT DO UPDATE … WHERE <lease free>.
CREATE TABLE hub_idempotency (
	scope         TEXT        NOT NULL,
	idem_key      TEXT        NOT NULL,
	fingerprint   BYTEA       NOT NULL,
	state         TEXT        NOT NULL CHECK (state IN ('in_flight', 'done')),
	lease_owner   TEXT        NOT NULL,
	lease_expires TIMESTAMPTZ NOT NULL,
	request_id    TEXT        NOT NULL,
	attempts      BIGINT      NOT NULL,
	created_at    TIMESTAMPTZ NOT NULL,
	updated_at    TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (scope, idem_key)
);
CREATE INDEX hub_idempotency_leases ON hub_idempotency (lease_expires) WHERE state = 'in_flight';

-- The audit log is append-only.
CREATE TABLE hub_audit (
	id              BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	time            TIMESTAMPTZ NOT NULL,
	kind            TEXT        NOT NULL,
	actor           TEXT        NOT NULL,
	entity_id       TEXT        NOT NULL,
	tx_id           TEXT        NOT NULL,
	request_id      TEXT        NOT NULL,
	idempotency_key TEXT        NOT NULL,
	detail          TEXT        NOT NULL,
	message         BYTEA       NOT NULL
);
CREATE INDEX hub_audit_time ON hub_audit (time);
CREATE INDEX hub_audit_tx ON hub_audit (tx_id) WHERE tx_id <> '';
CREATE INDEX hub_audit_request ON hub_audit (request_id) WHERE request_id <> '';
CREATE INDEX hub_audit_entity ON hub_audit (entity_id, time);
CREATE INDEX hub_audit_kind ON hub_audit (kind, time);

CREATE FUNCTION hub_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'hub_audit is append-only';
END
$$;
CREATE TRIGGER hub_audit_no_update BEFORE UPDATE ON hub_audit
	FOR EACH ROW EXECUTE FUNCTION hub_audit_append_only();

CREATE TABLE hub_routing_rules (
	id         TEXT        COLLATE "C" PRIMARY KEY,
	priority   INTEGER     NOT NULL,
	service    TEXT        NOT NULL,
	merchant   TEXT        NOT NULL,
	bin_prefix TEXT        NOT NULL,
	bank_code  TEXT        NOT NULL,
	currency   TEXT        NOT NULL,
	min_amount BIGINT      NOT NULL,
	max_amount BIGINT      NOT NULL,
	target     TEXT        NOT NULL,
	created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX hub_routing_rules_priority ON hub_routing_rules (priority, id);

CREATE TABLE hub_metadata_snapshots (
	entity_id  TEXT        NOT NULL,
	version    BIGINT      NOT NULL,
	valid_from TIMESTAMPTZ NOT NULL,
	signed     BYTEA       NOT NULL,
	PRIMARY KEY (entity_id, version)
);
CREATE INDEX hub_metadata_snapshots_valid_from ON hub_metadata_snapshots (entity_id, valid_from);

-- What one approval costs the hub's store (KECIS §12.3), continued.
--
-- The idempotency guard is looked up by its primary key (and pruned through
-- hub_idempotency_idle): WITHOUT ROWID keeps each row in its primary key's
-- b-tree, instead of a rowid table plus an index that repeated the key
-- (scope and idempotency key). (The replay cache stays a rowid table: its
-- expiry index would repeat the whole key there, as much as it saves.)
CREATE TABLE hub_idempotency_new (
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
) STRICT, WITHOUT ROWID;
INSERT INTO hub_idempotency_new (scope, idem_key, fingerprint, state, lease_owner, lease_expires, request_id, attempts, created_at, updated_at)
	SELECT scope, idem_key, fingerprint, state, lease_owner, lease_expires, request_id, attempts, created_at, updated_at FROM hub_idempotency;
DROP TABLE hub_idempotency;
ALTER TABLE hub_idempotency_new RENAME TO hub_idempotency;
CREATE INDEX hub_idempotency_leases ON hub_idempotency (lease_expires) WHERE state = 'in_flight';
CREATE INDEX hub_idempotency_idle ON hub_idempotency (updated_at);

-- No reader lists audit records by kind alone (the registry's conformance
-- records are listed by entity and kind: hub_audit_entity serves it), so the
-- kind index, an entry per record kept for good, goes.
DROP INDEX hub_audit_kind;

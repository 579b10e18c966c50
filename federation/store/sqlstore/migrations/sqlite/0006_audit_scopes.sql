-- What one approval costs the hub's store (KECIS §12.3), continued: an
-- audit record kept for good stores no text that other records repeat.
--
-- hub_audit_scopes: what the records of one exchange between two
-- participants share — the kind, the actor, the entity, and tx_prefix, the
-- part of the transaction ID before "|" + the idempotency key (its issuer,
-- KECIS §12.3), '' when the transaction ID is not of that form. A record
-- names its scope (scope_id) instead of repeating them; its tx_id is ''
-- when the scope's tx_prefix gives it (tx_prefix || '|' ||
-- idempotency_key), else the transaction ID itself. Scopes, like the
-- records, are never changed.
--
-- codec 2: message holds, zlib-compressed with the dictionary dict_id
-- (auditcodec.go), the record's detail and its message (the detail's
-- length as a uvarint, the detail, the message), and the detail column is
-- ''. Every reader still gets the exact detail and message back.
--
-- Indexes: records are listed by transaction (tx_id when it is stored, else
-- the idempotency key, then the scope's prefix), by request, by scope (the
-- entity and kind) and time, and by time.
--
-- The table is rebuilt (SQLite cannot drop a CHECK constraint); its IDs and
-- AUTOINCREMENT sequence are kept. A replica of an earlier version cannot
-- write it: stop every replica of an earlier version before starting this
-- one.
CREATE TABLE hub_audit_scopes (
	id        INTEGER PRIMARY KEY,
	kind      TEXT    NOT NULL,
	actor     TEXT    NOT NULL,
	entity_id TEXT    NOT NULL,
	tx_prefix TEXT    NOT NULL,
	UNIQUE (kind, actor, entity_id, tx_prefix)
) STRICT;
CREATE INDEX hub_audit_scopes_entity ON hub_audit_scopes (entity_id, kind);
CREATE TRIGGER hub_audit_scopes_no_update BEFORE UPDATE ON hub_audit_scopes
BEGIN
	SELECT RAISE(ABORT, 'hub_audit_scopes is append-only');
END;

-- The records' prefixes, as tx_prefix above says.
CREATE TEMP TABLE hub_audit_v5 AS
	SELECT id, kind, actor, entity_id,
		CASE WHEN idempotency_key <> '' AND length(tx_id) > length(idempotency_key) + 1
			AND substr(tx_id, length(tx_id) - length(idempotency_key)) = '|' || idempotency_key
		THEN substr(tx_id, 1, length(tx_id) - length(idempotency_key) - 1) ELSE '' END AS tx_prefix
	FROM hub_audit;
INSERT INTO hub_audit_scopes (kind, actor, entity_id, tx_prefix)
	SELECT DISTINCT kind, actor, entity_id, tx_prefix FROM hub_audit_v5 ORDER BY 1, 2, 3, 4;

CREATE TABLE hub_audit_new (
	id              INTEGER PRIMARY KEY AUTOINCREMENT,
	time            INTEGER NOT NULL,
	scope_id        INTEGER NOT NULL REFERENCES hub_audit_scopes (id),
	tx_id           TEXT    NOT NULL,
	request_id      TEXT    NOT NULL,
	idempotency_key TEXT    NOT NULL,
	detail          TEXT    NOT NULL,
	message         BLOB    NOT NULL,
	codec           INTEGER NOT NULL CHECK (codec IN (0, 1, 2)),
	dict_id         INTEGER REFERENCES hub_audit_dicts (id)
) STRICT;
INSERT INTO hub_audit_new (id, time, scope_id, tx_id, request_id, idempotency_key, detail, message, codec, dict_id)
	SELECT a.id, a.time, s.id, CASE WHEN s.tx_prefix <> '' THEN '' ELSE a.tx_id END,
		a.request_id, a.idempotency_key, a.detail, a.message, a.codec, a.dict_id
	FROM hub_audit a
	JOIN hub_audit_v5 p ON p.id = a.id
	JOIN hub_audit_scopes s ON s.kind = p.kind AND s.actor = p.actor AND s.entity_id = p.entity_id AND s.tx_prefix = p.tx_prefix
	ORDER BY a.id;
DROP TABLE hub_audit_v5;
-- AUTOINCREMENT never reuses an ID: the new table's sequence goes on from
-- the old one's (which may be above the last record kept).
INSERT INTO sqlite_sequence (name, seq)
	SELECT 'hub_audit_new', 0 WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'hub_audit_new');
UPDATE sqlite_sequence
	SET seq = MAX(seq, COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'hub_audit'), 0))
	WHERE name = 'hub_audit_new';
DROP TABLE hub_audit;
ALTER TABLE hub_audit_new RENAME TO hub_audit;

CREATE INDEX hub_audit_time ON hub_audit (time);
CREATE INDEX hub_audit_scope ON hub_audit (scope_id, time);
CREATE INDEX hub_audit_request ON hub_audit (request_id) WHERE request_id <> '';
CREATE INDEX hub_audit_idem ON hub_audit (idempotency_key) WHERE idempotency_key <> '';
CREATE INDEX hub_audit_tx ON hub_audit (tx_id) WHERE tx_id <> '';
CREATE TRIGGER hub_audit_no_update BEFORE UPDATE ON hub_audit
BEGIN
	SELECT RAISE(ABORT, 'hub_audit is append-only');
END;

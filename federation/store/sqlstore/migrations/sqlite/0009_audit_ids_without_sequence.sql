-- What one approval costs the hub's store (KECIS §12.3), continued: with
-- AUTOINCREMENT every audit record also rewrote hub_audit's row in
-- sqlite_sequence, one more page (a 4 KB WAL frame) in every commit. Its
-- promise stays: an ID is never given twice, even when the newest records
-- were archived (deleted). hub_audit_archived keeps the highest ID ever
-- deleted (a trigger; the old sequence to begin with, which may be past
-- the last record kept), and a record takes the ID after both it and the
-- highest ID in the table (insertAudit): reading both is a seek each, and
-- only an archiving writes hub_audit_archived.
--
-- The table is rebuilt (SQLite cannot drop AUTOINCREMENT), its IDs kept.
-- A replica of an earlier version cannot write it: stop every replica of
-- an earlier version before starting this one.
CREATE TABLE hub_audit_archived (
	one    INTEGER PRIMARY KEY CHECK (one = 1),
	max_id INTEGER NOT NULL
) STRICT;
INSERT INTO hub_audit_archived (one, max_id)
	VALUES (1, COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'hub_audit'), 0));

CREATE TABLE hub_audit_new (
	id              INTEGER PRIMARY KEY,
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
	SELECT id, time, scope_id, tx_id, request_id, idempotency_key, detail, message, codec, dict_id
	FROM hub_audit ORDER BY id;
DROP TABLE hub_audit;
ALTER TABLE hub_audit_new RENAME TO hub_audit;

CREATE INDEX hub_audit_scope ON hub_audit (scope_id, time);
CREATE INDEX hub_audit_request ON hub_audit (request_id) WHERE request_id <> '';
CREATE INDEX hub_audit_idem ON hub_audit (idempotency_key) WHERE idempotency_key <> '';
CREATE INDEX hub_audit_tx ON hub_audit (tx_id) WHERE tx_id <> '';
CREATE TRIGGER hub_audit_no_update BEFORE UPDATE ON hub_audit
BEGIN
	SELECT RAISE(ABORT, 'hub_audit is append-only');
END;
CREATE TRIGGER hub_audit_archive AFTER DELETE ON hub_audit
BEGIN
	UPDATE hub_audit_archived SET max_id = OLD.id WHERE max_id < OLD.id;
END;

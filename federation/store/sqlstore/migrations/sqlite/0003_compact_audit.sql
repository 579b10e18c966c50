-- What one approval costs the hub's store (KECIS §12.3).
--
-- Audit messages are kept compactly: hub_audit.codec says how message is
-- stored — 0 as is, 1 zlib (RFC 1950: DEFLATE with the preset dictionary
-- dict_id and the Adler-32 of the original, which reading checks) — and
-- every reader gets the exact original bytes back. A dictionary is a
-- message of the same scope (kind, actor, entity) kept whole once, so that
-- what messages of one scope share (certificates, namespaces, URLs) is
-- stored once; dictionaries are append-only and never deleted while a
-- record names them.
CREATE TABLE hub_audit_dicts (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	sha256     BLOB    NOT NULL UNIQUE,
	scope      TEXT    NOT NULL,
	dict       BLOB    NOT NULL,
	created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX hub_audit_dicts_scope ON hub_audit_dicts (scope, id);
CREATE TRIGGER hub_audit_dicts_no_update BEFORE UPDATE ON hub_audit_dicts
BEGIN
	SELECT RAISE(ABORT, 'hub_audit_dicts is append-only');
END;

ALTER TABLE hub_audit ADD COLUMN codec INTEGER NOT NULL DEFAULT 0 CHECK (codec IN (0, 1));
ALTER TABLE hub_audit ADD COLUMN dict_id INTEGER REFERENCES hub_audit_dicts (id);

-- Idempotency entries are pruned a few at a time, oldest first, once idle
-- for the retention (Writes.Prune): the pruning reads this index.
CREATE INDEX hub_idempotency_idle ON hub_idempotency (updated_at);

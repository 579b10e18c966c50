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
-- The records are rewritten in place (their IDs kept). A replica of an
-- earlier version cannot write the table: stop every replica of an
-- earlier version before starting this one.
CREATE TABLE hub_audit_scopes (
	id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	kind      TEXT   NOT NULL,
	actor     TEXT   NOT NULL,
	entity_id TEXT   NOT NULL,
	tx_prefix TEXT   NOT NULL,
	UNIQUE (kind, actor, entity_id, tx_prefix)
);
CREATE INDEX hub_audit_scopes_entity ON hub_audit_scopes (entity_id, kind);
CREATE FUNCTION hub_audit_scopes_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'hub_audit_scopes is append-only';
END
$$;
CREATE TRIGGER hub_audit_scopes_no_update BEFORE UPDATE ON hub_audit_scopes
	FOR EACH ROW EXECUTE FUNCTION hub_audit_scopes_append_only();

CREATE TEMP TABLE hub_audit_v5 ON COMMIT DROP AS
	SELECT id, kind, actor, entity_id,
		CASE WHEN idempotency_key <> '' AND length(tx_id) > length(idempotency_key) + 1
			AND right(tx_id, length(idempotency_key) + 1) = '|' || idempotency_key
		THEN left(tx_id, length(tx_id) - length(idempotency_key) - 1) ELSE '' END AS tx_prefix
	FROM hub_audit;
INSERT INTO hub_audit_scopes (kind, actor, entity_id, tx_prefix)
	SELECT DISTINCT kind, actor, entity_id, tx_prefix FROM hub_audit_v5 ORDER BY 1, 2, 3, 4;

ALTER TABLE hub_audit ADD COLUMN scope_id BIGINT REFERENCES hub_audit_scopes (id);
ALTER TABLE hub_audit DISABLE TRIGGER hub_audit_no_update;
UPDATE hub_audit a
	SET scope_id = s.id, tx_id = CASE WHEN s.tx_prefix <> '' THEN '' ELSE a.tx_id END
	FROM hub_audit_v5 p, hub_audit_scopes s
	WHERE p.id = a.id AND s.kind = p.kind AND s.actor = p.actor AND s.entity_id = p.entity_id AND s.tx_prefix = p.tx_prefix;
ALTER TABLE hub_audit ENABLE TRIGGER hub_audit_no_update;
ALTER TABLE hub_audit ALTER COLUMN scope_id SET NOT NULL;
-- hub_audit_entity goes with its column.
ALTER TABLE hub_audit DROP COLUMN kind, DROP COLUMN actor, DROP COLUMN entity_id;
ALTER TABLE hub_audit DROP CONSTRAINT hub_audit_codec_check,
	ADD CONSTRAINT hub_audit_codec_check CHECK (codec IN (0, 1, 2));

CREATE INDEX hub_audit_scope ON hub_audit (scope_id, time);
CREATE INDEX hub_audit_idem ON hub_audit (idempotency_key) WHERE idempotency_key <> '';

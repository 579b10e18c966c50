-- What one approval costs the hub's store (KECIS §12.3), continued: the
-- replay cache (KECIS §7.2) is keyed by a SHA-256 digest of the issuer and
-- the message ID (replayDigest in digest.go: the issuer, a NUL byte, the
-- ID), 32 bytes whatever their lengths, instead of both in clear — in the
-- table and again in its indexes. The records kept so far are rewritten
-- here, keyed by their digest. A replica of an earlier version cannot
-- write this table: stop every replica of an earlier version before
-- starting this one.
CREATE TABLE hub_replay_new (
	digest  BYTEA       NOT NULL PRIMARY KEY CHECK (length(digest) = 32),
	expires TIMESTAMPTZ NOT NULL
);
INSERT INTO hub_replay_new (digest, expires)
	SELECT sha256(convert_to(issuer, 'UTF8') || '\x00'::bytea || convert_to(message_id, 'UTF8')), expires
	FROM hub_replay
	ON CONFLICT (digest) DO UPDATE SET expires = GREATEST(hub_replay_new.expires, excluded.expires);
DROP TABLE hub_replay;
ALTER TABLE hub_replay_new RENAME TO hub_replay;
ALTER INDEX hub_replay_new_pkey RENAME TO hub_replay_pkey;
CREATE INDEX hub_replay_expires ON hub_replay (expires);

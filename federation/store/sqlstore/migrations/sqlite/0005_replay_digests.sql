-- What one approval costs the hub's store (KECIS §12.3), continued: the
-- replay cache (KECIS §7.2) is keyed by a SHA-256 digest of the issuer and
-- the message ID (replayDigest in digest.go), 32 bytes whatever their
-- lengths, instead of both in clear — in the table and again in its
-- expiry index.
--
-- SQLite has no SHA-256 in SQL: the records kept so far are set aside in
-- hub_replay_v4, and the store (Migrate, convertLegacyReplay) rewrites them
-- keyed by their digest and drops that table, in one transaction, before
-- it serves. A replica of an earlier version cannot write this table:
-- stop every replica of an earlier version before starting this one.
--
-- WITHOUT ROWID: the primary key is the row; the expiry index, read by
-- the pruning, repeats the 32-byte key.
ALTER TABLE hub_replay RENAME TO hub_replay_v4;
DROP INDEX hub_replay_expires;
CREATE TABLE hub_replay (
	digest  BLOB    NOT NULL PRIMARY KEY CHECK (length(digest) = 32),
	expires INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX hub_replay_expires ON hub_replay (expires);

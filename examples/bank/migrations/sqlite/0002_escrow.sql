-- The escrow holding account (KECIS §15.6): money a buyer paid into an
-- escrow stays in the bank's own account of kind 'escrow' until it is
-- released to the seller's settlement account or refunded to the buyer;
-- its journals are escrow_fund (buyer → escrow), escrow_release (escrow →
-- a settlement account at this bank; to another bank it is a send_out
-- from the escrow account) and escrow_refund (escrow → buyer).
--
-- SQLite cannot change a CHECK constraint, and with foreign keys on (they
-- cannot be turned off inside the migration's transaction) a referenced
-- table cannot be dropped while rows refer to it: the two tables whose
-- kinds grow and the three that refer to them are renamed, created anew
-- and copied (their IDs and the entries' AUTOINCREMENT sequence kept),
-- the old ones dropped children first. The index names move with the
-- renamed tables, so they are dropped and created again.
DROP INDEX bank_accounts_customer;
DROP INDEX bank_entries_account;
DROP INDEX bank_entries_journal;
ALTER TABLE bank_entries  RENAME TO bank_entries_v1;
ALTER TABLE bank_outgoing RENAME TO bank_outgoing_v1;
ALTER TABLE bank_incoming RENAME TO bank_incoming_v1;
ALTER TABLE bank_accounts RENAME TO bank_accounts_v1;
ALTER TABLE bank_journals RENAME TO bank_journals_v1;

CREATE TABLE bank_accounts (
	id             TEXT    PRIMARY KEY,
	kind           TEXT    NOT NULL CHECK (kind IN ('customer', 'cash', 'clearing', 'escrow')),
	customer_id    TEXT    REFERENCES bank_customers (id),
	counterparty   TEXT    NOT NULL DEFAULT '',   -- the other bank's code of a clearing account
	number_hash    BLOB    UNIQUE,                -- HMAC-SHA256(pepper-derived key, digits)
	number_enc     BLOB,                          -- version ‖ nonce ‖ AES-256-GCM(digits), AAD = account id
	last4          TEXT    NOT NULL DEFAULT '',
	currency       TEXT    NOT NULL,
	balance        INTEGER NOT NULL,
	status         TEXT    NOT NULL CHECK (status IN ('active', 'closed')),
	transfer_limit INTEGER NOT NULL DEFAULT 0 CHECK (transfer_limit >= 0),
	created_at     INTEGER NOT NULL,
	updated_at     INTEGER NOT NULL,
	CHECK (kind <> 'customer' OR (balance >= 0 AND customer_id IS NOT NULL AND number_hash IS NOT NULL))
) STRICT;
CREATE INDEX bank_accounts_customer ON bank_accounts (customer_id);

CREATE TABLE bank_journals (
	id           TEXT    PRIMARY KEY,
	kind         TEXT    NOT NULL CHECK (kind IN ('deposit', 'transfer', 'send_out', 'credit_in', 'reverse_out',
	                                   'escrow_fund', 'escrow_release', 'escrow_refund')),
	amount       INTEGER NOT NULL CHECK (amount > 0),
	currency     TEXT    NOT NULL,
	memo         TEXT    NOT NULL DEFAULT '',
	created_at   INTEGER NOT NULL
) STRICT;

CREATE TABLE bank_entries (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	journal_id    TEXT    NOT NULL REFERENCES bank_journals (id),
	account_id    TEXT    NOT NULL REFERENCES bank_accounts (id),
	amount        INTEGER NOT NULL CHECK (amount <> 0), -- + credits the account, − debits it
	balance_after INTEGER NOT NULL,
	counterparty  TEXT    NOT NULL DEFAULT '',          -- the name the statement shows
	created_at    INTEGER NOT NULL
) STRICT;
CREATE INDEX bank_entries_account ON bank_entries (account_id, id);
CREATE INDEX bank_entries_journal ON bank_entries (journal_id);

CREATE TABLE bank_outgoing (
	id             TEXT    PRIMARY KEY,           -- the transfer reference
	account_id     TEXT    NOT NULL REFERENCES bank_accounts (id),
	to_bank        TEXT    NOT NULL,
	to_number_enc  BLOB    NOT NULL,              -- sealed, AAD = transfer id
	to_last4       TEXT    NOT NULL,
	to_holder      TEXT    NOT NULL DEFAULT '',
	amount         INTEGER NOT NULL CHECK (amount > 0),
	currency       TEXT    NOT NULL,
	status         TEXT    NOT NULL CHECK (status IN ('sent', 'credited', 'reversed')),
	journal_id     TEXT    NOT NULL REFERENCES bank_journals (id),
	reverse_journal_id TEXT REFERENCES bank_journals (id),
	credit_ref     TEXT    NOT NULL DEFAULT '',   -- the payee bank's credit reference
	reason         TEXT    NOT NULL DEFAULT '',
	created_at     INTEGER NOT NULL,
	updated_at     INTEGER NOT NULL
) STRICT;

CREATE TABLE bank_incoming (
	id              TEXT    PRIMARY KEY,          -- this bank's credit reference
	from_bank       TEXT    NOT NULL,
	reference       TEXT    NOT NULL,
	fingerprint     BLOB    NOT NULL,             -- keyed hash of the content
	account_id      TEXT    NOT NULL REFERENCES bank_accounts (id),
	amount          INTEGER NOT NULL CHECK (amount > 0),
	currency        TEXT    NOT NULL,
	remitter_name   TEXT    NOT NULL DEFAULT '',
	remitter_last4  TEXT    NOT NULL DEFAULT '',
	purpose         TEXT    NOT NULL DEFAULT '',
	journal_id      TEXT    NOT NULL REFERENCES bank_journals (id),
	created_at      INTEGER NOT NULL,
	UNIQUE (from_bank, reference)
) STRICT;

INSERT INTO bank_accounts SELECT * FROM bank_accounts_v1;
INSERT INTO bank_journals SELECT * FROM bank_journals_v1;
INSERT INTO bank_entries (id, journal_id, account_id, amount, balance_after, counterparty, created_at)
	SELECT id, journal_id, account_id, amount, balance_after, counterparty, created_at FROM bank_entries_v1 ORDER BY id;
INSERT INTO bank_outgoing SELECT * FROM bank_outgoing_v1;
INSERT INTO bank_incoming SELECT * FROM bank_incoming_v1;
-- AUTOINCREMENT never reuses an ID: the new sequence goes on from the old.
INSERT INTO sqlite_sequence (name, seq)
	SELECT 'bank_entries', 0 WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'bank_entries');
UPDATE sqlite_sequence
	SET seq = MAX(seq, COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'bank_entries_v1'), 0))
	WHERE name = 'bank_entries';

DROP TABLE bank_entries_v1;
DROP TABLE bank_outgoing_v1;
DROP TABLE bank_incoming_v1;
DROP TABLE bank_accounts_v1;
DROP TABLE bank_journals_v1;

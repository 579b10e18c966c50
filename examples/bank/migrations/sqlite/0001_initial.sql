-- The simulated bank's own tables (component "bank"; KECIS §15.8, §15.9).
-- Account numbers are never stored in clear: AES-256-GCM ciphertext bound to
-- the account's id, a keyed hash to find them by, and the last four digits.
-- Passwords are argon2id PHC strings (internal/passwordhash). Amounts are
-- KRW in won (int64). Times are Unix microseconds (sqlstore Dialect.Time).

CREATE TABLE bank_customers (
	id          TEXT    PRIMARY KEY,
	name        TEXT    NOT NULL,
	phone       TEXT    NOT NULL,                 -- the registered phone, for SMS
	login       TEXT    NOT NULL UNIQUE,
	pw_hash     TEXT    NOT NULL,                 -- argon2id PHC string
	failures    INTEGER NOT NULL DEFAULT 0,
	locked      INTEGER NOT NULL DEFAULT 0,
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL
) STRICT;

-- Customers' accounts and the bank's own: 'cash' (what funds deposits) and
-- one 'clearing' account per counter-party bank. Only customer accounts
-- have a number, and only they may not go below zero.
CREATE TABLE bank_accounts (
	id             TEXT    PRIMARY KEY,
	kind           TEXT    NOT NULL CHECK (kind IN ('customer', 'cash', 'clearing')),
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

-- The double-entry ledger: a journal's entries sum to zero; an account's
-- balance is the sum of its entries.
CREATE TABLE bank_journals (
	id           TEXT    PRIMARY KEY,
	kind         TEXT    NOT NULL CHECK (kind IN ('deposit', 'transfer', 'send_out', 'credit_in', 'reverse_out')),
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

-- Transfers to other banks (SendOut): the reference the payee's bank sees.
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

-- Credits from other banks (CreditIn), one per (bank, their reference).
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

-- One row per (client, key): claim, fingerprint and outcome are written in
-- the transaction that has the effect.
CREATE TABLE bank_idempotency (
	scope          TEXT    NOT NULL,
	idem_key       TEXT    NOT NULL,
	operation      TEXT    NOT NULL,
	fingerprint    BLOB    NOT NULL,
	result_code    TEXT    NOT NULL DEFAULT '',
	result_message TEXT    NOT NULL DEFAULT '',
	ref            TEXT    NOT NULL DEFAULT '',
	created_at     INTEGER NOT NULL,
	PRIMARY KEY (scope, idem_key)
) STRICT;

-- The SMS outbox, written with the movement it reports.
CREATE TABLE bank_outbox (
	id              INTEGER PRIMARY KEY AUTOINCREMENT,
	kind            TEXT    NOT NULL,
	ref             TEXT    NOT NULL,
	phone           TEXT    NOT NULL,
	body            TEXT    NOT NULL,
	state           TEXT    NOT NULL CHECK (state IN ('pending', 'sent', 'dead')),
	attempts        INTEGER NOT NULL DEFAULT 0,
	next_attempt_at INTEGER NOT NULL,
	lease_until     INTEGER,
	last_error      TEXT    NOT NULL DEFAULT '',
	created_at      INTEGER NOT NULL,
	sent_at         INTEGER
) STRICT;
CREATE INDEX bank_outbox_due ON bank_outbox (next_attempt_at) WHERE state = 'pending';

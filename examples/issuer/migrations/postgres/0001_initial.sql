-- The simulated card issuer's own tables (component "issuer"). Card numbers,
-- card-password digits and birth dates are never stored in clear: the PAN is
-- AES-256-GCM ciphertext plus a keyed hash for look-up, the secrets are keyed
-- salted hashes. Times are TIMESTAMPTZ (internal/sqlstore Dialect.Time).

CREATE TABLE issuer_cards (
	id              TEXT    PRIMARY KEY,
	pan_hash        BYTEA    NOT NULL UNIQUE,   -- HMAC-SHA256(pepper-derived key, PAN)
	pan_enc         BYTEA    NOT NULL,          -- version ‖ nonce ‖ AES-256-GCM(PAN), AAD = card id
	bin             TEXT    NOT NULL,
	last4           TEXT    NOT NULL,
	exp_month       BIGINT NOT NULL CHECK (exp_month BETWEEN 1 AND 12),
	exp_year        BIGINT NOT NULL,
	card_type       TEXT    NOT NULL CHECK (card_type IN ('credit', 'check', 'prepaid')),
	status          TEXT    NOT NULL CHECK (status IN ('active', 'blocked', 'lost')),
	holder_name     TEXT    NOT NULL,
	holder_phone    TEXT    NOT NULL,
	secret_salt     BYTEA    NOT NULL,
	birth_hash      BYTEA    NOT NULL,          -- keyed salted hash of YYMMDD
	pw2_hash        BYTEA    NOT NULL,          -- keyed salted hash of the password's two leading digits
	currency        TEXT    NOT NULL,
	credit_limit    BIGINT NOT NULL CHECK (credit_limit >= 0),
	available       BIGINT NOT NULL CHECK (available >= 0),
	failed_attempts BIGINT NOT NULL DEFAULT 0,
	created_at      TIMESTAMPTZ NOT NULL,
	updated_at      TIMESTAMPTZ NOT NULL
);

CREATE TABLE issuer_settlement_batches (
	id             TEXT    PRIMARY KEY,
	run_at         TIMESTAMPTZ NOT NULL,
	approval_count BIGINT NOT NULL
);

CREATE TABLE issuer_approvals (
	approval_number TEXT    PRIMARY KEY,
	card_id         TEXT    NOT NULL REFERENCES issuer_cards (id),
	merchant_id     TEXT    NOT NULL,
	merchant_name   TEXT    NOT NULL,
	order_id        TEXT    NOT NULL,
	amount          BIGINT NOT NULL CHECK (amount > 0),
	currency        TEXT    NOT NULL,
	installments    BIGINT NOT NULL,
	cardholder_auth TEXT    NOT NULL,          -- none | keyin
	refunded_amount BIGINT NOT NULL DEFAULT 0 CHECK (refunded_amount >= 0 AND refunded_amount <= amount),
	status          TEXT    NOT NULL CHECK (status IN ('approved', 'cancelled', 'settled', 'partially_refunded', 'refunded')),
	approved_at     TIMESTAMPTZ NOT NULL,
	cutoff_at       TIMESTAMPTZ NOT NULL,          -- the settlement cut-off this approval belongs to
	cancelled_at    TIMESTAMPTZ,
	settled_at      TIMESTAMPTZ,
	batch_id        TEXT    REFERENCES issuer_settlement_batches (id),
	UNIQUE (merchant_id, order_id)
);
CREATE INDEX issuer_approvals_unbatched ON issuer_approvals (cutoff_at) WHERE batch_id IS NULL;
CREATE INDEX issuer_approvals_time ON issuer_approvals (approved_at);
CREATE INDEX issuer_approvals_card ON issuer_approvals (card_id);

CREATE TABLE issuer_refunds (
	id              TEXT    PRIMARY KEY,
	approval_number TEXT    NOT NULL REFERENCES issuer_approvals (approval_number),
	amount          BIGINT NOT NULL CHECK (amount > 0),
	reason          TEXT    NOT NULL,
	created_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX issuer_refunds_approval ON issuer_refunds (approval_number);

-- Declined attempts, for the cardholder's and the issuer's records.
CREATE TABLE issuer_declines (
	id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	merchant_id TEXT    NOT NULL,
	order_id    TEXT    NOT NULL,
	card_id     TEXT,                          -- NULL when the card was not found
	code        TEXT    NOT NULL,
	reason      TEXT    NOT NULL,
	amount      BIGINT NOT NULL,
	currency    TEXT    NOT NULL,
	created_at  TIMESTAMPTZ NOT NULL
);

-- One row per (client, key): the claim, the request's fingerprint and the
-- outcome are written in the transaction that has the effect.
CREATE TABLE issuer_idempotency (
	scope          TEXT    NOT NULL,           -- merchant:<id> or admin
	idem_key       TEXT    NOT NULL,
	operation      TEXT    NOT NULL,
	fingerprint    BYTEA    NOT NULL,           -- keyed hash of the parameters
	result_code    TEXT    NOT NULL DEFAULT '',-- '' for success, else the error code
	result_message TEXT    NOT NULL DEFAULT '',
	ref            TEXT    NOT NULL DEFAULT '',-- approval number, refund id or card id
	created_at     TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (scope, idem_key)
);

-- The SMS outbox: written with the mutation, delivered after commit and
-- retried with backoff until sent or dead.
CREATE TABLE issuer_outbox (
	id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	kind            TEXT    NOT NULL CHECK (kind IN ('approval', 'cancel', 'refund')),
	ref             TEXT    NOT NULL,
	phone           TEXT    NOT NULL,
	body            TEXT    NOT NULL,
	state           TEXT    NOT NULL CHECK (state IN ('pending', 'sent', 'dead')),
	attempts        BIGINT NOT NULL DEFAULT 0,
	next_attempt_at TIMESTAMPTZ NOT NULL,
	lease_until     TIMESTAMPTZ,
	last_error      TEXT    NOT NULL DEFAULT '',
	created_at      TIMESTAMPTZ NOT NULL,
	sent_at         TIMESTAMPTZ
);
CREATE INDEX issuer_outbox_due ON issuer_outbox (next_attempt_at) WHERE state = 'pending';

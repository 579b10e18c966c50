-- The simulated payment gateway's own tables (component "pg"). The PG never
-- stores a card number: only the masked form (first six and last four
-- digits). Buyer details are AES-256-GCM ciphertext; API keys and request
-- fingerprints are hashes. Times are Unix microseconds (internal/sqlstore
-- Dialect.Time).
-- Tables are prefixed pgw_, not pg_: PostgreSQL reserves pg_ names for its
-- catalog, which is searched first (pg_catalog.pg_sequences exists).

CREATE TABLE pgw_merchants (
	mid          TEXT    PRIMARY KEY,
	name         TEXT    NOT NULL,
	status       TEXT    NOT NULL CHECK (status IN ('ACTIVE', 'SUSPENDED', 'TERMINATED')),
	api_key_hash BLOB    NOT NULL UNIQUE,        -- SHA-256 of the API key
	api_key_hint TEXT    NOT NULL,               -- the key's last four characters, for support
	created_at   INTEGER NOT NULL,
	updated_at   INTEGER NOT NULL
) STRICT;

-- One contract per merchant.
CREATE TABLE pgw_contracts (
	mid          TEXT    PRIMARY KEY REFERENCES pgw_merchants (mid),
	bin_prefixes TEXT    NOT NULL,               -- comma-separated; '' allows every card
	fee_bps      INTEGER NOT NULL CHECK (fee_bps BETWEEN 0 AND 10000),
	max_amount   INTEGER NOT NULL CHECK (max_amount >= 0),   -- 0: no per-transaction maximum
	daily_limit  INTEGER NOT NULL CHECK (daily_limit >= 0),  -- 0: no daily limit
	updated_at   INTEGER NOT NULL
) STRICT;

-- Counters: merchant IDs (day '') and transaction IDs per business day.
CREATE TABLE pgw_sequences (
	name  TEXT    NOT NULL,
	day   TEXT    NOT NULL,
	value INTEGER NOT NULL,
	PRIMARY KEY (name, day)
) STRICT;

CREATE TABLE pgw_transactions (
	tid              TEXT    PRIMARY KEY,
	mid              TEXT    NOT NULL REFERENCES pgw_merchants (mid),
	order_no         TEXT    NOT NULL,
	product_name     TEXT    NOT NULL,
	amount           INTEGER NOT NULL CHECK (amount > 0),
	cancelled_amount INTEGER NOT NULL DEFAULT 0 CHECK (cancelled_amount >= 0 AND cancelled_amount <= amount),
	currency         TEXT    NOT NULL,
	status           TEXT    NOT NULL CHECK (status IN ('PENDING', 'APPROVED', 'DECLINED', 'FAILED',
	                                                  'CANCELLED', 'PART_REFUNDED', 'REFUNDED')),
	result_code      TEXT    NOT NULL,           -- of the approval
	result_detail    TEXT    NOT NULL DEFAULT '',
	approval_no      TEXT    NOT NULL DEFAULT '',
	masked_card      TEXT    NOT NULL,           -- 949010******5583
	fee_bps          INTEGER NOT NULL,
	buyer_enc        BLOB,                       -- version ‖ nonce ‖ AES-256-GCM(buyer JSON), AAD = tid
	issuer_state     TEXT    NOT NULL DEFAULT '',-- as the issuer last reported it
	pending_op       TEXT    NOT NULL DEFAULT '',-- the operation awaiting an answer
	biz_date         TEXT    NOT NULL,           -- YYYYMMDD in the PG's zone, for the daily limit
	created_at       INTEGER NOT NULL,
	approved_at      INTEGER,
	cancelled_at     INTEGER,
	updated_at       INTEGER NOT NULL
) STRICT;
-- An order has at most one live transaction; declined and failed attempts
-- may be retried under the same order number.
CREATE UNIQUE INDEX pgw_transactions_live_order ON pgw_transactions (mid, order_no)
	WHERE status NOT IN ('DECLINED', 'FAILED');
CREATE INDEX pgw_transactions_order ON pgw_transactions (mid, order_no);
CREATE INDEX pgw_transactions_day ON pgw_transactions (mid, biz_date);
CREATE INDEX pgw_transactions_time ON pgw_transactions (created_at);

-- Every call to the issuer gateway: the approval, cancels and refunds. An
-- operation keeps its gateway idempotency key for life, so that a retry
-- after a timeout can never charge twice.
CREATE TABLE pgw_operations (
	op_id           TEXT    PRIMARY KEY,
	tid             TEXT    NOT NULL REFERENCES pgw_transactions (tid),
	kind            TEXT    NOT NULL CHECK (kind IN ('approve', 'cancel', 'refund')),
	amount          INTEGER NOT NULL CHECK (amount > 0),
	reason          TEXT    NOT NULL DEFAULT '',
	gateway_key     TEXT    NOT NULL UNIQUE,
	status          TEXT    NOT NULL CHECK (status IN ('PENDING', 'DONE', 'REFUSED', 'FAILED')),
	result_code     TEXT    NOT NULL,
	result_detail   TEXT    NOT NULL DEFAULT '',
	sub_status      TEXT    NOT NULL DEFAULT '',
	request_id      TEXT    NOT NULL DEFAULT '',
	attempts        INTEGER NOT NULL DEFAULT 0,
	created_at      INTEGER NOT NULL,
	last_attempt_at INTEGER,
	done_at         INTEGER
) STRICT;
CREATE INDEX pgw_operations_tid ON pgw_operations (tid);
CREATE INDEX pgw_operations_pending ON pgw_operations (created_at) WHERE status = 'PENDING';

-- One row per (merchant, key): claimed, fingerprinted and answered in the
-- transaction that has the effect.
CREATE TABLE pgw_idempotency (
	mid           TEXT    NOT NULL,
	idem_key      TEXT    NOT NULL,
	operation     TEXT    NOT NULL,
	fingerprint   BLOB    NOT NULL,              -- HMAC-SHA256 of the parameters (card number included)
	tid           TEXT    NOT NULL DEFAULT '',
	op_id         TEXT    NOT NULL DEFAULT '',
	result_code   TEXT    NOT NULL DEFAULT '',   -- for refusals that created no operation
	result_detail TEXT    NOT NULL DEFAULT '',
	created_at    INTEGER NOT NULL,
	PRIMARY KEY (mid, idem_key)
) STRICT;

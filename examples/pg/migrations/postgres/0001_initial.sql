-- The simulated payment gateway's own tables (component "pg"), PostgreSQL
-- edition of migrations/sqlite/0001_initial.sql: the same tables, columns
-- and rules. The PG never stores a card number, only its masked form.
-- Tables are prefixed pgw_, not pg_: PostgreSQL reserves pg_ names for its
-- catalog, which is searched first (pg_catalog.pg_sequences exists).

CREATE TABLE pgw_merchants (
	mid          TEXT        PRIMARY KEY,
	name         TEXT        NOT NULL,
	status       TEXT        NOT NULL CHECK (status IN ('ACTIVE', 'SUSPENDED', 'TERMINATED')),
	api_key_hash BYTEA       NOT NULL UNIQUE,
	api_key_hint TEXT        NOT NULL,
	created_at   TIMESTAMPTZ NOT NULL,
	updated_at   TIMESTAMPTZ NOT NULL
);

CREATE TABLE pgw_contracts (
	mid          TEXT        PRIMARY KEY REFERENCES pgw_merchants (mid),
	bin_prefixes TEXT        NOT NULL,
	fee_bps      INTEGER     NOT NULL CHECK (fee_bps BETWEEN 0 AND 10000),
	max_amount   BIGINT      NOT NULL CHECK (max_amount >= 0),
	daily_limit  BIGINT      NOT NULL CHECK (daily_limit >= 0),
	updated_at   TIMESTAMPTZ NOT NULL
);

CREATE TABLE pgw_sequences (
	name  TEXT   NOT NULL,
	day   TEXT   NOT NULL,
	value BIGINT NOT NULL,
	PRIMARY KEY (name, day)
);

CREATE TABLE pgw_transactions (
	tid              TEXT        PRIMARY KEY,
	mid              TEXT        NOT NULL REFERENCES pgw_merchants (mid),
	order_no         TEXT        NOT NULL,
	product_name     TEXT        NOT NULL,
	amount           BIGINT      NOT NULL CHECK (amount > 0),
	cancelled_amount BIGINT      NOT NULL DEFAULT 0 CHECK (cancelled_amount >= 0 AND cancelled_amount <= amount),
	currency         TEXT        NOT NULL,
	status           TEXT        NOT NULL CHECK (status IN ('PENDING', 'APPROVED', 'DECLINED', 'FAILED',
	                                                      'CANCELLED', 'PART_REFUNDED', 'REFUNDED')),
	result_code      TEXT        NOT NULL,
	result_detail    TEXT        NOT NULL DEFAULT '',
	approval_no      TEXT        NOT NULL DEFAULT '',
	masked_card      TEXT        NOT NULL,
	fee_bps          INTEGER     NOT NULL,
	buyer_enc        BYTEA,
	issuer_state     TEXT        NOT NULL DEFAULT '',
	pending_op       TEXT        NOT NULL DEFAULT '',
	biz_date         TEXT        NOT NULL,
	created_at       TIMESTAMPTZ NOT NULL,
	approved_at      TIMESTAMPTZ,
	cancelled_at     TIMESTAMPTZ,
	updated_at       TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX pgw_transactions_live_order ON pgw_transactions (mid, order_no)
	WHERE status NOT IN ('DECLINED', 'FAILED');
CREATE INDEX pgw_transactions_order ON pgw_transactions (mid, order_no);
CREATE INDEX pgw_transactions_day ON pgw_transactions (mid, biz_date);
CREATE INDEX pgw_transactions_time ON pgw_transactions (created_at);

CREATE TABLE pgw_operations (
	op_id           TEXT        PRIMARY KEY,
	tid             TEXT        NOT NULL REFERENCES pgw_transactions (tid),
	kind            TEXT        NOT NULL CHECK (kind IN ('approve', 'cancel', 'refund')),
	amount          BIGINT      NOT NULL CHECK (amount > 0),
	reason          TEXT        NOT NULL DEFAULT '',
	gateway_key     TEXT        NOT NULL UNIQUE,
	status          TEXT        NOT NULL CHECK (status IN ('PENDING', 'DONE', 'REFUSED', 'FAILED')),
	result_code     TEXT        NOT NULL,
	result_detail   TEXT        NOT NULL DEFAULT '',
	sub_status      TEXT        NOT NULL DEFAULT '',
	request_id      TEXT        NOT NULL DEFAULT '',
	attempts        INTEGER     NOT NULL DEFAULT 0,
	created_at      TIMESTAMPTZ NOT NULL,
	last_attempt_at TIMESTAMPTZ,
	done_at         TIMESTAMPTZ
);
CREATE INDEX pgw_operations_tid ON pgw_operations (tid);
CREATE INDEX pgw_operations_pending ON pgw_operations (created_at) WHERE status = 'PENDING';

CREATE TABLE pgw_idempotency (
	mid           TEXT        NOT NULL,
	idem_key      TEXT        NOT NULL,
	operation     TEXT        NOT NULL,
	fingerprint   BYTEA       NOT NULL,
	tid           TEXT        NOT NULL DEFAULT '',
	op_id         TEXT        NOT NULL DEFAULT '',
	result_code   TEXT        NOT NULL DEFAULT '',
	result_detail TEXT        NOT NULL DEFAULT '',
	created_at    TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (mid, idem_key)
);

-- The simulated carrier's state (PostgreSQL twin of ../sqlite/0001_init.sql).
-- Times are TIMESTAMPTZ (sqlstore.Dialect.Time).

CREATE TABLE telecom_settings (
	name  TEXT PRIMARY KEY,
	value BYTEA NOT NULL
);

CREATE TABLE telecom_counters (
	name  TEXT PRIMARY KEY,
	value BIGINT NOT NULL
);
INSERT INTO telecom_counters (name, value) VALUES ('inbox', 0);

CREATE TABLE telecom_subscribers (
	phone           TEXT PRIMARY KEY,           -- E.164
	holder_name     TEXT NOT NULL,
	birth_date_hash BYTEA NOT NULL,              -- HMAC-SHA256, never the date
	status          TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'terminated')),
	created_at TIMESTAMPTZ NOT NULL,
	updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE telecom_senders (
	id             TEXT PRIMARY KEY,
	name           TEXT NOT NULL,
	api_key_hash   TEXT NOT NULL UNIQUE,        -- hex SHA-256 of the API key
	webhook_url    TEXT NOT NULL,
	webhook_secret BYTEA NOT NULL,
	created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE telecom_sender_numbers (
	sender_id TEXT NOT NULL REFERENCES telecom_senders (id) ON DELETE CASCADE,
	number    TEXT NOT NULL,                    -- sms.NormalizeCallerID
	position  INTEGER NOT NULL,
	PRIMARY KEY (sender_id, number)
);

CREATE TABLE telecom_messages (
	seq            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	id             TEXT NOT NULL UNIQUE,
	sender_id      TEXT NOT NULL REFERENCES telecom_senders (id),
	from_number    TEXT NOT NULL,
	to_phone       TEXT NOT NULL,
	body           TEXT NOT NULL,
	kind           TEXT NOT NULL,
	bytes          INTEGER NOT NULL,
	ref            TEXT,
	status         TEXT NOT NULL CHECK (status IN ('queued', 'delivered', 'failed')),
	failure_reason TEXT NOT NULL DEFAULT '',
	created_at TIMESTAMPTZ NOT NULL,
	deliver_at TIMESTAMPTZ NOT NULL,
	delivered_at TIMESTAMPTZ,
	inbox_seq      BIGINT UNIQUE,
	UNIQUE (sender_id, ref)
);
CREATE INDEX telecom_messages_inbox ON telecom_messages (to_phone, inbox_seq);
CREATE INDEX telecom_messages_due ON telecom_messages (status, deliver_at);

CREATE TABLE telecom_replies (
	seq            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	id             TEXT NOT NULL UNIQUE,
	from_phone     TEXT NOT NULL,
	to_number      TEXT NOT NULL,
	sender_id      TEXT NOT NULL REFERENCES telecom_senders (id),
	in_reply_to    TEXT NOT NULL REFERENCES telecom_messages (id),
	body           TEXT NOT NULL,
	received_at TIMESTAMPTZ NOT NULL,
	webhook_status TEXT NOT NULL,
	webhook_error  TEXT NOT NULL DEFAULT '',
	forwarded_at TIMESTAMPTZ
);
CREATE INDEX telecom_replies_phone ON telecom_replies (from_phone, seq);

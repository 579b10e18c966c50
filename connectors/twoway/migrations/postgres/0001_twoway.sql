-- 2-WAY transfers (KECIS §15.5) in the remitter's bank's database. Account
-- numbers and phone numbers are sealed (AES-GCM under the bank's at-rest
-- key, bound to the row), found by keyed hashes and shown masked; the code
-- is kept only as its random nonce and a keyed hash.
CREATE TABLE twoway_request (
    id                TEXT PRIMARY KEY,
    customer          TEXT NOT NULL,
    idempotency_key   TEXT NOT NULL,         -- '' when the remitter's page sent none
    version           INTEGER NOT NULL,
    state             TEXT NOT NULL,
    remitter_bank     TEXT NOT NULL,
    remitter_name     TEXT NOT NULL,
    remitter_ref      TEXT NOT NULL,         -- masked account: ****-1234
    amount            BIGINT NOT NULL,
    currency          TEXT NOT NULL,
    payee_bank        TEXT NOT NULL,
    payee_ref         TEXT NOT NULL,         -- masked account
    payee_account_mac BYTEA NOT NULL,
    payee_phone_mac   BYTEA NOT NULL,
    sealed            BYTEA NOT NULL,        -- both accounts and both phones
    purpose           TEXT NOT NULL,
    terms             TEXT NOT NULL,         -- JSON of kx:Terms, '' for none
    holder_name       TEXT NOT NULL,
    name_check        TEXT NOT NULL,
    nonce             BYTEA NOT NULL,
    code_mac          BYTEA NOT NULL,
    attempts          INTEGER NOT NULL,
    max_attempts      INTEGER NOT NULL,
    code_message      TEXT NOT NULL,         -- the gateway's id of the code's text
    deadline          TIMESTAMPTZ NOT NULL,
    confirmed_at      TIMESTAMPTZ NOT NULL,
    replied_at        TIMESTAMPTZ NOT NULL,
    reply_id          TEXT NOT NULL,
    debit_ref         TEXT NOT NULL,
    credit_ref        TEXT NOT NULL,
    reversal_done     BOOLEAN NOT NULL,
    reason            TEXT NOT NULL,
    notified          BOOLEAN NOT NULL,      -- true: nothing owed any more
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX twoway_request_key ON twoway_request (customer, idempotency_key) WHERE idempotency_key <> '';
-- Recover reads only the requests that still owe work.
CREATE INDEX twoway_request_open ON twoway_request (updated_at) WHERE NOT notified;
-- A reply finds its request by the message it answers, or by its sender.
CREATE INDEX twoway_request_message ON twoway_request (code_message) WHERE code_message <> '';
CREATE INDEX twoway_request_phone ON twoway_request (payee_phone_mac, created_at);

-- The evidence log: what happened to a request, append only. Details hold
-- masked numbers and texts with the code masked.
CREATE TABLE twoway_event (
    request_id TEXT NOT NULL REFERENCES twoway_request (id),
    seq        INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    at         TIMESTAMPTZ NOT NULL,
    detail     TEXT NOT NULL,
    reply_id   TEXT UNIQUE,                  -- a gateway's reply is judged once
    PRIMARY KEY (request_id, seq)
);

-- The provider adapter's own state: replay cache and idempotency records.
CREATE TABLE adapter_replay (
    issuer  TEXT NOT NULL,
    msg_id  TEXT NOT NULL,
    expires TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (issuer, msg_id)
);
CREATE INDEX adapter_replay_expires ON adapter_replay (expires);

CREATE TABLE adapter_idempotency (
    scope         TEXT NOT NULL,
    idem_key      TEXT NOT NULL,
    fingerprint   BYTEA NOT NULL,
    state         TEXT NOT NULL,          -- in_flight | done
    lease_expires TIMESTAMPTZ NOT NULL,
    outcome       BYTEA,                   -- sealed (AES-GCM) outcome, when done
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (scope, idem_key)
);

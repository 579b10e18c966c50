-- The provider adapter's own state: replay cache and idempotency records.
CREATE TABLE adapter_replay (
    issuer  TEXT NOT NULL,
    msg_id  TEXT NOT NULL,
    expires INTEGER NOT NULL,
    PRIMARY KEY (issuer, msg_id)
);
CREATE INDEX adapter_replay_expires ON adapter_replay (expires);

CREATE TABLE adapter_idempotency (
    scope         TEXT NOT NULL,
    idem_key      TEXT NOT NULL,
    fingerprint   BLOB NOT NULL,
    state         TEXT NOT NULL,          -- in_flight | done
    lease_expires INTEGER NOT NULL,
    outcome       BLOB,                   -- sealed (AES-GCM) outcome, when done
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (scope, idem_key)
);

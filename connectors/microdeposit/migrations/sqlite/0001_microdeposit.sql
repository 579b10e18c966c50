-- Micro-deposit verification sessions (KECIS §15.8.1). The account number
-- is sealed (AES-GCM under the verifier's at-rest key, bound to the row)
-- and found by a keyed hash; the amounts or the code are kept as a keyed
-- hash bound to the session, and sealed in pending_sealed only until the
-- deposits are credited (then empty).
CREATE TABLE microdeposit_session (
    id              TEXT PRIMARY KEY,
    verifier        TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    version         INTEGER NOT NULL,
    state           TEXT NOT NULL,
    variant         TEXT NOT NULL,
    bank            TEXT NOT NULL,
    account_ref     TEXT NOT NULL,          -- masked: ****-1234
    account_mac     BLOB NOT NULL,
    account_sealed  BLOB NOT NULL,
    user_mac        BLOB NOT NULL,
    memo            TEXT NOT NULL,          -- the verifier's name, without any code
    secret_mac      BLOB NOT NULL,
    pending_sealed  BLOB NOT NULL,
    deposits        INTEGER NOT NULL,
    credit1         TEXT NOT NULL,          -- the holder's bank's credit references, '' until credited
    credit2         TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    max_attempts    INTEGER NOT NULL,
    deadline        INTEGER NOT NULL,
    policy          TEXT NOT NULL,
    return_state    TEXT NOT NULL,
    refusal_code    TEXT NOT NULL,
    refusal_message TEXT NOT NULL,
    verified_at     INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE UNIQUE INDEX microdeposit_session_key ON microdeposit_session (verifier, idempotency_key);
-- Recover reads only the sessions that still owe work.
CREATE INDEX microdeposit_session_open ON microdeposit_session (deadline)
    WHERE state IN ('sending', 'awaiting') OR return_state = 'owed';
-- The per-account and per-user limits count recent sessions.
CREATE INDEX microdeposit_session_account ON microdeposit_session (account_mac, created_at);
CREATE INDEX microdeposit_session_user ON microdeposit_session (user_mac, created_at);

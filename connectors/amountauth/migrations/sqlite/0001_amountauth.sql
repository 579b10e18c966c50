-- Amount authentication sessions (KECIS §15.3) in the PG adapter's
-- database. The card is sealed (AES-GCM under the adapter's at-rest key);
-- the challenge is kept only as an HMAC; user and card are keyed hashes.
CREATE TABLE amountauth_session (
    id                TEXT PRIMARY KEY,
    merchant          TEXT NOT NULL,
    order_id          TEXT NOT NULL,
    version           INTEGER NOT NULL,
    state             TEXT NOT NULL,
    method            TEXT NOT NULL,
    amount            INTEGER NOT NULL,
    currency          TEXT NOT NULL,
    ceiling           INTEGER NOT NULL,
    challenge_mac     BLOB NOT NULL,
    card_sealed       BLOB NOT NULL,
    card_mac          BLOB NOT NULL,
    user_mac          BLOB,
    card_ref          TEXT NOT NULL,        -- masked: first six, last four
    issuer            TEXT NOT NULL,        -- the card issuer's entityID
    sub_merchant      TEXT NOT NULL,
    attempts          INTEGER NOT NULL,
    max_attempts      INTEGER NOT NULL,
    deadline          INTEGER NOT NULL,
    verify_approval   TEXT NOT NULL,        -- the verification approval's number, once known
    verify_done       INTEGER NOT NULL,     -- 1: voided (or refunded, or never approved)
    purchase_approval TEXT NOT NULL,
    refusal_code      TEXT NOT NULL,
    refusal_message   TEXT NOT NULL,
    result            BLOB,                 -- the signed kecis:AuthenticationResult (public)
    verified_at       INTEGER,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    UNIQUE (merchant, order_id)
);
-- The recovery run reads only the sessions that still owe work.
CREATE INDEX amountauth_session_open ON amountauth_session (deadline) WHERE verify_done = 0 OR state IN ('starting', 'processing');

-- A card's failed sessions of the last day (the guessing bound, KECIS §15.3.4).
CREATE INDEX amountauth_session_card ON amountauth_session (card_mac, updated_at);

CREATE TABLE amountauth_profile (
    merchant    TEXT NOT NULL,
    user_mac    BLOB NOT NULL,
    card_mac    BLOB NOT NULL,
    verified_at INTEGER NOT NULL,
    PRIMARY KEY (merchant, user_mac, card_mac)
);

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
    amount            BIGINT NOT NULL,
    currency          TEXT NOT NULL,
    ceiling           BIGINT NOT NULL,
    challenge_mac     BYTEA NOT NULL,
    card_sealed       BYTEA NOT NULL,
    card_mac          BYTEA NOT NULL,
    user_mac          BYTEA,
    card_ref          TEXT NOT NULL,        -- masked: first six, last four
    issuer            TEXT NOT NULL,        -- the card issuer's entityID
    sub_merchant      TEXT NOT NULL,
    attempts          INTEGER NOT NULL,
    max_attempts      INTEGER NOT NULL,
    deadline          TIMESTAMPTZ NOT NULL,
    verify_approval   TEXT NOT NULL,        -- the verification approval's number, once known
    verify_done       BOOLEAN NOT NULL,     -- true: voided (or refunded, or never approved)
    purchase_approval TEXT NOT NULL,
    refusal_code      TEXT NOT NULL,
    refusal_message   TEXT NOT NULL,
    result            BYTEA,                 -- the signed kecis:AuthenticationResult (public)
    verified_at       TIMESTAMPTZ,
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL,
    UNIQUE (merchant, order_id)
);
-- The recovery run reads only the sessions that still owe work.
CREATE INDEX amountauth_session_open ON amountauth_session (deadline) WHERE NOT verify_done OR state IN ('starting', 'processing');

-- A card's failed sessions of the last day (the guessing bound, KECIS §15.3.4).
CREATE INDEX amountauth_session_card ON amountauth_session (card_mac, updated_at);

CREATE TABLE amountauth_profile (
    merchant    TEXT NOT NULL,
    user_mac    BYTEA NOT NULL,
    card_mac    BYTEA NOT NULL,
    verified_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (merchant, user_mac, card_mac)
);

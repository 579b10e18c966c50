-- Cardholder-authentication transactions (KECIS §15.7) in the issuer's
-- database: one per SAMLRequest the page accepted, short-lived. No card
-- number, password, code or seed: the card's reference and its masked
-- number only; the browser's binding cookie as a SHA-256 hash.
CREATE TABLE cardauth_tx (
    id            TEXT PRIMARY KEY,      -- 128 random bits, base64url
    binding       BLOB NOT NULL,         -- SHA-256 of the browser's cookie
    version       INTEGER NOT NULL,      -- compare-and-set
    state         TEXT NOT NULL,         -- awaiting-card, awaiting-second-factor, done, failed, expired
    service       TEXT NOT NULL,
    requester     TEXT NOT NULL,         -- the caller's entityID (KECIS §13.1)
    request_id    TEXT NOT NULL,
    idem_key      TEXT NOT NULL,
    relay_state   TEXT NOT NULL,
    destination   TEXT NOT NULL,         -- the requester's HTTP-POST endpoint from metadata
    order_id      TEXT NOT NULL,
    amount        INTEGER NOT NULL,          -- minor units
    currency      TEXT NOT NULL,
    shop          TEXT NOT NULL,         -- Ecom/@Merchant, the shop's display name
    acquirer      TEXT NOT NULL,
    want_virtual  INTEGER NOT NULL,
    multi_use     INTEGER NOT NULL,
    merchant_lock INTEGER NOT NULL,
    vc_not_after  INTEGER,
    card_ref      TEXT NOT NULL,         -- the issuer's card reference, once the password matched
    card_masked   TEXT NOT NULL,
    factors       TEXT NOT NULL,         -- the policy's decision
    attempts      INTEGER NOT NULL,
    method        TEXT NOT NULL,         -- the method used, once done
    status_code   TEXT NOT NULL,         -- the outcome's status, once ended
    status_msg    TEXT NOT NULL,
    expires_at    INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    UNIQUE (requester, idem_key)
);
CREATE INDEX cardauth_tx_expires ON cardauth_tx (expires_at);

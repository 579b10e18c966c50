-- Cardholder authentication (KECIS §15.7), the issuer's cardholder CA and
-- the authentication values it checks at approval.
--
-- A card's authentication password (안심클릭) is an argon2id hash in the
-- PHC string form ($argon2id$v=19$m=…,t=…,p=…$salt$hash) of the password
-- keyed with the pepper; its TOTP seed (RFC 6238) is sealed like the PAN
-- (version ‖ nonce ‖ AES-256-GCM, AAD "totp:" ‖ card id). The failures of
-- both factors count towards one lock; each success clears its own.
ALTER TABLE issuer_cards ADD COLUMN auth_pw_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE issuer_cards ADD COLUMN totp_seed_enc BLOB;
ALTER TABLE issuer_cards ADD COLUMN totp_last_step INTEGER NOT NULL DEFAULT 0; -- the last time step accepted
ALTER TABLE issuer_cards ADD COLUMN auth_pw_failures INTEGER NOT NULL DEFAULT 0 CHECK (auth_pw_failures >= 0);
ALTER TABLE issuer_cards ADD COLUMN auth_totp_failures INTEGER NOT NULL DEFAULT 0 CHECK (auth_totp_failures >= 0);
ALTER TABLE issuer_cards ADD COLUMN auth_locked INTEGER NOT NULL DEFAULT 0 CHECK (auth_locked IN (0, 1));

-- The client certificates the issuer's cardholder CA issued: serial (hex)
-- to card, the SHA-256 of the certificate, and its revocation.
CREATE TABLE issuer_client_certs (
	serial      TEXT    PRIMARY KEY,
	card_id     TEXT    NOT NULL REFERENCES issuer_cards (id),
	fingerprint BLOB    NOT NULL,
	not_after   INTEGER NOT NULL,
	issued_at   INTEGER NOT NULL,
	revoked_at  INTEGER
) STRICT;
CREATE INDEX issuer_client_certs_card ON issuer_client_certs (card_id);
CREATE INDEX issuer_client_certs_revoked ON issuer_client_certs (revoked_at) WHERE revoked_at IS NOT NULL;

-- The authentication values (AAV) approvals used: single use, recorded in
-- the approval's transaction; pruned some time after they expire.
CREATE TABLE issuer_auth_values (
	id         TEXT    PRIMARY KEY,
	expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX issuer_auth_values_expiry ON issuer_auth_values (expires_at);

-- An approval made with a virtual number (KECIS §15.4) keeps it masked;
-- the card is the real one (card_id), never its number.
ALTER TABLE issuer_approvals ADD COLUMN virtual_masked TEXT NOT NULL DEFAULT '';

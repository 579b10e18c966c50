-- Virtual card numbers (KECIS §15.4) in the issuer's database.
--
-- vcn_pool is the paper's per-BIN, per-day counter: the n-th number of the
-- day takes the pool index (accumulated + seed_count × seed) mod pool_size,
-- seed prime to pool_size; the serial is that index under a keyed
-- permutation. One row per virtual BIN and day of issue (in the issuer's
-- time zone), updated atomically by every issuance.
CREATE TABLE vcn_pool (
    bin         TEXT NOT NULL,
    day         TEXT NOT NULL,          -- YYYY-MM-DD in the issuer's time zone
    pool_size   INTEGER NOT NULL,
    seed        INTEGER NOT NULL,
    accumulated INTEGER NOT NULL,
    seed_count  INTEGER NOT NULL,       -- pool indices drawn today
    total_count INTEGER NOT NULL,       -- numbers issued today
    created_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (bin, day)
);

-- vcn_number maps a virtual number to the real card. Neither number is
-- stored in clear: the virtual number only as a keyed hash (the primary
-- key: the database refuses a second live row for one number), the real
-- one sealed and as a keyed hash. A row whose expiry has passed may be
-- deleted, and its number issued again.
CREATE TABLE vcn_number (
    number_mac      BYTEA PRIMARY KEY,
    bin             TEXT NOT NULL,
    day             TEXT NOT NULL,
    real_sealed     BYTEA NOT NULL,
    real_mac        BYTEA NOT NULL,
    card_ref        TEXT NOT NULL,
    card_type       TEXT NOT NULL,
    single_use      BOOLEAN NOT NULL,
    merchant        TEXT NOT NULL,      -- '' = any merchant
    max_amount      BIGINT NOT NULL,    -- minor units, 0 = no cap
    currency        TEXT NOT NULL,      -- '' = any currency
    not_on_or_after TIMESTAMPTZ NOT NULL,
    issued_at       TIMESTAMPTZ NOT NULL,
    uses            INTEGER NOT NULL,
    used_at         TIMESTAMPTZ,
    revoked_at      TIMESTAMPTZ
);
CREATE INDEX vcn_number_real ON vcn_number (real_mac);
CREATE INDEX vcn_number_expiry ON vcn_number (not_on_or_after);

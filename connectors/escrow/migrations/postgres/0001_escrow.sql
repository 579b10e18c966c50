-- Escrows and collects (KECIS §15.6, §15.8) in the holder bank's adapter
-- database. Account numbers are sealed (AES-GCM under the bank's at-rest
-- key, bound to the row) and shown masked; the money itself is in the
-- bank's ledger.
CREATE TABLE escrow_order (
    reference        TEXT PRIMARY KEY,      -- the bank's reference, ES + 16 base32 characters
    merchant         TEXT NOT NULL,         -- the caller's entityID, the owner
    order_id         TEXT NOT NULL,         -- the merchant's Ecom/@ConsumerOrderID
    hold             BOOLEAN NOT NULL,      -- true: escrow; false: transfer:collect
    amount           BIGINT NOT NULL,       -- minor units
    currency         TEXT NOT NULL,
    goods            BOOLEAN NOT NULL,      -- shipped goods (Ecom/ShipTo)
    state            TEXT NOT NULL,
    version          INTEGER NOT NULL,      -- compare-and-set
    settlement_bank  TEXT NOT NULL,
    settlement_ref   TEXT NOT NULL,         -- masked: ****-1234
    payee_name       TEXT NOT NULL,
    buyer            TEXT NOT NULL,         -- the paying customer, '' before payment
    buyer_ref        TEXT NOT NULL,         -- masked
    sealed           BYTEA NOT NULL,        -- both account numbers
    carrier          TEXT NOT NULL,
    tracking         TEXT NOT NULL,
    pay_by           TIMESTAMPTZ NOT NULL,
    shipped_at       TIMESTAMPTZ NOT NULL,
    confirm_by       TIMESTAMPTZ NOT NULL,
    reason           TEXT NOT NULL,
    auto             BOOLEAN NOT NULL,
    resolver         TEXT NOT NULL,
    owed             TEXT NOT NULL,         -- the ledger call owed: '', fund, release, refund
    payments         INTEGER NOT NULL,      -- payments tried: the funding key's number
    fund_ref         TEXT NOT NULL,
    release_ref      TEXT NOT NULL,
    refund_ref       TEXT NOT NULL,
    attempts         INTEGER NOT NULL,
    retry_at         TIMESTAMPTZ NOT NULL,
    open_key         TEXT NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX escrow_order_merchant ON escrow_order (merchant, order_id);
CREATE INDEX escrow_order_buyer ON escrow_order (buyer, created_at) WHERE buyer <> '';
-- The sweep reads only the escrows that may owe work.
CREATE INDEX escrow_order_due ON escrow_order (state) WHERE owed <> '' OR state IN ('awaiting-payment', 'shipped');

-- The event table: one row per state change (and per completed ledger
-- call), append only, each with the bank's signed record.
CREATE TABLE escrow_event (
    reference  TEXT NOT NULL REFERENCES escrow_order (reference),
    seq        INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    from_state TEXT NOT NULL,
    to_state   TEXT NOT NULL,
    at         TIMESTAMPTZ NOT NULL,
    actor      TEXT NOT NULL,
    detail     TEXT NOT NULL,               -- JSON, masked numbers only
    record     BYTEA NOT NULL,              -- signed kecis:EscrowRecord
    PRIMARY KEY (reference, seq)
);
CREATE FUNCTION escrow_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'escrow_event is append-only';
END
$$;
CREATE TRIGGER escrow_event_no_change BEFORE UPDATE OR DELETE ON escrow_event
	FOR EACH ROW EXECUTE FUNCTION escrow_event_append_only();

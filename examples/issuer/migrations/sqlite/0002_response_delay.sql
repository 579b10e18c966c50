-- A card the issuer's host answers slowly: how long it takes before it
-- decides an approval (0: at once). The demo's "issuer timeout" test card
-- answers beyond the hub's relay timeout, so that its payment is Pending
-- until an inquiry finds the approval.
ALTER TABLE issuer_cards ADD COLUMN response_delay_ms INTEGER NOT NULL DEFAULT 0 CHECK (response_delay_ms >= 0);

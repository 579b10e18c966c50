-- A verification approval (KECIS §15.2 approve-verification, §15.3): an
-- approval like any other on the card's limit and in the ledger, whose
-- amount is the cardholder's one-time password; a refund of it may name
-- no amount and refunds it whole.
ALTER TABLE issuer_approvals ADD COLUMN verification INTEGER NOT NULL DEFAULT 0 CHECK (verification IN (0, 1));

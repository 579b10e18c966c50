-- A settlement batch's approvals by batch: the settlement job totals its
-- new batch, and deleting an empty batch checks that no approval refers
-- to it; both read every approval without this index, a cost that grew
-- with the ledger.
CREATE INDEX issuer_approvals_batch ON issuer_approvals (batch_id);

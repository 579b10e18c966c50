-- The escrow holding account (KECIS §15.6): money a buyer paid into an
-- escrow stays in the bank's own account of kind 'escrow' until it is
-- released to the seller's settlement account or refunded to the buyer;
-- its journals are escrow_fund (buyer → escrow), escrow_release (escrow →
-- a settlement account at this bank; to another bank it is a send_out
-- from the escrow account) and escrow_refund (escrow → buyer).
ALTER TABLE bank_accounts DROP CONSTRAINT bank_accounts_kind_check;
ALTER TABLE bank_accounts ADD CONSTRAINT bank_accounts_kind_check
	CHECK (kind IN ('customer', 'cash', 'clearing', 'escrow'));
ALTER TABLE bank_journals DROP CONSTRAINT bank_journals_kind_check;
ALTER TABLE bank_journals ADD CONSTRAINT bank_journals_kind_check
	CHECK (kind IN ('deposit', 'transfer', 'send_out', 'credit_in', 'reverse_out',
		'escrow_fund', 'escrow_release', 'escrow_refund'));

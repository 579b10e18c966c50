package bank_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/kecis/kecis/connectors/sqlstore"
	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/examples/bank"
	"github.com/kecis/kecis/internal/testutil"
)

// escrowBook checks, after every step of an escrow test, the bank's
// double-entry invariants, that all its accounts still sum to zero (no
// movement made or lost money) and that the escrow holding account holds
// exactly what the test has open in escrow (KECIS §15.6).
type escrowBook struct {
	e    *env
	open int64
}

func (k *escrowBook) check(step string) {
	k.e.t.Helper()
	rep := k.e.checkLedger()
	var total int64
	if err := k.e.bk.DB().QueryRowContext(ctx, `SELECT COALESCE(SUM(balance), 0) FROM bank_accounts`).Scan(&total); err != nil {
		k.e.t.Fatal(err)
	}
	if total != 0 {
		k.e.t.Fatalf("%s: the bank's accounts sum to %d, not 0", step, total)
	}
	held, err := k.e.bk.EscrowHeld(ctx)
	if err != nil {
		k.e.t.Fatal(err)
	}
	if held != k.open || rep.Escrow != k.open {
		k.e.t.Fatalf("%s: escrow holding account %d (ledger report %d), open escrows %d", step, held, rep.Escrow, k.open)
	}
}

// TestEscrowHolding funds, releases (within the bank and to another bank,
// a refused one reversed into the holding account) and refunds escrows,
// with retries, conflicts and refusals, and checks the ledger after every
// step: the holding account's balance equals the sum of open escrows and
// the bank's accounts always sum to zero.
func TestEscrowHolding(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn dsnFunc) {
		e := newEnv(t, dsn)
		k := &escrowBook{e: e}
		buyer, ba := e.customer("홍길동", "hong", "010-2345-6789", 500_000)
		_, sa := e.customer("상점", "shop", "010-3456-7890", 0)
		other, oa := e.customer("김영희", "kim", "010-4567-8901", 10_000)
		k.check("start")

		fund := func(key string, acct ecml.Secret, amount int64) (*bank.Movement, error) {
			return e.bk.EscrowFund(ctx, bank.EscrowFundRequest{CustomerID: buyer.ID, Account: acct, Amount: krw(amount),
				Payee: "KECIS 상점", Reference: "ESC-" + key, IdempotencyKey: key})
		}
		m, err := fund("f1", ba.Number, 150_000)
		if err != nil {
			t.Fatal(err)
		}
		k.open += 150_000
		k.check("fund")
		if m.Balance != 350_000 || m.Kind != "escrow_fund" || m.AccountID != ba.ID || m.Replayed {
			t.Fatalf("fund movement %+v", m)
		}
		// A retry returns the first outcome and moves nothing.
		again, err := fund("f1", ba.Number, 150_000)
		if err != nil || !again.Replayed || again.JournalID != m.JournalID || again.AccountID != ba.ID {
			t.Fatalf("retry: %+v %v", again, err)
		}
		k.check("retry")
		_, err = fund("f1", ba.Number, 140_000)
		wantCode(t, err, bank.CodeIdempotencyConflict)
		// Another customer's account, an unknown one, a short balance, the limit.
		_, err = fund("f-other", oa.Number, 1_000)
		wantCode(t, err, bank.CodeNotFound)
		_, err = fund("f-none", "110-000-000000", 1_000)
		wantCode(t, err, bank.CodeNotFound)
		_, err = fund("f-short", ba.Number, 400_000)
		wantCode(t, err, bank.CodeInsufficientFunds)
		_, err = e.bk.EscrowFund(ctx, bank.EscrowFundRequest{CustomerID: other.ID, Account: oa.Number, Amount: krw(20_000),
			Reference: "ESC-o", IdempotencyKey: "f-o"})
		wantCode(t, err, bank.CodeInsufficientFunds)
		k.check("refusals")
		if e.balance(ba.ID) != 350_000 || e.balance(oa.ID) != 10_000 {
			t.Fatalf("balances after refusals: %d %d", e.balance(ba.ID), e.balance(oa.ID))
		}

		if _, err := fund("f2", ba.Number, 30_000); err != nil {
			t.Fatal(err)
		}
		k.open += 30_000
		k.check("fund 2")

		// Release the first to the seller at this bank.
		rel := bank.EscrowReleaseRequest{ToNumber: sa.Number, Amount: krw(150_000), Payer: "홍길동", Reference: "ESC-f1",
			IdempotencyKey: "r1"}
		r, err := e.bk.EscrowRelease(ctx, rel)
		if err != nil || r.JournalID == "" || r.Outgoing != nil {
			t.Fatalf("release: %+v %v", r, err)
		}
		k.open -= 150_000
		k.check("release")
		if r2, err := e.bk.EscrowRelease(ctx, rel); err != nil || !r2.Replayed || r2.JournalID != r.JournalID {
			t.Fatalf("release retry: %+v %v", r2, err)
		}
		k.check("release retry")
		if e.balance(sa.ID) != 150_000 {
			t.Fatalf("seller balance %d", e.balance(sa.ID))
		}
		// An unknown settlement account at this bank moves nothing.
		_, err = e.bk.EscrowRelease(ctx, bank.EscrowReleaseRequest{ToBank: code, ToNumber: "110-000-000000", Amount: krw(30_000),
			Reference: "ESC-f2", IdempotencyKey: "r-none"})
		wantCode(t, err, bank.CodeNoSuchAccount)
		// More than the holding account holds: refused, nothing moved.
		if _, err := e.bk.EscrowRelease(ctx, bank.EscrowReleaseRequest{ToNumber: sa.Number, Amount: krw(30_001),
			Reference: "ESC-x", IdempotencyKey: "r-x"}); err == nil {
			t.Fatal("released more than held")
		}
		k.check("refused releases")

		// Refund the second to the buyer.
		ref := bank.EscrowRefundRequest{CustomerID: buyer.ID, Account: ba.Number, Amount: krw(30_000), Payee: "KECIS 상점",
			Reference: "ESC-f2", IdempotencyKey: "rf2"}
		rm, err := e.bk.EscrowRefund(ctx, ref)
		if err != nil || rm.Kind != "escrow_refund" || rm.Balance != 350_000 {
			t.Fatalf("refund: %+v %v", rm, err)
		}
		k.open -= 30_000
		k.check("refund")
		if rm2, err := e.bk.EscrowRefund(ctx, ref); err != nil || !rm2.Replayed || rm2.AccountID != ba.ID {
			t.Fatalf("refund retry: %+v %v", rm2, err)
		}
		_, err = e.bk.EscrowRefund(ctx, bank.EscrowRefundRequest{CustomerID: buyer.ID, Account: oa.Number, Amount: krw(1),
			Reference: "ESC-y", IdempotencyKey: "rf-other"})
		wantCode(t, err, bank.CodeNotFound)
		k.check("refund retry")

		// A release to another bank leaves the holding account for the
		// clearing account; refused there, it comes back; sent again under
		// a new key and credited, it is gone.
		if _, err := fund("f3", ba.Number, 70_000); err != nil {
			t.Fatal(err)
		}
		k.open += 70_000
		k.check("fund 3")
		out := bank.EscrowReleaseRequest{ToBank: otherA, ToNumber: "004-11-778899", ToHolder: "박민수", Amount: krw(70_000),
			Reference: "ESC-f3", IdempotencyKey: "r3"}
		r, err = e.bk.EscrowRelease(ctx, out)
		if err != nil || r.Outgoing == nil || r.Outgoing.Status != bank.OutgoingSent || r.Outgoing.AccountID != "escrow" {
			t.Fatalf("release out: %+v %v", r, err)
		}
		k.open -= 70_000
		k.check("release out")
		if rep := e.checkLedger(); rep.Clearing[otherA] != 70_000 {
			t.Fatalf("clearing %v", rep.Clearing)
		}
		if _, err := e.bk.ReverseOut(ctx, bank.ReverseOutRequest{Reference: r.Outgoing.Reference, Reason: "no such account",
			IdempotencyKey: "rv3"}); err != nil {
			t.Fatal(err)
		}
		k.open += 70_000
		k.check("reversed")
		out.IdempotencyKey = "r3b"
		r, err = e.bk.EscrowRelease(ctx, out)
		if err != nil || r.Outgoing == nil {
			t.Fatalf("release out again: %+v %v", r, err)
		}
		k.open -= 70_000
		if _, err := e.bk.ConfirmOut(ctx, r.Outgoing.Reference, "C00000000001"); err != nil {
			t.Fatal(err)
		}
		k.check("credited")
		if r2, err := e.bk.EscrowRelease(ctx, out); err != nil || !r2.Replayed || r2.Outgoing.Status != bank.OutgoingCredited {
			t.Fatalf("release out retry: %+v %v", r2, err)
		}
		k.check("release out retry")

		secrets := []string{"004-11-778899", "00411778899", "110-000-000000", "110000000000"}
		for _, n := range []ecml.Secret{ba.Number, sa.Number, oa.Number} {
			d, _ := ecml.AccountDigits(n.Reveal())
			secrets = append(secrets, n.Reveal(), d)
		}
		if testutil.AssertNoSecretsInRows(t, e.bk.DB().DB, nil, secrets...) == 0 {
			t.Fatal("no rows read")
		}
		for _, s := range secrets {
			if strings.Contains(e.logs.String(), s) {
				t.Errorf("the log holds an account number")
			}
		}
	})
}

// TestEscrowMigrationKeepsRows upgrades a SQLite database of the first
// schema holding customers, accounts, journals, entries and transfers in
// and out: the second migration rebuilds the tables (SQLite cannot change
// a CHECK constraint) and keeps every row, the ledger balanced, the
// entries' sequence and the foreign keys; an escrow then funds on it.
func TestEscrowMigrationKeepsRows(t *testing.T) {
	dsn := sqltest.TestSQLiteDSN(t)
	db, err := sqlstore.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := sqlstore.LoadMigrations(os.DirFS("migrations"), "sqlite")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Migrate(ctx, bank.Component, ms[:1]); err != nil {
		t.Fatal(err)
	}
	// One customer account funded from cash, which sent 1,000 to bank 004
	// and received 2,000 from it, as the first schema's bank wrote them.
	for _, q := range []string{
		`INSERT INTO bank_customers VALUES ('cus_1', '홍길동', '010-2345-6789', 'hong', 'x', 0, 0, 1, 1)`,
		`INSERT INTO bank_accounts VALUES ('acc_1', 'customer', 'cus_1', '', X'01', X'02', '4444', 'KRW', 11000, 'active', 100000, 1, 1)`,
		`INSERT INTO bank_accounts VALUES ('cash', 'cash', NULL, '', NULL, NULL, '', 'KRW', -10000, 'active', 0, 1, 1)`,
		`INSERT INTO bank_accounts VALUES ('clr_004', 'clearing', NULL, '004', NULL, NULL, '', 'KRW', -1000, 'active', 0, 1, 1)`,
		`INSERT INTO bank_journals VALUES ('jnl_1', 'deposit', 10000, 'KRW', '', 1), ('jnl_2', 'send_out', 1000, 'KRW', '', 2),
			('jnl_3', 'credit_in', 2000, 'KRW', '', 3)`,
		`INSERT INTO bank_entries (journal_id, account_id, amount, balance_after, counterparty, created_at) VALUES
			('jnl_1', 'acc_1', 10000, 10000, '', 1), ('jnl_1', 'cash', -10000, -10000, '', 1),
			('jnl_2', 'acc_1', -1000, 9000, '', 2), ('jnl_2', 'clr_004', 1000, 1000, '', 2),
			('jnl_3', 'clr_004', -2000, -1000, '', 3), ('jnl_3', 'acc_1', 2000, 11000, '', 3)`,
		`INSERT INTO bank_outgoing (id, account_id, to_bank, to_number_enc, to_last4, amount, currency, status, journal_id, created_at, updated_at)
			VALUES ('tro_1', 'acc_1', '004', X'03', '9999', 1000, 'KRW', 'sent', 'jnl_2', 2, 2)`,
		`INSERT INTO bank_incoming (id, from_bank, reference, fingerprint, account_id, amount, currency, journal_id, created_at)
			VALUES ('C1', '004', 'T1', X'04', 'acc_1', 2000, 'KRW', 'jnl_3', 3)`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	e := newEnv(t, func(testing.TB) string { return dsn })
	rep := e.checkLedger()
	if rep.Journals != 3 || rep.Entries != 6 || rep.Accounts != 3 || rep.Customers != 11000 || rep.Clearing["004"] != -1000 {
		t.Fatalf("after the migration: %+v", rep)
	}
	if o, err := e.bk.OutgoingTransfer(ctx, "tro_1"); err != nil || o.Balance != 9000 {
		t.Fatalf("outgoing after the migration: %+v %v", o, err)
	}
	var fk int
	if err := e.bk.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM pragma_foreign_key_check`).Scan(&fk); err != nil || fk != 0 {
		t.Fatalf("foreign key check: %d %v", fk, err)
	}
	c, a := e.customer("김영희", "kim", "010-3456-7890", 5_000)
	if _, err := e.bk.EscrowFund(ctx, bank.EscrowFundRequest{CustomerID: c.ID, Account: a.Number, Amount: krw(5_000),
		Reference: "ESC-1", IdempotencyKey: "f1"}); err != nil {
		t.Fatal(err)
	}
	var maxID int64
	if err := e.bk.DB().QueryRowContext(ctx, `SELECT MAX(id) FROM bank_entries`).Scan(&maxID); err != nil || maxID != 10 {
		t.Fatalf("entries' last id %d %v, want 10", maxID, err)
	}
	if rep := e.checkLedger(); rep.Escrow != 5_000 {
		t.Fatalf("escrow held %d", rep.Escrow)
	}
}

// TestEscrowFundConcurrent: twelve payments into escrow at once from one
// account that covers five, and each retried at once under its key: five
// are taken, once each, the others refused INSUFFICIENT_FUNDS; the
// account never goes below zero and the holding account holds exactly
// the five.
func TestEscrowFundConcurrent(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn dsnFunc) {
		e := newEnv(t, dsn)
		c, a := e.customer("홍길동", "hong", "010-2345-6789", 50_000)
		type result struct {
			m   *bank.Movement
			err error
		}
		out := make(chan result, 24)
		for i := range 12 {
			for range 2 {
				go func() {
					m, err := e.bk.EscrowFund(ctx, bank.EscrowFundRequest{CustomerID: c.ID, Account: a.Number, Amount: krw(10_000),
						Reference: fmt.Sprintf("ESC-%d", i), IdempotencyKey: fmt.Sprintf("f%d", i)})
					out <- result{m, err}
				}()
			}
		}
		journals := map[string]int{}
		refused := 0
		for range 24 {
			r := <-out
			switch {
			case r.err == nil:
				journals[r.m.JournalID]++
			case bank.CodeOf(r.err) == bank.CodeInsufficientFunds:
				refused++
			default:
				t.Fatal(r.err)
			}
		}
		if len(journals) != 5 || refused != 14 {
			t.Fatalf("%d payments taken (%v), %d refusals; want 5 taken twice each and 14 refusals", len(journals), journals, refused)
		}
		for j, n := range journals {
			if n != 2 {
				t.Errorf("journal %s answered %d times, want 2 (the call and its retry)", j, n)
			}
		}
		(&escrowBook{e: e, open: 50_000}).check("concurrent funding")
		if e.balance(a.ID) != 0 {
			t.Fatalf("balance %d", e.balance(a.ID))
		}
	})
}

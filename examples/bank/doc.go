// Package bank is a simulated Korean bank with its own native API and
// database — the provider that a KECIS adapter (kecisadapter) is mounted
// next to for the transfer and account services (KECIS §15.8 transfer:
// credit, inquire; §15.9 account: holder inquiry), and the remitter's bank
// of the 2-WAY transfer (KECIS §15.5), and the escrow holder (KECIS §15.6).
// It contains no KECIS protocol code.
// A demonstration runs two of them, one per bank code, each on its own
// database, so that transfers cross banks through the hub.
//
// # State
//
// Everything lives in the bank's own database (SQLite or PostgreSQL through
// connectors/sqlstore; embedded migrations, component "bank"):
//
//   - customers: name, registered phone (the SMS go there), login and an
//     argon2id password hash (internal/passwordhash, keyed with the
//     pepper), locked after Config.MaxLoginFailures wrong passwords in a
//     row until UnlockCustomer;
//   - accounts: the number only as AES-256-GCM ciphertext bound to the
//     row and a keyed hash to find it by, the last four digits in clear,
//     KRW balance, status (active/closed), per-transfer limit; and the
//     bank's own accounts: cash (what funds deposits) and one clearing
//     account per counter-party bank, and the escrow holding account
//     (escrow.go: what buyers paid into escrows until release or refund,
//     KECIS §15.6);
//   - a double-entry ledger: every movement is a journal of balanced
//     entries (they sum to zero), each entry with the balance after it, so
//     that each account's balance is the sum of its entries (CheckLedger);
//   - transfers out to other banks (sent, credited, reversed) and credits
//     in from them, one per (bank, reference);
//   - idempotency records, one per (client, key); the SMS outbox.
//
// # Rules
//
// Every mutation takes an idempotency key: the key's record is claimed,
// the effect made, its outcome and its SMS outbox row written in one
// transaction, so a repeat with the same parameters returns the first
// outcome without a second effect, and a reuse with other parameters is
// IDEMPOTENCY_CONFLICT. A debit is a conditional UPDATE (balance ≥
// amount) inside that transaction: concurrent debits, from one process or
// several sharing the database, never overdraw an account
// (INSUFFICIENT_FUNDS). An account's per-transfer limit bounds what leaves
// it (LIMIT_EXCEEDED); Config.MaxCredit what another bank may credit in
// one transfer.
//
// An account unknown, closed or not at this bank is NO_SUCH_ACCOUNT, one
// answer for all (KECIS §15.8: credit is no oracle of accounts; §15.9).
//
// No account number or password appears in clear in a log line, an error,
// a stored row or an SMS: requests carry them as ecml.Secret, which prints
// masked; rows, logs and texts show the last four digits.
//
// # Use
//
//	bk, err := bank.Open(ctx, bank.Config{BankCode: "081", DSN: "sqlite:/var/lib/bank.db", DataKey: k, Pepper: p})
//	c, err := bk.NewCustomer(ctx, bank.NewCustomerRequest{…})
//	a, err := bk.OpenAccount(ctx, bank.OpenAccountRequest{CustomerID: c.ID, IdempotencyKey: "…"})
//	o, err := bk.SendOut(ctx, bank.SendOutRequest{…}) // then transfer:credit at the payee's bank
//	srv := httpserver.New(bk.Handler(), httpserver.Limits{}, log)
//
// The Go API is what a KECIS adapter and the 2-WAY engine call; Handler is
// the bank's own HTTP API, customer page and admin page.
package bank

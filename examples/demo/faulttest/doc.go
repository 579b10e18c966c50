// Package faulttest holds the multi-process tests of the hub under faults:
// the demo federation with its hub on PostgreSQL, and beside it two or
// three `kecis serve` replicas (the binary, built once per run) on the
// same database, driven through the JSON facade by a small load driver
// that retries with the same Idempotency-Key round robin over the replicas.
// Each test kills a replica, restarts or write-protects the database or
// breaks a provider while the load runs, and ends by reconciling every
// acknowledged approval against the issuer's ledger: none lost, none
// doubled (docs/hub.md, "Replicas"). Everything runs on loopback, each test
// within a minute; the PostgreSQL restart runs a private cluster the test
// creates, never the machine's shared one. Beside them, the amount-
// authentication crash matrix (aacrash_test.go) SIGKILLs the PG adapter's
// AA engine — a child process, this test binary re-executed — at every
// step of its flows and checks the issuer's ledger after its recovery; the
// 2-WAY crash matrix (twowaycrash_test.go) does the same to bank A's 2-WAY
// engine at every step of a transfer to bank B and checks both banks'
// ledgers and the texts sent.
//
// The package has no code of its own: it is wiring (the demo, the hub's
// binary, the issuer's ledger) under test.
package faulttest

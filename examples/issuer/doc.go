// Package issuer is a simulated Korean card company (card issuer) with its
// own native API — the provider that a KECIS adapter is later mounted next
// to (KECIS §15.2, the "card" group: approve, also Korean key-in; cancel
// until settlement; partial refunds never above the approved amount;
// inquire; idempotent). It contains no KECIS protocol code.
//
// # State
//
// Everything lives in the issuer's own database (SQLite by default,
// PostgreSQL too, through connectors/sqlstore; migrations are embedded, the
// component is "issuer"):
//
//   - cards: the number only as AES-256-GCM ciphertext and a keyed hash to
//     find it by, BIN and last four digits in clear, expiry, status
//     (active/blocked/lost), type (credit/check/prepaid), the two leading
//     password digits and the birth date as keyed salted hashes, holder
//     name and phone, limit and available limit (a check card's linked
//     balance), consecutive key-in failures, and the time the host takes
//     to decide on the card (0 but for a test card: SetCardResponseDelay
//     simulates a slow host, whose caller times out and must inquire);
//     and its cardholder-authentication credentials (below);
//   - the approvals ledger with refunds, declines and settlement batches;
//     an approval made with a virtual number keeps the card's ID and the
//     virtual number masked;
//   - the client certificates of its cardholder CA (serial → card,
//     fingerprint, revocation), the authentication values approvals used,
//     and the virtual numbers (connectors/vcn, component "vcn");
//   - idempotency records, one per (client, key);
//   - the SMS outbox.
//
// # Rules
//
// Approve takes the amount from the available limit with a conditional
// UPDATE (available >= amount) inside the transaction, so concurrent
// approvals, from one process or from several sharing the database, never
// overspend. Declines are *Error values with the codes DECLINED,
// INSUFFICIENT_FUNDS, INVALID_CARD, EXPIRED, LIMIT_EXCEEDED and
// AUTHENTICATION_FAILED; wrong key-in data is INVALID_CARD, and
// Config.MaxKeyInFailures (5) in a row block the card.
//
// Each approval belongs to the first daily cut-off after it (Config.CutOff,
// 23:00 KST by default). Before it, Cancel voids the approval and restores
// the limit; from it on the approval is settled (Settle, the settlement
// job, writes it into a batch), Cancel answers ALREADY_SETTLED, and Refund
// refunds it in parts, never above the approved amount, restoring the
// limit by each part.
//
// ApproveVerification makes a verification approval for amount
// authentication (KECIS §15.3): an approval as Approve makes one, on the
// limit and in the ledger, marked as such, of a small secret amount (at
// most the caller's ceiling and Config.MaxVerificationAmount, 50,000 KRW by
// default) that the cardholder reads in the approval SMS — with a
// descriptor code after the merchant name when one is given — and types
// back to the PG. No log line shows its amount or code; after the cut-off
// a refund naming no amount refunds it whole.
//
// Every mutation takes an idempotency key: the key is looked up, the
// effect made and the key's record written with the outcome in one
// transaction (a concurrent use of the key fails that write and sees the
// committed record when it runs again), so a repeat
// with the same parameters returns the original outcome (the same approval,
// or the same decline) without a second effect, and a reuse with other
// parameters is IDEMPOTENCY_CONFLICT.
//
// Every approval, cancel and refund queues a cardholder SMS in the same
// transaction ("[KECIS Card] 승인 15,000원 Example Shop 11/22 19:00 (1111)"),
// leased for its first attempt; it is sent right after commit and, if the
// Notifier fails, retried by DeliverNotifications with backoff. Its 'sent'
// state rides in the next write transaction, so that a request commits
// once (Config.SMSRecordDelay); a crash before it is written sends the SMS
// again after its lease. A failing Notifier never undoes a committed
// approval.
//
// # Cardholder authentication (KECIS §15.7)
//
// The issuer authenticates its cardholders for its own authentication
// page (connectors/cardauth, through kecisadapter's Cardholders):
//
//   - the authentication password (안심클릭; not the four-digit card
//     password of key-in), set with IssueCardRequest.AuthPassword: an
//     argon2id hash (golang.org/x/crypto/argon2, Config.PasswordHashing;
//     per-card salt, the password keyed with the pepper first; at most
//     MaxConcurrent hashes at once), checked by CheckAuthPassword;
//   - a TOTP seed (RFC 6238 with github.com/pquerna/otp: 30-second steps,
//     six digits, ±1 step), enrolled with IssueCardRequest.EnrolTOTP — the
//     seed and its otpauth URI are returned once —, sealed like the
//     number; CheckTOTP refuses a code of a step at or before the last one
//     accepted;
//   - one failure count for both: each attempt is counted before it is
//     checked (no burst of concurrent guesses gets past the limit), a
//     success clears its own factor's failures only, and
//     Config.MaxAuthFailures (5) lock the card's authentication until
//     UnlockAuth (native API, admin page);
//   - a cardholder CA (ECDSA P-256; Config.CACert/CAKey, GenerateCA for
//     the caller to keep): IssueClientCertificate issues a TLS client
//     certificate for a card, exportable as PKCS#12 for a browser
//     (software.sslmate.com/src/go-pkcs12, Modern2023: PBES2 AES-256,
//     PBKDF2-SHA256); RevokeCertificate; CRL (NextUpdate
//     Config.CRLValidity, 10 minutes), also at GET /ca/crl;
//     CertificateCard maps a certificate the page checked to its card.
//
// An approval may carry the authentication value (AAV, KECIS §15.7.3) of
// such an authentication: Config.AuthValues (connectors/cardauth.AAV)
// checks it against the number as sent, the amount, the currency, the
// merchant (ApproveRequest.AuthMerchant: the shop an acquirer pays for)
// and the order, and its id is recorded in the approval's transaction, so
// that it is accepted once; otherwise the approval is declined with
// AUTHENTICATION_FAILED ("does not match the payment", "has expired",
// "was already used"). Prune (run by Run) deletes the records some time
// after they expire.
//
// # Virtual numbers (KECIS §15.4)
//
// IssueVirtual issues a virtual number for a card through connectors/vcn
// on the issuer's own database (keys derived from the pepper with HKDF
// unless Config.Virtual gives them; the real number sealed under the data
// key), with its controls: single use, merchant lock, amount cap, expiry
// (never past the card's). VirtualBINs are its BINs, to publish. Approve
// de-tokenises a number under them inside the approval's transaction,
// checks and counts its use there, and approves on the real card.
//
// No card number (real or virtual), password, password digit, TOTP seed
// or code, or birth date appears in clear in a log line, an error, a
// stored row or an SMS; the request types carry them as ecml.PAN and
// ecml.Secret, which print masked.
//
// # Use
//
//	iss, err := issuer.Open(ctx, issuer.Config{DSN: "sqlite:/var/lib/issuer.db", DataKey: k, Pepper: p})
//	card, err := iss.IssueCard(ctx, issuer.IssueCardRequest{…})
//	a, err := iss.Approve(ctx, issuer.ApproveRequest{…})
//	srv := httpserver.New(iss.Handler(), httpserver.Limits{}, log) // connectors/httpserver: timeouts, body cap
//	srv.Addr = addr
//	go srv.ListenAndServe()
//	go iss.Run(ctx, time.Minute) // settlement at the cut-off, SMS retries
//
// The Go API (Approve, Cancel, Refund, Inquire) is what a KECIS adapter
// calls; Handler is the issuer's own HTTP API and admin page.
package issuer

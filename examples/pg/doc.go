// Package pg is a simulated Korean payment gateway (PG, 전자지급결제대행)
// with its own native JSON API and its own state (KECIS §15.2, the "card"
// group seen from the PG's side: approve, cancel until settlement, partial
// refunds never above the approved amount, inquire; idempotent). It
// contains no KECIS code: it reaches card issuers through an "issuer
// gateway", a plain HTTP JSON endpoint configured by URL — in production
// its KECIS sidecar's local calling endpoint — and merchants of the KECIS
// federation reach it through the same sidecar calling its native API,
// each with the X-PG-Key of a merchant account of its own, like any other
// merchant.
//
// # State
//
// Everything lives in the PG's own database (SQLite by default,
// PostgreSQL too, through connectors/sqlstore; migrations are embedded, the
// component is "pg"):
//
//   - merchants (가맹점): MID ("M000001"), name, status (ACTIVE,
//     SUSPENDED, TERMINATED), the SHA-256 of the API key (the key itself is
//     shown once, at creation);
//   - one contract per merchant: accepted card BIN prefixes, fee rate in
//     basis points, per-transaction maximum, daily limit;
//   - transactions: TID ("T" + YYMMDD + six-digit sequence, per business
//     day in KST), merchant, order number, amount in won, status, the
//     issuer's approval number and the card ONLY masked
//     (949010******5583). The PG never stores a card number, not even
//     encrypted. Optional buyer data (name, phone, e-mail) is AES-256-GCM
//     ciphertext under Config.DataKey;
//   - operations: every approve, cancel and refund sent to the issuer
//     gateway, with the Idempotency-Key it was sent under, kept for life;
//   - idempotency records, one per (merchant, key), fingerprinted with an
//     HMAC (the fingerprint covers the card number).
//
// # Rules
//
// Pay checks the card number (13–19 digits, Luhn) and expiry, the
// merchant (ACTIVE), the order (one live transaction per order number;
// declined and failed attempts may be retried under it) and the contract
// (BIN prefix, per-transaction maximum, daily limit — the day's live
// amounts less what was cancelled, a running total per merchant and
// business day kept in the transactions that change them, checked under a
// lock on the merchant so that concurrent payments never overrun it; its
// cost does not grow with the day's payments), records the transaction as
// PENDING, and only then asks the issuer. The issuer's answer decides:
// APPROVED, or DECLINED with the mapped code. Cancel voids a whole
// approval until the issuer settles it; Refund returns part or all of the
// balance, refusing more than the balance before the issuer is asked; one
// cancel or refund runs at a time per transaction.
//
// A timeout is never a decline. When the gateway answers pending or
// unavailable, times out, or cannot be reached, the operation stays
// PENDING under its Idempotency-Key and the merchant gets "2001".
// ResolvePending (run it periodically, or use Run) inquires every pending
// operation and records the truth; a merchant's retry with its own
// Idempotency-Key does the same for its transaction. An approval the
// issuer still has no record of after Config.PendingGrace is given up as
// never processed (FAILED, "2002"); a cancel or refund that was not
// carried out is sent again under its original key, so it can never
// happen twice.
//
// # Native HTTP API
//
// Merchant endpoints authenticate with the header X-PG-Key; every POST
// needs an Idempotency-Key header (1–255 printable ASCII characters,
// scoped to the merchant). A retry with the same key and body answers the
// original result with Idempotent-Replayed: true; the same key with
// another body is "1005". JSON fields are camelCase; amounts are whole won
// and may be sent as numbers or digit strings. A merchant sees its own
// transactions only: order numbers are its own (another merchant may use
// the same), and another merchant's transaction, by TID or by order
// number, answers "1007" exactly as an unknown one.
//
//	POST /pg/v1/payments                 approve
//	     {"mid":"M000001","orderNo":"ORD-1","amount":15000,"cardNo":"…",
//	      "expMonth":"11","expYear":"2031","productName":"Coffee",
//	      "buyerName":"…","buyerTel":"…","buyerEmail":"…","authentication":["…"],
//	      "aav":"…","merchantRef":"https://shop.example/kecis"}
//	     (mid defaults to the key's merchant; productName, buyer*, authentication,
//	     aav and merchantRef are optional; authentication is opaque evidence that
//	     the cardholder was authenticated — at most 4 items of at most 12 KiB
//	     printable characters —, aav the issuer's authentication value (at most
//	     64 characters) and merchantRef the shop's federation entityID the value is
//	     bound to, named to the issuer instead of the mid; the PG passes them on to
//	     the issuer gateway with the approval and keeps them nowhere)
//	POST /pg/v1/payments/{tid}/cancel    void the whole approval {"reason":"…"} (body optional)
//	POST /pg/v1/payments/{tid}/refunds   refund {"amount":5000,"reason":"…"}
//	GET  /pg/v1/payments/{tid}           inquire
//	GET  /pg/v1/payments?mid=&orderNo=   inquire by order
//	POST /pg/v1/orders/{orderNo}/cancel  the same cancel, addressed by order number
//	POST /pg/v1/orders/{orderNo}/refunds the same refund, addressed by order number
//
// Each answers one transaction:
//
//	{"resultCode":"0000","resultMsg":"정상처리","tid":"T261122000001","mid":"M000001",
//	 "orderNo":"ORD-1","productName":"Coffee","status":"APPROVED","amount":15000,
//	 "cancelledAmount":0,"refundedAmount":0,"balanceAmount":15000,"currency":"KRW","approvalNo":"03427123",
//	 "maskedCardNo":"949010******5583","feeAmount":375,"issuerState":"approved",
//	 "createdAt":"2026-11-22T19:00:00+09:00","approvedAt":"2026-11-22T19:00:00+09:00",
//	 "history":[{"opId":"T261122000001-01","type":"approve","amount":15000,"status":"DONE",
//	             "resultCode":"0000","resultMsg":"정상처리","createdAt":"…","doneAt":"…"}]}
//
// cancelledAmount is everything given back (a cancel or refunds),
// refundedAmount the refunds alone.
//
// Transaction status: PENDING, APPROVED, DECLINED, FAILED, CANCELLED,
// PART_REFUNDED, REFUNDED; pendingOperation names a cancel or refund still
// awaiting the issuer. For payments, cancels and refunds resultCode is the
// outcome of that request (a decline is a recorded transaction with its
// decline code); for inquiries it is "0000". Refusals that create nothing
// answer {"resultCode":"…","resultMsg":"…","resultDetail":"…"}.
//
// Admin endpoints take Authorization: Bearer <Config.AdminToken>:
//
//	POST /pg/admin/merchants                  {"mid"?,"name","contract":{"binPrefixes":["949010"],
//	                                           "feeBps":250,"maxAmount":1000000,"dailyLimit":5000000}}
//	                                          → merchant and "apiKey" (shown this once)
//	GET  /pg/admin/merchants                  list
//	GET  /pg/admin/merchants/{mid}
//	PUT  /pg/admin/merchants/{mid}/status     {"status":"ACTIVE|SUSPENDED|TERMINATED"}
//	PUT  /pg/admin/merchants/{mid}/contract   {"binPrefixes":[…],"feeBps":…,"maxAmount":…,"dailyLimit":…}
//	GET  /pg/admin/transactions?mid=&status=&limit=
//	GET  /pg/admin/transactions/{tid}
//	POST /pg/admin/pending/resolve            run ResolvePending now
//
// # Result codes
//
// resultMsg is Korean, then English after " / " ("카드 한도 초과 / card
// limit exceeded"); the table shows the Korean half (ResultCode.MessageEN
// has the other).
//
//	code  HTTP  resultMsg                         meaning
//	0000  200   정상처리                           success
//	1001  400   요청 값 오류                        a field is missing or malformed
//	1002  401   인증 실패                           X-PG-Key or admin token missing or wrong, or not the named mid's
//	1003  403   사용할 수 없는 가맹점                 merchant suspended (no new payments) or terminated
//	1004  400   Idempotency-Key 오류               Idempotency-Key missing or malformed
//	1005  409   Idempotency-Key 재사용(요청 불일치)    the key was used for another request
//	1006  409   중복된 주문번호                       the order already has a live transaction
//	1007  404   거래 없음                           no such transaction (or merchant)
//	1008  404/405 지원하지 않는 요청                  no such endpoint or method
//	2001  200   처리 중(결과 확인 필요)               the issuer has not answered; NOT a decline — inquire later
//	                                                (a lookup of such a transaction answers 2001 with it)
//	2002  200   미처리(카드사 미접수)                 no issuer processed it; nothing was charged
//	2003  200   이전 요청 처리 중                     an earlier cancel/refund of the transaction is pending
//	3001  200   계약되지 않은 카드(BIN)               the contract does not accept the card's BIN
//	3002  200   1회 결제 한도 초과                    above the contract's per-transaction maximum
//	3003  200   가맹점 일 한도 초과                   the merchant's daily limit would be exceeded
//	3004  200   취소 가능 금액 초과                   refund above the balance, 0 once fully refunded (checked before the issuer)
//	3005  200   이미 취소된 거래                      cancel of a cancelled or fully refunded payment; refund of a cancelled one
//	3006  200   취소할 수 없는 거래                   the transaction was never approved
//	3011  200   카드 승인 거절                        issuer: Declined
//	3012  200   잔액(한도) 부족                       issuer: InsufficientFunds
//	3013  200   유효하지 않은 카드                     issuer: InvalidCard (or the Luhn check failed)
//	3014  200   유효기간 만료                         issuer: Expired (or the expiry has passed)
//	3015  200   카드 한도 초과                        issuer: LimitExceeded
//	3016  200   처리 가능한 카드사 없음                 the gateway knows no issuer for the card (no-route)
//	3017  200   카드 본인인증 필요                     issuer: AuthenticationRequired
//	3019  200   카드사 거절                          any other issuer refusal
//	3020  200   매입 후 취소 불가(환불 요청)             cancel after settlement (issuer PolicyViolation): refund instead
//	3021  200   매입 전 부분환불 불가(매입 후 요청 또는 전체취소)
//	                                                partial refund before settlement (issuer PolicyViolation):
//	                                                refund after the settlement, or cancel the whole payment
//	3022  200   매입 전 환불 불가(취소 요청)             refund of the whole balance before settlement (issuer
//	                                                PolicyViolation): "not settled yet: cancel instead"
//	9999  500   시스템 오류                          internal error
//
// Transient refusals (1003, 1007, 2003) are not recorded under the
// Idempotency-Key: a retry with the same key is decided afresh. All other
// outcomes are, the pending ones included until they resolve.
//
// # Issuer gateway
//
// The PG is the client of one HTTP endpoint per operation,
// POST {IssuerGatewayURL}/v1/card/{approve|cancel|refund|inquire}, body
// {"fields":{…}} with ECML flat field names (RFC 4112):
// Ecom_ConsumerOrderID (the TID, unique at the PG, so that two merchants'
// order numbers never collide at the issuer), Ecom_Transaction_Amount
// ("15000"), Ecom_Transaction_CurrencyCode ("KRW"),
// Ecom_Transaction_Type ("credit"), and for approve
// Ecom_Payment_Card_Number, Ecom_Payment_Card_ExpDate_Month ("11"),
// Ecom_Payment_Card_ExpDate_Year ("2031") and the sub-merchant the PG pays
// for — Ecom_Merchant, the merchant's name (what the cardholder's text
// shows), and Ecom_Merchant_ID, its MID (the card acceptor ID); cancel, refund and inquire
// carry Ecom_Transaction_ApprovalCode. Approve, cancel and refund send an
// Idempotency-Key that the PG fixes when it records the operation and
// reuses on every retry. The answer's outcome "answered" with status
// Success carries Ecom_Transaction_ApprovalCode and
// Ecom_Transaction_ResponseData (approved, cancelled, settled,
// partially-refunded, refunded; Ecom_Transaction_PrivateUseData may say
// "refunded=<amount>"); a refusal's sub_status maps to the 30xx codes
// above, whether it came with HTTP 200 or as a refusal (402, 400, 409,
// 422 with an outcome: connectors/callapi's statuses); "pending" (202),
// "unavailable" (503), a 408/409/425/429/5xx, a timeout or a transport
// error leave the operation pending; any other 4xx problem document means
// no issuer saw the request (2002, or 3016 for no-route).
//
// # Logging
//
// One slog line per request (method, route, status, duration — never a
// body or query string) and per decision (tid, mid, order, amount, masked
// card, result code, the issuer's public message). No card number reaches
// a log line, an error, a stored row or an answer: requests carry it as
// CardNumber, which prints masked, and text from the gateway is stored
// and logged only with long digit runs masked.
//
// # Use
//
//	p, err := pg.Open(ctx, pg.Config{DSN: "sqlite:/var/lib/pg.db",
//		IssuerGatewayURL: "http://127.0.0.1:8701", DataKey: key, AdminToken: tok})
//	m, err := p.CreateMerchant(ctx, pg.NewMerchant{Name: "Example Shop", Contract: pg.Contract{FeeBPS: 250}})
//	go p.Run(ctx, time.Minute) // resolve pending transactions
//	// connectors/httpserver bounds slow and idle clients and the body; the
//	// write timeout exceeds GatewayTimeout (a payment waits for the issuer).
//	srv := httpserver.New(p.Handler(), httpserver.Limits{WriteTimeout: time.Minute}, log)
//	srv.Addr = addr
//	srv.ListenAndServe()
package pg

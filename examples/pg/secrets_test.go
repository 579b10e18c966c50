package pg_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kecis/kecis/examples/pg"
	"github.com/kecis/kecis/internal/testutil"
)

// TestNoCardNumberAtRest runs a scenario through the Go and the HTTP API —
// approvals, declines, refusals, pending and resolved payments, cancels,
// refunds — then dumps every column of every table, every log line, every
// error and every answer, and checks that no card number appears in any
// of them: the PG keeps cards masked only (KECIS §9.11).
func TestNoCardNumberAtRest(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn dsnFunc) {
		e := newEnv(t, dsn)
		c := client{t: t, h: e.pg.Handler()}
		var texts []string
		note := func(p *pg.Payment, err error) {
			if err != nil {
				texts = append(texts, err.Error())
			}
			if p != nil {
				texts = append(texts, fmt.Sprintf("%+v", *p))
			}
		}
		declined := e.gw.declineCard(1, "Declined")
		pans := []string{cardGood, cardGood2, cardOtherBIN, cardForeign, declined}

		a := e.approved(15_000)
		note(e.pg.Pay(ctx, e.payReq(cardGood2, 20_000)))
		note(e.pg.Pay(ctx, e.payReq(declined, 1000)))
		note(e.pg.Pay(ctx, e.payReq(cardForeign, 1000)))      // BIN refused
		note(e.pg.Pay(ctx, e.payReq(cardGood, 9_000_000)))    // over the maximum
		note(e.pg.Pay(ctx, e.payReq(cardGood[:15]+"0", 100))) // Luhn: not a card, still refused
		e.gw.setMode("approve", hangupProcessed)
		pending := e.pay(cardGood2, 3000)
		e.gw.setMode("approve", unavailable)
		never := e.pay(cardGood, 4000)
		e.gw.setMode("approve", normal)
		e.resolve()
		e.clock.Advance(time.Hour)
		e.resolve()
		note(e.cancel(a.TID))
		b := e.approved(50_000)
		e.gw.settleAll()
		note(e.refund(b.TID, 10_000))
		note(e.refund(b.TID, 90_000))
		note(e.cancel(b.TID))
		r := c.do("POST", "/pg/v1/payments", hdr{"X-PG-Key": e.m.APIKey, "Idempotency-Key": "h1"}, map[string]any{
			"orderNo": "H-1", "amount": 7000, "cardNo": cardOtherBIN, "expMonth": 11, "expYear": 2031, "productName": "x"})
		texts = append(texts, r.raw)
		r = c.do("POST", "/pg/v1/payments", hdr{"X-PG-Key": e.m.APIKey, "Idempotency-Key": "h2"}, map[string]any{
			"orderNo": "H-2", "amount": 7000, "cardNo": cardGood, "expMonth": 11, "expYear": 2031, "productName": "x",
			"buyerTel": "010-2345-6789"})
		texts = append(texts, r.raw)
		r = c.do("GET", "/pg/admin/transactions", hdr{"Authorization": "Bearer " + adminToken}, nil)
		texts = append(texts, r.raw)
		if got := e.get(pending.TID); got.Status != pg.StatusApproved {
			t.Errorf("pending payment resolved to %s", got.Status)
		}
		if got := e.get(never.TID); got.Status != pg.StatusFailed {
			t.Errorf("unprocessed payment resolved to %s", got.Status)
		}

		leak := func(where, s string) {
			if found := findPANs(s); len(found) > 0 {
				t.Errorf("%s contains a card number: %q", where, s)
			}
			for _, p := range pans {
				if strings.Contains(s, p) {
					t.Errorf("%s contains the test card %s…: %q", where, p[:6], s)
				}
			}
		}
		cells := 0
		if tables := testutil.Tables(t, e.pg.DB().DB); len(tables) < 6 {
			t.Fatalf("tables: %v", tables)
		}
		for table, rows := range testutil.DumpDB(t, e.pg.DB().DB) {
			for k, row := range rows {
				for col, v := range row {
					where := fmt.Sprintf("%s[%d].%s", table, k, col)
					cells++
					switch v := v.(type) {
					case string:
						leak(where, v)
					case []byte:
						leak(where, string(v))
					case int64:
						for _, p := range pans {
							if strconv.FormatInt(v, 10) == p {
								t.Errorf("%s holds a card number as an integer", where)
							}
						}
					case nil, time.Time, bool, float64:
					default:
						t.Errorf("%s: unexpected %T", where, v)
					}
				}
			}
		}
		if cells < 150 {
			t.Errorf("only %d cells dumped", cells)
		}
		logs := e.logs.String()
		for _, line := range strings.Split(logs, "\n") {
			leak("log line", line)
		}
		for _, want := range []string{"payment approved", "payment declined", "payment refused", "approve pending",
			"approve not processed", "payment cancelled", "payment refunded", "refund refused"} {
			if !strings.Contains(logs, want) {
				t.Errorf("no %q in the logs", want)
			}
		}
		if len(texts) < 10 {
			t.Fatalf("the scenario produced only %d answers", len(texts))
		}
		for _, s := range texts {
			leak("answer", s)
		}
	})
}

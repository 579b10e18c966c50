package twoway

import (
	"fmt"
	"strings"
	"testing"

	"github.com/kecis/kecis/connectors/sms"
	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
	"github.com/kecis/kecis/internal/testutil"
)

func TestParseReply(t *testing.T) {
	for _, tc := range []struct {
		text string
		kind ReplyKind
		code string
	}{
		{"123456", ReplyCode, "123456"},
		{" 123456\n", ReplyCode, "123456"},
		{"승인 123456", ReplyCode, "123456"},
		{"123-456", ReplyCode, "123456"},
		{"123 456", ReplyCode, "123456"},
		{"１２３４５６", ReplyCode, "123456"},
		{"YES 123456", ReplyCode, "123456"},
		{"[인증번호] 123456", ReplyCode, "123456"},
		{"거절", ReplyRefuse, ""},
		{"NO", ReplyRefuse, ""},
		{"거절 123456", ReplyUnreadable, ""},
		{"123456 승인 654321", ReplyUnreadable, ""},
		{"12345", ReplyUnreadable, ""},
		{"1234567", ReplyUnreadable, ""},
		{"안녕하세요", ReplyUnreadable, ""},
		{"", ReplyUnreadable, ""},
		{"123456?", ReplyUnreadable, ""},
		{strings.Repeat("1", MaxReplyLen+1), ReplyUnreadable, ""},
		{"\xff123456", ReplyUnreadable, ""},
	} {
		kind, code := ParseReply(tc.text)
		if kind != tc.kind || code != tc.code {
			t.Errorf("ParseReply(%q) = %d %q, want %d %q", tc.text, kind, code, tc.kind, tc.code)
		}
	}
}

func FuzzParseReply(f *testing.F) {
	for _, s := range []string{"123456", "승인 123456", "거절", "１２３４５６", "123-456", "NO 1", "ｙｅｓ 000000", "\x00", "1 2 3 4 5 6"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		kind, code := ParseReply(text)
		switch kind {
		case ReplyCode:
			if len(code) != CodeDigits || strings.Trim(code, "0123456789") != "" {
				t.Fatalf("ParseReply(%q) gave code %q", text, code)
			}
		case ReplyRefuse, ReplyUnreadable:
			if code != "" {
				t.Fatalf("ParseReply(%q) gave a code with kind %d", text, kind)
			}
		default:
			t.Fatalf("kind %d", kind)
		}
		if len(text) > MaxReplyLen && kind != ReplyUnreadable {
			t.Fatal("an over-long reply was read")
		}
	})
}

// TestNoSecretInRowsOrLogs: after transfers of every outcome, no stored
// row, evidence log or log line holds an account number, a code or a full
// phone number in clear (KECIS §8.1, §9.11).
func TestNoSecretInRowsOrLogs(t *testing.T) {
	for name, dsn := range map[string]func(testing.TB) string{"sqlite": sqltest.TestSQLiteDSN, "postgres": sqltest.TestPostgresDSN} {
		t.Run(name, func(t *testing.T) {
			w := newWorldOn(t, dsn(t))
			e := w.engine(t, nil, nil)
			var codes []string
			// Completed.
			w.flow(t, e, loan(300_000))
			codes = append(codes, w.codeSent(t, payeePhone))
			w.send(t, e, payeePhone, "승인 "+codes[0], w.messageTo(payeePhone))
			// Wrong codes to the limit.
			w.flow(t, e, request(20_000))
			codes = append(codes, w.codeSent(t, payeePhone))
			for range DefaultMaxAttempts {
				w.send(t, e, payeePhone, wrongOf(codes[1]), "")
			}
			// A wrong sender and a refusal.
			w.flow(t, e, request(30_000))
			codes = append(codes, w.codeSent(t, payeePhone))
			w.send(t, e, otherPhone, codes[2], w.messageTo(payeePhone))
			w.send(t, e, payeePhone, "거절", "")

			secrets := []string{remAccount, payeeAccount, digitsOnly(remAccount), digitsOnly(payeeAccount), payeePhone, remPhone,
				otherPhone, "01033334444", "01011112222"}
			secrets = append(secrets, codes...)
			var dump strings.Builder
			for _, table := range []string{"twoway_request", "twoway_event"} {
				rows, err := w.db.QueryContext(ctx, "SELECT * FROM "+table)
				if err != nil {
					t.Fatal(err)
				}
				cols, _ := rows.Columns()
				n := 0
				for rows.Next() {
					vals := make([]any, len(cols))
					ptrs := make([]any, len(cols))
					for i := range vals {
						ptrs[i] = &vals[i]
					}
					if err := rows.Scan(ptrs...); err != nil {
						t.Fatal(err)
					}
					for i, v := range vals {
						fmt.Fprintf(&dump, "%s.%s=%s\n", table, cols[i], v)
					}
					n++
				}
				rows.Close()
				if n == 0 {
					t.Fatalf("%s is empty", table)
				}
			}
			for where, text := range map[string]string{"rows": dump.String(), "logs": w.logs.String()} {
				for _, s := range secrets {
					if strings.Contains(text, s) {
						t.Errorf("the %s hold %q in clear", where, s)
					}
				}
			}
			if !strings.Contains(w.logs.String(), "payee confirmed") {
				t.Fatal("no log captured")
			}
		})
	}
}

func wrongOf(code string) string {
	if code == "000000" {
		return "000001"
	}
	return "000000"
}

// TestConcurrentReplies: the payee's correct reply delivered at once to two
// engines over one database, under several gateway ids, is accepted once.
func TestConcurrentReplies(t *testing.T) {
	for name, dsn := range map[string]func(testing.TB) string{"sqlite": sqltest.TestSQLiteDSN, "postgres": sqltest.TestPostgresDSN} {
		t.Run(name, func(t *testing.T) {
			w := newWorldOn(t, dsn(t))
			a, b := w.engine(t, nil, nil), w.engine(t, nil, nil)
			r := w.flow(t, a, request(100_000))
			code, msg := w.codeSent(t, payeePhone), w.messageTo(payeePhone)
			replies := make([]sms.Reply, 8)
			for i := range replies {
				replies[i] = w.reply(payeePhone, code, msg)
			}
			errs := make([]error, len(replies))
			testutil.Race(len(replies)/2, a, b, func(i int, e *Engine) { errs[i] = e.HandleReply(ctx, replies[i]) })
			for _, err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			if r = w.get(t, r.ID); r.State != Completed {
				t.Fatalf("state %s", r.State)
			}
			verified := 0
			for _, k := range kinds(t, w, r.ID) {
				if k == EventVerified {
					verified++
				}
			}
			if verified != 1 || w.bank.count("send-out") != 1 || w.bank.count("credit") != 1 || len(w.gw.to(remPhone)) != 1 {
				t.Fatalf("verified %d times, debited %d, credited %d, remitter texted %d", verified, w.bank.count("send-out"),
					w.bank.count("credit"), len(w.gw.to(remPhone)))
			}
		})
	}
}

// TestReplyPicksTheRequestOfItsCode: two requests wait for the same payee;
// a reply that names no message carries the OLDER request's code — it
// confirms that one, and counts no wrong code against the newer one.
func TestReplyPicksTheRequestOfItsCode(t *testing.T) {
	w := newWorld(t)
	e := w.engine(t, nil, nil)
	first := w.flow(t, e, request(10_000))
	code1 := w.codeSent(t, payeePhone)
	second := w.flow(t, e, request(20_000))
	code2 := w.codeSent(t, payeePhone)
	if code1 == code2 {
		t.Fatal("two requests, one code")
	}
	w.send(t, e, payeePhone, code1, "")
	r1, err := e.Lookup(ctx, customer, first.ID)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := e.Lookup(ctx, customer, second.ID)
	if err != nil {
		t.Fatal(err)
	}
	if r1.State != Completed || r2.State != AwaitingReply || r2.Attempts != 0 {
		t.Fatalf("first %s, second %s with %d wrong", r1.State, r2.State, r2.Attempts)
	}
	w.send(t, e, payeePhone, code2, "")
	if r2, err = e.Lookup(ctx, customer, second.ID); err != nil || r2.State != Completed {
		t.Fatalf("second after its code: %v %v", r2, err)
	}
}

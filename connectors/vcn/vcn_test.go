package vcn

import (
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/internal/testutil"
)

const shop = "https://shop.example/kecis"

// TestPaperExample: a credit card (type 0) issued on 11 February gets
// 404143 042 + serial + Luhn digit (KECIS §15.4), and the serial is the
// day's first pool index under the keyed permutation.
func TestPaperExample(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, nil)
		if !ecml.LuhnValid(realCard.Reveal()) {
			t.Fatal("the test card is not Luhn-valid")
		}
		iss, err := e.svc.Issue(ctx, "card-1", realCard, ecml.VirtualCardCredit, DefaultControls(shop))
		if err != nil {
			t.Fatal(err)
		}
		n := iss.Number.Reveal()
		if len(n) != 16 || !strings.HasPrefix(n, "404143042") || !ecml.LuhnValid(n) {
			t.Fatalf("number %s: want 404143 042 serial check, Luhn-valid", iss.Number)
		}
		p, err := Parse(iss.Number)
		if err != nil || p.BIN != "404143" || p.Day != 42 {
			t.Fatalf("Parse: %+v, %v", p, err)
		}
		// The serial is the permutation of accumulated + 0 × seed.
		var seed, acc, sc, total, size uint64
		if err := e.db.QueryRowContext(ctx, `SELECT seed, accumulated, seed_count, total_count, pool_size FROM vcn_pool
WHERE bin = '404143' AND day = '2026-02-11'`).Scan(&seed, &acc, &sc, &total, &size); err != nil {
			t.Fatal(err)
		}
		if sc != 1 || total != 1 || size != MaxPoolSize {
			t.Errorf("pool row: seed count %d, total %d, size %d", sc, total, size)
		}
		perm, _ := newPermutation(e.cfg.PoolKey, "404143", "2026-02-11", int(size))
		if want := int(perm.Apply(poolIndex(acc, 0, seed, size))) + 1; p.Serial != want {
			t.Errorf("serial %06d, want %06d", p.Serial, want)
		}
		// The second of the day takes accumulated + 1 × seed.
		iss2, err := e.svc.Issue(ctx, "card-1", realCard, ecml.VirtualCardCredit, DefaultControls(shop))
		if err != nil {
			t.Fatal(err)
		}
		p2, _ := Parse(iss2.Number)
		if want := int(perm.Apply(poolIndex(acc, 1, seed, size))) + 1; p2.Serial != want {
			t.Errorf("second serial %06d, want %06d", p2.Serial, want)
		}
		if iss.Type != ecml.VirtualCardCredit || !iss.Controls.SingleUse || iss.Controls.Merchant != shop ||
			!iss.Controls.NotOnOrAfter.Equal(paperDay.Add(30*time.Minute)) || iss.ExpMonth != 2 || iss.ExpYear != 2026 {
			t.Errorf("issued %+v", iss)
		}
		r, err := e.authorize(iss.Number, Use{Merchant: shop, Amount: 15_000, Currency: "KRW"})
		if err != nil {
			t.Fatal(err)
		}
		if r.Real != realCard || r.CardRef != "card-1" || r.Type != ecml.VirtualCardCredit {
			t.Errorf("resolved %+v", r)
		}
	})
}

// TestTypesAndBINs: each type takes its BIN; a type without one, a bad
// real card, a virtual card as the real one are ErrInvalid; Open refuses a
// bad configuration.
func TestTypesAndBINs(t *testing.T) {
	e := newEnv(t, sqltest.TestSQLiteDSN(t), func(c *Config) {
		c.BINs = map[string]string{ecml.VirtualCardCheck: "512345", ecml.VirtualCardOther: "512346"}
	})
	iss, err := e.svc.Issue(ctx, "c", realCard, ecml.VirtualCardCheck, Controls{})
	if err != nil || !strings.HasPrefix(iss.Number.Reveal(), "512345042") {
		t.Fatalf("check: %v %v", iss, err)
	}
	if !e.svc.IsVirtual(iss.Number) || e.svc.IsVirtual(realCard) || e.svc.IsVirtual("404143042000001") {
		t.Error("IsVirtual")
	}
	bad := realCard.Reveal()[:15] + string('0'+(realCard.Reveal()[15]-'0'+1)%10)
	for name, f := range map[string]func() error{
		"no BIN for credit": func() error {
			_, err := e.svc.Issue(ctx, "c", realCard, ecml.VirtualCardCredit, Controls{})
			return err
		},
		"unknown type": func() error { _, err := e.svc.Issue(ctx, "c", realCard, "gold", Controls{}); return err },
		"bad Luhn": func() error {
			_, err := e.svc.Issue(ctx, "c", ecml.PAN(bad), ecml.VirtualCardCheck, Controls{})
			return err
		},
		"virtual as real": func() error {
			_, err := e.svc.Issue(ctx, "c", iss.Number, ecml.VirtualCardCheck, Controls{})
			return err
		},
		"empty card ref": func() error { _, err := e.svc.Issue(ctx, "", realCard, ecml.VirtualCardCheck, Controls{}); return err },
		"card ref is PAN": func() error {
			_, err := e.svc.Issue(ctx, realCard.Reveal(), realCard, ecml.VirtualCardCheck, Controls{})
			return err
		},
		"negative cap": func() error {
			_, err := e.svc.Issue(ctx, "c", realCard, ecml.VirtualCardCheck, Controls{MaxAmount: -1})
			return err
		},
		"currency": func() error {
			_, err := e.svc.Issue(ctx, "c", realCard, ecml.VirtualCardCheck, Controls{Currency: "krw"})
			return err
		},
		"past expiry": func() error {
			_, err := e.svc.Issue(ctx, "c", realCard, ecml.VirtualCardCheck, Controls{NotOnOrAfter: paperDay})
			return err
		},
	} {
		if err := f(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		} else if ecml.ContainsPAN(err.Error()) {
			t.Errorf("%s: the error shows a card number: %v", name, err)
		}
	}
	// An expiry beyond a year is clamped.
	long, err := e.svc.Issue(ctx, "c", realCard, ecml.VirtualCardOther, Controls{NotOnOrAfter: paperDay.AddDate(2, 0, 0)})
	if err != nil || !long.Controls.NotOnOrAfter.Equal(paperDay.Add(MaxLifetime)) {
		t.Errorf("clamp: %+v %v", long, err)
	}

	db := e.db
	for name, cfg := range map[string]Config{
		"no sealer":    {PoolKey: key("p"), HashKey: key("h")},
		"short key":    {PoolKey: key("p")[:16], HashKey: key("h"), Sealer: e.cfg.Sealer},
		"bad BIN":      {PoolKey: key("p"), HashKey: key("h"), Sealer: e.cfg.Sealer, BINs: map[string]string{"credit": "40414"}},
		"unknown type": {PoolKey: key("p"), HashKey: key("h"), Sealer: e.cfg.Sealer, BINs: map[string]string{"gold": "404143"}},
		"shared BIN": {PoolKey: key("p"), HashKey: key("h"), Sealer: e.cfg.Sealer,
			BINs: map[string]string{"credit": "404143", "check": "404143"}},
		"pool size": {PoolKey: key("p"), HashKey: key("h"), Sealer: e.cfg.Sealer, PoolSize: 1_000_000},
		"lifetime":  {PoolKey: key("p"), HashKey: key("h"), Sealer: e.cfg.Sealer, DefaultLifetime: 400 * 24 * time.Hour},
	} {
		if _, err := Open(ctx, db, cfg); err == nil {
			t.Errorf("Open accepted %s", name)
		}
	}
	for typ, want := range map[string]int{"credit": 0, "check": 1, "prepaid": 2, "other": 6} {
		if c, ok := TypeCode(typ); !ok || c != want {
			t.Errorf("TypeCode(%s) = %d", typ, c)
		}
	}
	for _, b := range DefaultBINs() {
		if slices.Contains([]string{"949010", "949020", "949030"}, b) {
			t.Errorf("default virtual BIN %s is a real BIN of examples/issuer", b)
		}
	}
}

// TestJulianDayInSeoul: the day of issue is the issuer's (Asia/Seoul), not
// UTC's: 15:00 UTC is midnight in Seoul.
func TestJulianDayInSeoul(t *testing.T) {
	e := newEnv(t, sqltest.TestSQLiteDSN(t), nil)
	for _, tc := range []struct {
		at   time.Time
		want string
	}{
		{time.Date(2026, 2, 10, 14, 59, 59, 0, time.UTC), "041"}, // 23:59:59 KST on 10 Feb
		{time.Date(2026, 2, 10, 15, 0, 0, 0, time.UTC), "042"},   // 00:00 KST on 11 Feb
		{time.Date(2026, 2, 11, 14, 59, 59, 0, time.UTC), "042"},
		{time.Date(2026, 2, 11, 23, 0, 0, 0, time.UTC), "043"}, // still 11 Feb in UTC
		{time.Date(2026, 12, 31, 15, 0, 0, 0, time.UTC), "001"},
		{time.Date(2028, 12, 31, 14, 0, 0, 0, time.UTC), "366"}, // a leap year's last day
	} {
		e.clock.Set(tc.at)
		iss, err := e.svc.Issue(ctx, "c", realCard, ecml.VirtualCardCredit, Controls{})
		if err != nil {
			t.Fatal(err)
		}
		if got := iss.Number.Reveal()[6:9]; got != tc.want {
			t.Errorf("%s: day %s, want %s", tc.at, got, tc.want)
		}
	}
}

// TestControls: every control is enforced at approval, inside the caller's
// transaction (KECIS §15.4).
func TestControls(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, nil)
		use := Use{Merchant: shop, Amount: 50_000, Currency: "KRW"}
		issue := func(c Controls) ecml.PAN {
			t.Helper()
			iss, err := e.svc.Issue(ctx, "card-1", realCard, ecml.VirtualCardCredit, c)
			if err != nil {
				t.Fatal(err)
			}
			return iss.Number
		}
		want := func(what string, n ecml.PAN, u Use, wantErr error) {
			t.Helper()
			_, err := e.authorize(n, u)
			if !errors.Is(err, wantErr) {
				t.Errorf("%s: %v, want %v", what, err, wantErr)
			}
		}

		single := issue(DefaultControls(shop))
		want("wrong merchant", single, Use{Merchant: "https://other.example", Amount: 1, Currency: "KRW"}, ErrMerchant)
		// A use rolled back does not spend the number.
		errRollback := errors.New("the approval failed later")
		err := e.db.WriteTx(ctx, func(tx *sql.Tx) error {
			if _, err := e.svc.AuthorizeTx(ctx, tx, single, use); err != nil {
				return err
			}
			return errRollback
		})
		if !errors.Is(err, errRollback) {
			t.Fatal(err)
		}
		want("first use", single, use, nil)
		want("single use twice", single, use, ErrUsed)

		multi := issue(Controls{Merchant: shop, MaxAmount: 50_000, Currency: "KRW"})
		want("multi 1", multi, use, nil)
		want("multi 2", multi, use, nil)
		want("amount above cap", multi, Use{Merchant: shop, Amount: 50_001, Currency: "KRW"}, ErrAmount)
		want("currency", multi, Use{Merchant: shop, Amount: 10, Currency: "USD"}, ErrCurrency)

		anyShop := issue(Controls{})
		want("any merchant", anyShop, Use{Merchant: "https://other.example", Amount: 1 << 40, Currency: "USD"}, nil)
		want("any merchant again", anyShop, use, nil)

		expiring := issue(DefaultControls(shop))
		unspent := issue(DefaultControls(shop))
		revoked := issue(DefaultControls(shop))
		if err := e.svc.Revoke(ctx, revoked); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.Revoke(ctx, revoked); err != nil {
			t.Errorf("second revoke: %v", err)
		}
		want("revoked", revoked, use, ErrRevoked)

		// Unknown: never issued (well-formed), bad Luhn, not our BIN.
		p, _ := Parse(single)
		p.Serial = p.Serial%MaxPoolSize + 1
		unissued, _ := Format(p)
		want("never issued", unissued, use, ErrUnknown)
		s := single.Reveal()
		want("bad Luhn", ecml.PAN(s[:15]+string('0'+(s[15]-'0'+1)%10)), use, ErrUnknown)
		want("real card", realCard, use, ErrUnknown)
		if err := e.svc.Revoke(ctx, unissued); !errors.Is(err, ErrUnknown) {
			t.Errorf("revoke unknown: %v", err)
		}

		e.clock.Advance(30*time.Minute - time.Microsecond)
		anyUse := Use{Merchant: shop, Amount: 1, Currency: "KRW"}
		if _, err := e.authorize(expiring, anyUse); err != nil {
			t.Errorf("just before expiry: %v", err)
		}
		late := issue(DefaultControls(shop))
		e.clock.Advance(time.Microsecond)
		want("expired (at NotOnOrAfter)", unspent, anyUse, ErrExpired)
		want("expired multi-use", multi, anyUse, ErrExpired)

		// RevokeCard ends every live number of the card.
		n, err := e.svc.RevokeCard(ctx, realCard)
		if err != nil || n != 1 { // late only: the others expired or were revoked
			t.Errorf("RevokeCard: %d, %v", n, err)
		}
		other, err := e.svc.Issue(ctx, "card-2", otherCard, ecml.VirtualCardCredit, Controls{})
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := e.svc.RevokeCard(ctx, realCard); n != 0 {
			t.Errorf("RevokeCard again: %d", n)
		}
		if r, err := e.authorize(other.Number, anyUse); err != nil || r.Real != otherCard {
			t.Errorf("another card's number: %v %v", r, err)
		}
		want("revoked with its card", late, anyUse, ErrRevoked)

		// Prune: expired rows go; an approval with one is unknown then.
		e.clock.Advance(31 * time.Minute)
		if n, err := e.svc.Prune(ctx); err != nil || n < 6 {
			t.Errorf("Prune: %d, %v", n, err)
		}
		want("pruned", multi, anyUse, ErrUnknown)
	})
}

// TestSingleUseRace: two approvals with one single-use number at once —
// exactly one wins, the other is ErrUsed.
func TestSingleUseRace(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, nil)
		iss, err := e.svc.Issue(ctx, "card-1", realCard, ecml.VirtualCardCredit, DefaultControls(shop))
		if err != nil {
			t.Fatal(err)
		}
		b := &env{t: t, svc: e.another(dsn, nil)}
		b.db = b.svc.db
		errs := make([]error, 8)
		testutil.Race(4, e, b, func(i int, x *env) {
			_, errs[i] = x.authorize(iss.Number, Use{Merchant: shop, Amount: 1, Currency: "KRW"})
		})
		testutil.OneWins(t, errs, ErrUsed, "single-use number")
	})
}

// TestPoolExhaustion: a day's pool (97 serials) gives 97 distinct numbers,
// every serial once, then ErrExhausted — never a duplicate; the next day
// has a pool of its own.
func TestPoolExhaustion(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		const pool = 97
		e := newEnv(t, dsn, func(c *Config) { c.PoolSize = pool })
		serials := map[int]bool{}
		for i := range pool {
			iss, err := e.svc.Issue(ctx, "c", realCard, ecml.VirtualCardCredit, Controls{})
			if err != nil {
				t.Fatalf("issue %d: %v", i, err)
			}
			p, err := Parse(iss.Number)
			if err != nil || p.Day != 42 || p.Serial < 1 || p.Serial > pool || serials[p.Serial] {
				t.Fatalf("issue %d: serial %d (%v), seen %v", i, p.Serial, err, serials[p.Serial])
			}
			serials[p.Serial] = true
		}
		if _, err := e.svc.Issue(ctx, "c", realCard, ecml.VirtualCardCredit, Controls{}); !errors.Is(err, ErrExhausted) {
			t.Fatalf("issue %d: %v, want ErrExhausted", pool+1, err)
		}
		// Another type has its own BIN and pool.
		if _, err := e.svc.Issue(ctx, "c", realCard, ecml.VirtualCardCheck, Controls{}); err != nil {
			t.Errorf("check card: %v", err)
		}
		e.clock.Advance(24 * time.Hour)
		iss, err := e.svc.Issue(ctx, "c", realCard, ecml.VirtualCardCredit, Controls{})
		if err != nil || iss.Number.Reveal()[6:9] != "043" {
			t.Errorf("next day: %v %v", iss, err)
		}
		if !strings.Contains(e.logs.String(), "vcn pool exhausted") {
			t.Error("no log of the exhausted pool")
		}
	})
}

// TestLiveNumbersNeverRepeat: when a drawn number is still live (here: two
// issuers with different pool keys share the day's counter, so their walks
// meet), the database refuses it and the walk goes on; the day ends in
// ErrExhausted with every number distinct. A number whose row has expired
// is issued again (a year later, pool of one).
func TestLiveNumbersNeverRepeat(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		const pool = 97
		e := newEnv(t, dsn, func(c *Config) { c.PoolSize = pool })
		rotated := e.another(dsn, func(c *Config) { c.PoolKey = key("another pool key") })
		seen := map[ecml.PAN]bool{}
		skipped := 0
		for i := 0; ; i++ {
			s := e.svc
			if i%2 == 1 {
				s = rotated
			}
			iss, err := s.Issue(ctx, "c", realCard, ecml.VirtualCardCredit, Controls{})
			if errors.Is(err, ErrExhausted) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if seen[iss.Number] {
				t.Fatalf("number %s issued twice", iss.Number)
			}
			seen[iss.Number] = true
		}
		var drawn, total int
		if err := e.db.QueryRowContext(ctx, `SELECT seed_count, total_count FROM vcn_pool`).Scan(&drawn, &total); err != nil {
			t.Fatal(err)
		}
		skipped = drawn - total
		if drawn != pool || total != len(seen) || skipped == 0 {
			t.Errorf("drawn %d, issued %d (counted %d), skipped %d", drawn, len(seen), total, skipped)
		}

		// A pool of one: the same number comes back on the same day of the
		// next year; its expired row is replaced, a live one is not.
		one := newEnv(t, dsn, func(c *Config) {
			c.PoolSize = 1
			c.BINs = map[string]string{ecml.VirtualCardCredit: "404150"}
		})
		first, err := one.svc.Issue(ctx, "card-1", realCard, ecml.VirtualCardCredit, DefaultControls(shop))
		if err != nil {
			t.Fatal(err)
		}
		one.clock.Set(paperDay.AddDate(1, 0, 0))
		again, err := one.svc.Issue(ctx, "card-2", otherCard, ecml.VirtualCardCredit, DefaultControls(shop))
		if err != nil || again.Number != first.Number {
			t.Fatalf("a year later: %v %v (same number: %v)", again, err, err == nil && again.Number == first.Number)
		}
		if r, err := one.authorize(again.Number, Use{Merchant: shop, Amount: 1, Currency: "KRW"}); err != nil || r.Real != otherCard || r.CardRef != "card-2" {
			t.Errorf("reissued number: %v %v", r, err)
		}
		// Keep it live (as if its lifetime had no bound) and try a year on.
		if _, err := one.db.ExecContext(ctx, `UPDATE vcn_number SET not_on_or_after = $1`,
			one.db.Dialect.Time(paperDay.AddDate(5, 0, 0))); err != nil {
			t.Fatal(err)
		}
		one.clock.Set(paperDay.AddDate(2, 0, 0))
		if _, err := one.svc.Issue(ctx, "card-3", realCard, ecml.VirtualCardCredit, Controls{}); !errors.Is(err, ErrExhausted) {
			t.Errorf("the live number's pool: %v, want ErrExhausted", err)
		}
	})
}

// TestConcurrentIssue: parallel issuers (two handles, as two processes,
// eight goroutines each) on a pool of 97 never repeat a number: exactly 97
// succeed, the others are ErrExhausted.
func TestConcurrentIssue(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		const pool, perWorker = 97, 8
		e := newEnv(t, dsn, func(c *Config) { c.PoolSize = pool })
		b := &env{svc: e.another(dsn, nil)}
		var (
			mu        sync.Mutex
			numbers   []ecml.PAN
			exhausted int
			failures  []error
		)
		testutil.Race(8, e, b, func(i int, x *env) {
			for range perWorker {
				iss, err := x.svc.Issue(ctx, fmt.Sprint("card-", i), realCard, ecml.VirtualCardCredit, Controls{})
				mu.Lock()
				switch {
				case err == nil:
					numbers = append(numbers, iss.Number)
				case errors.Is(err, ErrExhausted):
					exhausted++
				default:
					failures = append(failures, err)
				}
				mu.Unlock()
			}
		})
		for _, err := range failures {
			t.Error(err)
		}
		distinct := map[ecml.PAN]bool{}
		for _, n := range numbers {
			if distinct[n] {
				t.Errorf("number %s issued twice", n)
			}
			distinct[n] = true
		}
		if len(numbers) != pool || exhausted != 16*perWorker-pool {
			t.Errorf("%d issued, %d exhausted; want %d and %d", len(numbers), exhausted, pool, 16*perWorker-pool)
		}
	})
}

// TestNoNumberInClear: after issuing, approving, refusing, revoking, no
// row of the database, log line or error holds the virtual or the real
// number in clear (KECIS §9.11).
func TestNoNumberInClear(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, nil)
		var numbers []string
		var errs []error
		for i := range 12 {
			real := realCard
			if i%2 == 1 {
				real = otherCard
			}
			iss, err := e.svc.Issue(ctx, fmt.Sprint("card-", i%2), real, ecml.VirtualCardCredit, DefaultControls(shop))
			if err != nil {
				t.Fatal(err)
			}
			numbers = append(numbers, iss.Number.Reveal())
			_, err = e.authorize(iss.Number, Use{Merchant: shop, Amount: int64(1000 * i), Currency: "KRW"})
			errs = append(errs, err)
			_, err = e.authorize(iss.Number, Use{Merchant: shop, Amount: 1, Currency: "KRW"})
			errs = append(errs, err)
			if i%3 == 0 {
				errs = append(errs, e.svc.Revoke(ctx, iss.Number))
			}
		}
		_, err := e.svc.Issue(ctx, "c", ecml.PAN(numbers[0]), ecml.VirtualCardCredit, Controls{})
		errs = append(errs, err)
		secrets := append([]string{realCard.Reveal(), otherCard.Reveal()}, numbers...)
		leak := func(where, s string) {
			t.Helper()
			if ecml.ContainsPAN(s) {
				t.Errorf("%s holds a card number: %q", where, s)
			}
			for _, n := range secrets {
				// Nor the 15 digits before the check digit.
				if strings.Contains(s, n[:15]) {
					t.Errorf("%s holds the number %s", where, ecml.MaskPAN(n))
				}
			}
		}
		cells := 0
		for table, rows := range testutil.DumpDB(t, e.db.DB) {
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
						for _, n := range secrets {
							if i := strconv.FormatInt(v, 10); i == n || i == n[:15] {
								t.Errorf("%s holds a card number as an integer", where)
							}
						}
					}
				}
			}
		}
		if cells < 12*16 {
			t.Errorf("only %d cells dumped", cells)
		}
		logs := e.logs.String()
		for _, line := range strings.Split(logs, "\n") {
			leak("log line", line)
		}
		for _, want := range []string{"vcn issued", "vcn use accepted", "vcn use refused", "vcn revoked", "404143******"} {
			if !strings.Contains(logs, want) {
				t.Errorf("no %q in the logs", want)
			}
		}
		for _, err := range errs {
			if err != nil {
				leak("error", err.Error())
			}
		}
	})
}

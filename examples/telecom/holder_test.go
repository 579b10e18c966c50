package telecom

import (
	"context"
	"errors"
	"strings"
	"testing"
	"unicode"
)

// TestMatchName is the outcomes table of the name comparison (KECIS
// §15.10): Korean and Latin names, spacing, case, one character, the order
// of family and given name.
func TestMatchName(t *testing.T) {
	for _, c := range []struct {
		holder, given string
		want          HolderOutcome
	}{
		// The same name after normalisation.
		{"홍길동", "홍길동", HolderMatch},
		{"홍길동", " 홍 길동 ", HolderMatch},
		{"홍길동", "홍\u200b길동", HolderMatch},            // a zero-width space
		{"홍길동", "\u1112\u1169\u11bc길동", HolderMatch}, // 홍 as conjoining jamo (NFKC composes)
		{"John SMITH", "john smith", HolderMatch},
		{"John SMITH", "JohnSmith", HolderMatch},
		{"John SMITH", "ＪＯＨＮ　ＳＭＩＴＨ", HolderMatch}, // full-width Latin and space
		{"홍Gildong", "홍 GILDONG", HolderMatch},    // Hangul/Latin spacing
		// One character.
		{"홍길동", "홍길둥", HolderCloseMatch},
		{"홍길동", "홍길", HolderCloseMatch},
		{"홍길동", "홍길동이", HolderCloseMatch},
		{"홍길동", "훙 길동", HolderCloseMatch},
		{"John Smith", "Jon Smith", HolderCloseMatch},
		{"John Smith", "John Smyth", HolderCloseMatch},
		{"John Smith", "John Smiths", HolderCloseMatch},
		{"Gil-dong Hong", "Gildong Hong", HolderCloseMatch},
		// Family and given name swapped.
		{"홍길동", "길동 홍", HolderCloseMatch},
		{"홍길동", "길동홍", HolderCloseMatch},
		{"남궁민수", "민수남궁", HolderCloseMatch}, // a two-syllable family name
		{"HONG GILDONG", "Gildong Hong", HolderCloseMatch},
		{"HONG GILDONG", "gildonghong", HolderCloseMatch}, // the holder's space is the boundary
		{"Hong Gil Dong", "Gil Dong Hong", HolderCloseMatch},
		{"홍 Gildong", "Gildong홍", HolderCloseMatch},
		// Anything else.
		{"홍길동", "홍길순자", HolderNoMatch}, // two characters
		{"홍길동", "김철수", HolderNoMatch},
		{"홍길동", "동길홍", HolderNoMatch}, // reversed, not swapped
		{"홍길동", "", HolderNoMatch},
		{"홍길동", "   ", HolderNoMatch},
		{"이수", "이", HolderNoMatch},                // one character is too short to be close
		{"JOHNSMITH", "SMITHJOHN", HolderNoMatch}, // no word boundary on either side
		{"John Smith", "Smith Jones", HolderNoMatch},
		{"김철수", "김철수 ", HolderMatch},
	} {
		if got := MatchName(c.holder, c.given); got != c.want {
			t.Errorf("MatchName(%q, %q) = %s, want %s", c.holder, c.given, got, c.want)
		}
		if got := MatchName(c.given, c.holder); got != c.want && strings.TrimSpace(c.given) != "" {
			t.Errorf("MatchName(%q, %q) = %s, want %s (symmetric)", c.given, c.holder, got, c.want)
		}
	}
}

// TestHolderCheck: the carrier's check answers each outcome; an unknown,
// suspended or terminated line is not-possible whatever the name; the
// holder's name and the number never appear in the logs.
func TestHolderCheck(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	if err := e.tc.AddSubscriber(ctx, Subscriber{Phone: "010-5555-0001", HolderName: "Gildong HONG", BirthDate: payeeBirth}); err != nil {
		t.Fatal(err)
	}
	if err := e.tc.AddSubscriber(ctx, Subscriber{Phone: "010-5555-0002", HolderName: "이영희", BirthDate: payeeBirth, Status: SubscriberSuspended}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		phone, name string
		want        HolderOutcome
	}{
		{payeePhone, payeeName, HolderMatch},
		{payeeE164, "홍 길 동", HolderMatch},
		{payeePhone, "홍길둥", HolderCloseMatch},
		{payeePhone, "길동 홍", HolderCloseMatch},
		{"010-5555-0001", "hong gildong", HolderCloseMatch},
		{"010-5555-0001", "gildong hong", HolderMatch},
		{payeePhone, "김철수", HolderNoMatch},
		{payeePhone, "", HolderNoMatch},
		{"010-9999-0000", payeeName, HolderNotPossible}, // unknown
		{"010-5555-0002", "이영희", HolderNotPossible},     // suspended
	} {
		got, err := e.tc.HolderCheck(ctx, c.phone, c.name)
		if err != nil || got != c.want {
			t.Errorf("HolderCheck(%s, %q) = %s, %v; want %s", c.phone, c.name, got, err, c.want)
		}
	}
	if err := e.tc.SetSubscriberStatus(ctx, "010-5555-0001", SubscriberTerminated); err != nil {
		t.Fatal(err)
	}
	if got, err := e.tc.HolderCheck(ctx, "010-5555-0001", "gildong hong"); err != nil || got != HolderNotPossible {
		t.Errorf("terminated line: %s, %v", got, err)
	}
	if _, err := e.tc.HolderCheck(ctx, "02-123-4567", payeeName); !errors.Is(err, ErrInvalid) {
		t.Errorf("landline: %v, want ErrInvalid", err)
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "holder check") {
		t.Fatalf("no holder check logged:\n%s", logs)
	}
	for _, clear := range []string{"5555-0001", "55550001", "5555-0002", "55550002", "99990000", "9999-0000", "Gildong", "이영희"} {
		if strings.Contains(logs, clear) {
			t.Errorf("the logs show %q:\n%s", clear, logs)
		}
	}
}

// FuzzNormalizeName: normalising is idempotent and leaves no white space;
// a name matches itself, and MatchName is symmetric and never says
// not-possible. The corpus is under testdata/fuzz/FuzzNormalizeName.
func FuzzNormalizeName(f *testing.F) {
	for _, s := range []string{"홍길동", " 홍 길동 ", "John SMITH", "ＪＯＨＮ", "홍Gildong", "남궁 민수", "\u1112\u1169\u11bc", "ß ǅ ﬁ", "\u200b"} {
		f.Add(s, "길동 홍")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		n := normalizeName(a)
		if strings.ContainsFunc(n, unicode.IsSpace) {
			t.Fatalf("normalizeName(%q) = %q has white space", a, n)
		}
		if nn := normalizeName(n); nn != n {
			t.Fatalf("normalizeName is not idempotent: %q → %q → %q", a, n, nn)
		}
		if n != "" && MatchName(a, a) != HolderMatch {
			t.Fatalf("%q does not match itself", a)
		}
		ab, ba := MatchName(a, b), MatchName(b, a)
		if ab != ba || ab == HolderNotPossible {
			t.Fatalf("MatchName(%q, %q) = %s, the other way %s", a, b, ab, ba)
		}
		if ab == HolderMatch && normalizeName(a) != normalizeName(b) {
			t.Fatalf("%q and %q match but normalise differently", a, b)
		}
	})
}

package sms

import (
	"errors"
	"strings"
	"testing"
)

func TestMeasure(t *testing.T) {
	hangul45 := strings.Repeat("가", 45) // 90 bytes
	tests := []struct {
		name  string
		text  string
		bytes int
		kind  Kind
		err   error
	}{
		{"ascii", "Your code is 123456", 19, KindSMS, nil},
		{"hangul", "인증번호 123456", 15, KindSMS, nil},
		{"mixed punctuation", "[KECIS] 이체 확인: 15,000원", 27, KindSMS, nil},
		{"90 ascii bytes", strings.Repeat("a", 90), 90, KindSMS, nil},
		{"91 ascii bytes", strings.Repeat("a", 91), 91, KindLMS, nil},
		{"45 hangul = 90 bytes", hangul45, 90, KindSMS, nil},
		{"46 hangul = 92 bytes", hangul45 + "가", 92, KindLMS, nil},
		{"44 hangul + 2 ascii", strings.Repeat("가", 44) + "ab", 90, KindSMS, nil},
		{"44 hangul + 3 ascii", strings.Repeat("가", 44) + "abc", 91, KindLMS, nil},
		// 똠 and 햏 are outside KS X 1001's 2,350 syllables but inside
		// CP949 (UHC), which carriers use: still two bytes.
		{"UHC syllables", "똠햏", 4, KindSMS, nil},
		{"KS X 1001 symbols", "※ ￦ ㈜", 8, KindSMS, nil},
		{"hanja", "韓國", 4, KindSMS, nil},
		{"newlines", "a\nb\r\n", 5, KindSMS, nil},
		{"LMS limit", strings.Repeat("가", 1000), 2000, KindLMS, nil},
		{"over LMS limit", strings.Repeat("가", 1000) + "a", 2001, KindLMS, ErrTextTooLong},
		{"emoji", "확인 👍", 7, KindSMS, ErrUnencodable},
		{"invalid UTF-8", "a\xffb", 4, KindSMS, ErrUnencodable},
		{"empty", "", 0, "", ErrEmptyText},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := Measure(tt.text)
			if !errors.Is(err, tt.err) || (tt.err == nil && err != nil) {
				t.Fatalf("Measure error = %v, want %v", err, tt.err)
			}
			if info.Bytes != tt.bytes || info.Kind != tt.kind {
				t.Errorf("Measure = %+v, want %d bytes %s", info, tt.bytes, tt.kind)
			}
		})
	}
	if _, err := Measure("확인 👍"); err == nil || !strings.Contains(err.Error(), "U+1F44D") {
		t.Errorf("unencodable error should name the code point: %v", err)
	}
}

func TestCheckKind(t *testing.T) {
	short, _ := Measure("안녕")
	long, _ := Measure(strings.Repeat("가", 46))
	if k, err := CheckKind(short, ""); err != nil || k != KindSMS {
		t.Errorf("short auto = %s, %v", k, err)
	}
	if k, err := CheckKind(short, KindLMS); err != nil || k != KindLMS {
		t.Errorf("short as LMS = %s, %v", k, err)
	}
	if k, err := CheckKind(long, ""); err != nil || k != KindLMS {
		t.Errorf("long auto = %s, %v", k, err)
	}
	if _, err := CheckKind(long, KindSMS); !errors.Is(err, ErrTextTooLong) {
		t.Errorf("long as SMS: %v, want ErrTextTooLong", err)
	}
	if _, err := CheckKind(short, "MMS"); err == nil {
		t.Error("MMS accepted")
	}
}

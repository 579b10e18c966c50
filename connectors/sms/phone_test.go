package sms

import (
	"errors"
	"strings"
	"testing"
)

func TestNormalizePhone(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"010-1234-5678", "+821012345678"},
		{"01012345678", "+821012345678"},
		{" 010 1234 5678 ", "+821012345678"},
		{"(010) 1234.5678", "+821012345678"},
		{"+82 10-1234-5678", "+821012345678"},
		{"+821012345678", "+821012345678"},
		{"+82 010-1234-5678", "+821012345678"}, // trunk zero kept by mistake
		{"0082-10-1234-5678", "+821012345678"},
		{"821012345678", "+821012345678"},
		{"011-123-4567", "+82111234567"},
		{"011-1234-5678", "+821112345678"},
		{"016-123-4567", "+82161234567"},
		{"017-9876-5432", "+821798765432"},
		{"018-123-4567", "+82181234567"},
		{"019-123-4567", "+82191234567"},
		{"+1 415 555 0123", "+14155550123"},
		{"+44 20 7946 0958", "+442079460958"},
		{"001-415-555-0123", "+14155550123"},
	}
	for _, tt := range tests {
		got, err := NormalizePhone(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("NormalizePhone(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}

	bad := []string{
		"",
		"   ",
		"02-123-4567",       // Seoul landline
		"+82 2 123 4567",    // landline in E.164
		"031-123-4567",      // landline
		"010-123-4567",      // 010 needs eight digits
		"010-1234-56789",    // too long
		"012-1234-5678",     // not a mobile prefix
		"015-123-4567",      // not a mobile prefix
		"011-12-3456",       // too short
		"1234567",           // no country
		"+0123456789",       // country code cannot start with 0
		"+1234567",          // too short for E.164
		"+1234567890123456", // 16 digits
		"010-1234-567a",
		"010+1234+5678",
		"+",
		"---",
		"01012345678901234567890",
	}
	for _, in := range bad {
		got, err := NormalizePhone(in)
		if err == nil || !errors.Is(err, ErrInvalidNumber) {
			t.Errorf("NormalizePhone(%q) = %q, %v; want ErrInvalidNumber", in, got, err)
		}
		if err != nil && len(in) > 6 && containsDigits(err.Error(), in) {
			t.Errorf("error for %q repeats the number: %v", in, err)
		}
	}
}

// containsDigits reports whether msg contains the digits of number as one run.
func containsDigits(msg, number string) bool {
	var d []byte
	for i := 0; i < len(number); i++ {
		if number[i] >= '0' && number[i] <= '9' {
			d = append(d, number[i])
		}
	}
	return len(d) > 4 && strings.Contains(msg, string(d))
}

func TestPhoneFormats(t *testing.T) {
	tests := []struct {
		in, national, display, masked string
		mobile                        bool
	}{
		{"+821012345678", "01012345678", "010-1234-5678", "010-****-5678", true},
		{"010-1234-5678", "01012345678", "010-1234-5678", "010-****-5678", true},
		{"011-123-4567", "0111234567", "011-123-4567", "011-***-4567", true},
		{"+14155550123", "+14155550123", "+14155550123", "+14*****0123", false},
		{"02-123-4567", "", "", "*****4567", false},
		{"12", "", "", "****", false},
	}
	for _, tt := range tests {
		if got := National(tt.in); got != tt.national {
			t.Errorf("National(%q) = %q, want %q", tt.in, got, tt.national)
		}
		if got := FormatPhone(tt.in); got != tt.display {
			t.Errorf("FormatPhone(%q) = %q, want %q", tt.in, got, tt.display)
		}
		if got := MaskPhone(tt.in); got != tt.masked {
			t.Errorf("MaskPhone(%q) = %q, want %q", tt.in, got, tt.masked)
		}
		if got := IsKoreanMobile(tt.in); got != tt.mobile {
			t.Errorf("IsKoreanMobile(%q) = %v, want %v", tt.in, got, tt.mobile)
		}
	}
	if MaskPhone("") != "" {
		t.Error(`MaskPhone("") should be ""`)
	}
}

func TestNormalizeCallerID(t *testing.T) {
	good := map[string]string{
		"1588-1234":     "15881234",
		"02-123-4567":   "021234567",
		"010-1234-5678": "01012345678",
		"114":           "114",
		"+821012345678": "+821012345678",
	}
	for in, want := range good {
		if got, err := NormalizeCallerID(in); err != nil || got != want {
			t.Errorf("NormalizeCallerID(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "12", "1588-1234x", "1234567890123456", "+82 2"} {
		if got, err := NormalizeCallerID(in); !errors.Is(err, ErrInvalidNumber) {
			t.Errorf("NormalizeCallerID(%q) = %q, %v; want ErrInvalidNumber", in, got, err)
		}
	}
}

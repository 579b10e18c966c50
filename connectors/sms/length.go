package sms

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/korean"
)

// Kind is the Korean message type that a text's length selects.
type Kind string

const (
	// KindSMS is a short message: at most [MaxSMSBytes] EUC-KR bytes.
	KindSMS Kind = "SMS"
	// KindLMS is a long message: at most [MaxLMSBytes] EUC-KR bytes.
	KindLMS Kind = "LMS"
)

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool { return k == KindSMS || k == KindLMS }

// Korean carriers measure texts in EUC-KR (code page 949) bytes: one byte
// per ASCII character, two per Hangul syllable or other KS X 1001/CP949
// character.
const (
	// MaxSMSBytes is the longest SMS text.
	MaxSMSBytes = 90
	// MaxLMSBytes is the longest LMS text.
	MaxLMSBytes = 2000
)

var (
	// ErrEmptyText is returned for a message without text.
	ErrEmptyText = errors.New("sms: empty text")
	// ErrTextTooLong is wrapped when a text exceeds [MaxLMSBytes], or
	// [MaxSMSBytes] when SMS was asked for.
	ErrTextTooLong = errors.New("sms: text too long")
	// ErrUnencodable is wrapped when a text contains characters that
	// EUC-KR (CP949) cannot carry, such as emoji: a Korean carrier would
	// deliver them as '?'.
	ErrUnencodable = errors.New("sms: text has characters that EUC-KR cannot encode")
)

// TextInfo is what [Measure] finds out about a text.
type TextInfo struct {
	// Bytes is the text's length in EUC-KR bytes.
	Bytes int
	// Kind is the smallest kind that carries the text.
	Kind Kind
}

// KoreanByteLen returns the length of text in EUC-KR (CP949) bytes and the
// characters that encoding cannot represent, each counted as two bytes
// (invalid UTF-8 is reported as utf8.RuneError).
func KoreanByteLen(text string) (n int, unencodable []rune) {
	enc := korean.EUCKR.NewEncoder()
	var buf [utf8.UTFMax]byte
	for i, r := range text {
		if r < utf8.RuneSelf {
			n++
			continue
		}
		size := utf8.EncodeRune(buf[:], r)
		if r == utf8.RuneError {
			if _, w := utf8.DecodeRuneInString(text[i:]); w == 1 {
				unencodable = append(unencodable, r)
				n += 2
				continue
			}
		}
		out, err := enc.Bytes(buf[:size])
		if err != nil {
			unencodable = append(unencodable, r)
			n += 2
			continue
		}
		n += len(out)
	}
	return n, unencodable
}

// Measure returns the EUC-KR length of text and the kind that carries it:
// SMS up to [MaxSMSBytes], LMS up to [MaxLMSBytes]. It fails with
// [ErrEmptyText], [ErrUnencodable] or [ErrTextTooLong].
func Measure(text string) (TextInfo, error) {
	if text == "" {
		return TextInfo{}, ErrEmptyText
	}
	n, bad := KoreanByteLen(text)
	info := TextInfo{Bytes: n, Kind: KindSMS}
	if n > MaxSMSBytes {
		info.Kind = KindLMS
	}
	if len(bad) > 0 {
		return info, fmt.Errorf("%w: %s", ErrUnencodable, describeRunes(bad))
	}
	if n > MaxLMSBytes {
		return info, fmt.Errorf("%w: %d bytes, at most %d", ErrTextTooLong, n, MaxLMSBytes)
	}
	return info, nil
}

// CheckKind checks that a text measured as info fits the kind a sender
// asked for (an LMS may carry a short text; an SMS may not carry a long one)
// and returns the kind to use: want, or info.Kind when want is "".
func CheckKind(info TextInfo, want Kind) (Kind, error) {
	switch want {
	case "":
		return info.Kind, nil
	case KindLMS:
		return KindLMS, nil
	case KindSMS:
		if info.Bytes > MaxSMSBytes {
			return "", fmt.Errorf("%w: %d bytes do not fit an SMS (at most %d)", ErrTextTooLong, info.Bytes, MaxSMSBytes)
		}
		return KindSMS, nil
	}
	return "", fmt.Errorf("sms: unknown message type %q (want SMS or LMS)", string(want))
}

// describeRunes names characters by code point (U+1F600), never printing a
// text's content.
func describeRunes(rs []rune) string {
	const max = 5
	var b strings.Builder
	for i, r := range rs {
		if i == max {
			b.WriteString(", …")
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("U+")
		h := strings.ToUpper(strconv.FormatInt(int64(r), 16))
		if len(h) < 4 {
			h = strings.Repeat("0", 4-len(h)) + h
		}
		b.WriteString(h)
	}
	return b.String()
}

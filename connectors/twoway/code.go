package twoway

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/kecis/kecis/ecml"
)

// CodeDigits is the length of a 2-WAY code (KECIS §15.5 allows 4 to 10).
const CodeDigits = 6

// codeModulus is 10^CodeDigits.
const codeModulus = 1_000_000

// mac is the engine's keyed hash of a labelled list of values, each
// length-prefixed so that no two lists hash alike.
func mac(key []byte, label string, parts ...string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(label))
	for _, p := range parts {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(p)))
		h.Write(n[:])
		h.Write([]byte(p))
	}
	return h.Sum(nil)
}

// bound lists what a code is bound to (KECIS §15.5): the request, the
// remitter, the payee's bank, account and phone, the amount, the purpose
// and the terms.
func bound(r *Request) []string {
	parts := []string{r.ID, r.RemitterBank, digitsOnly(r.RemitterAccount.Reveal()), r.PayeeBank,
		digitsOnly(r.PayeeAccount.Reveal()), r.PayeePhone, strconv.FormatInt(r.Amount.Minor, 10), r.Amount.Currency, r.Purpose}
	if t := r.Terms; t != nil {
		parts = append(parts, "terms", t.Principal, t.Currency, t.RepaymentDate, t.InterestRate, t.Text)
	}
	return parts
}

// deriveCode is the request's code: HMAC under key over the nonce and
// everything the code is bound to, reduced to CodeDigits digits (the bias
// of 2⁶⁴ mod 10⁶ is below 10⁻¹³).
func deriveCode(key, nonce []byte, r *Request) string {
	sum := mac(key, "kecis twoway code v1", append([]string{string(nonce)}, bound(r)...)...)
	n := binary.BigEndian.Uint64(sum[:8]) % codeModulus
	return fmt.Sprintf("%0*d", CodeDigits, n)
}

// codeMAC is the stored keyed hash of a code, bound to its request.
func codeMAC(key []byte, id, code string) []byte {
	return mac(key, "kecis twoway code check v1", id, code)
}

// checkCode reports whether code is the request's: it must match the
// stored keyed hash and the code recomputed from the request as it is
// now, so that a change of any bound field invalidates it.
func checkCode(key []byte, r *Request, code string) bool {
	if len(code) != CodeDigits || !ecml.AllDigits(code) || len(r.CodeMAC) == 0 || len(r.Nonce) == 0 {
		return false
	}
	stored := hmac.Equal(codeMAC(key, r.ID, code), r.CodeMAC)
	fresh := hmac.Equal([]byte(deriveCode(key, r.Nonce, r)), []byte(code))
	return stored && fresh
}

// ReplyKind is what a payee's SMS reply says.
type ReplyKind int

const (
	// ReplyUnreadable: neither one code nor a refusal.
	ReplyUnreadable ReplyKind = iota
	// ReplyCode: a code (consent to the transfer).
	ReplyCode
	// ReplyRefuse: the payee refuses the transfer.
	ReplyRefuse
)

// MaxReplyLen bounds the reply text read, in bytes (an LMS is 2,000 EUC-KR
// bytes; a reply is one word and a code).
const MaxReplyLen = 400

// consentWords may stand next to the code; refuseWords refuse.
var (
	consentWords = map[string]bool{"승인": true, "동의": true, "확인": true, "수락": true, "예": true, "네": true,
		"yes": true, "ok": true, "y": true, "accept": true, "approve": true, "인증": true, "인증번호": true, "code": true}
	refuseWords = map[string]bool{"거절": true, "거부": true, "취소": true, "아니오": true, "아니요": true,
		"no": true, "n": true, "refuse": true, "reject": true, "deny": true, "stop": true}
)

// ParseReply reads a payee's reply (KECIS §15.5): the code, possibly with
// a word of consent ("승인 123456", "123 456", full-width digits), or a
// refusal ("거절", "NO"). Anything else — two codes, a code and a refusal,
// a code of another length, other words — is unreadable, and counts as no
// attempt. It returns the code's digits for ReplyCode.
func ParseReply(text string) (ReplyKind, string) {
	if len(text) > MaxReplyLen || !utf8.ValidString(text) {
		return ReplyUnreadable, ""
	}
	var words []string
	var cur strings.Builder
	var digits strings.Builder
	flush := func() {
		if cur.Len() > 0 {
			words = append(words, cur.String())
			cur.Reset()
		}
	}
	for _, c := range text {
		switch {
		case c >= '０' && c <= '９':
			c = '0' + (c - '０')
		case c >= 'Ａ' && c <= 'Ｚ', c >= 'ａ' && c <= 'ｚ':
			c -= 0xFEE0
		}
		switch {
		case c >= '0' && c <= '9':
			flush()
			digits.WriteRune(c)
		case unicode.IsLetter(c):
			if digits.Len() > 0 {
				words = append(words, "#"+digits.String())
				digits.Reset()
			}
			cur.WriteRune(unicode.ToLower(c))
		case unicode.IsSpace(c) || c == '-' || c == '.' || c == ',' || c == '!' || c == ':' || c == '[' || c == ']' || c == '(' || c == ')':
			flush()
		default:
			return ReplyUnreadable, ""
		}
	}
	flush()
	if digits.Len() > 0 {
		words = append(words, "#"+digits.String())
	}
	// Digits separated only by spaces or punctuation ("123 456") are one
	// run, one code; a word between two runs makes two codes.
	var code string
	var refuse, other bool
	codes := 0
	for _, w := range words {
		switch {
		case strings.HasPrefix(w, "#"):
			codes++
			code = w[1:]
		case refuseWords[w]:
			refuse = true
		case consentWords[w]:
		default:
			other = true
		}
	}
	switch {
	case other || (refuse && codes > 0):
		return ReplyUnreadable, ""
	case refuse:
		return ReplyRefuse, ""
	case codes == 1 && len(code) == CodeDigits:
		return ReplyCode, code
	}
	return ReplyUnreadable, ""
}

// digitsOnly drops an account number's hyphens.
func digitsOnly(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s)
}

// MaskAccount shows the last four digits of an account number only
// ("****-5678"), as the bank's statements do: ecml.MaskAccount of a
// secret.
func MaskAccount(number ecml.Secret) string { return ecml.MaskAccount(number.Reveal()) }

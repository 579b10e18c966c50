package twoway

import (
	"fmt"
	"strings"

	"github.com/kecis/kecis/connectors/sms"
	"github.com/kecis/kecis/ecml"
)

// text opens a text with the bank's name.
func (e *Engine) text(_ *Request, format string, args ...any) string {
	return "[" + e.cfg.BankName + "] " + fmt.Sprintf(format, args...)
}

// codeText is the payee's text (steps 3 to 5, KECIS §15.5): who sends how
// much to which account, the terms of a mutual agreement, the code and
// its validity, how to refuse; for phishing prevention, the warning that
// receiving fraudulent money is a crime.
func (e *Engine) codeText(r *Request, code string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[%s] %s님이 %s을(를) %s 은행 %s 계좌로 보내려 합니다.", e.cfg.BankName, r.RemitterName,
		r.Amount.Display(), r.PayeeBank, MaskAccount(r.PayeeAccount))
	if r.Purpose == MutualAgreement && r.Terms != nil {
		t := r.Terms
		principal := t.Principal
		if m, err := ecml.ParseAmount(t.Principal, t.Currency); err == nil {
			principal = m.Display()
		}
		fmt.Fprintf(&b, " 차용 약정: 원금 %s, 상환일 %s, 연 이자 %s%%. 약정 내용: %s.", principal, t.RepaymentDate, t.InterestRate, t.Text)
		fmt.Fprintf(&b, " 이 약정에 동의하면 인증번호 %s 을(를) 회신하세요.", code)
	} else {
		fmt.Fprintf(&b, " 받을 돈이 맞으면 인증번호 %s 을(를) 회신하세요.", code)
	}
	fmt.Fprintf(&b, " 유효시간 %d분. 받지 않으려면 '거절'을 회신하세요.", int(e.cfg.CodeValidity.Minutes()))
	if r.Purpose == PhishingPrevention {
		b.WriteString(" 경고: 보이스피싱 등 범죄로 얻은 돈인 줄 알면서 받거나 전달하면 형사처벌될 수 있습니다.")
	}
	return b.String()
}

// resultText is the remitter's text (steps 10 to 12).
func (e *Engine) resultText(r *Request) string {
	to := r.PayeeBank + " " + MaskAccount(r.PayeeAccount)
	switch r.State {
	case Completed:
		return e.text(r, "2-WAY 송금 완료: %s → %s (%s 수취 확인).", r.Amount.Display(), to, sms.MaskPhone(r.PayeePhone))
	case Reversed:
		return e.text(r, "2-WAY 송금 실패: 받는 은행이 거절하여 %s이 출금 계좌로 반환되었습니다.", r.Amount.Display())
	default:
		return e.text(r, "2-WAY 송금 %s: %s → %s. 돈은 이동하지 않았습니다.", endedWords(r.State), r.Amount.Display(), to)
	}
}

// endedWords says in Korean why a request ended.
func endedWords(s State) string {
	switch s {
	case Refused:
		return "수취인 거절"
	case WrongCode:
		return "인증번호 오류"
	case Expired:
		return "시간 초과"
	case Cancelled, Abandoned:
		return "취소"
	case Failed:
		return "실패"
	case Reversed:
		return "반환"
	case Completed:
		return "완료"
	}
	return string(s)
}

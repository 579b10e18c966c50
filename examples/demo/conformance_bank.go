package demo

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/kecis/kecis/conformance"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/examples/bank"
	"github.com/kecis/kecis/examples/telecom"
)

// The bank and telecom plans against the demo (docs/conformance.md, the
// transfer, account, twoway and phone modules): bank A — the one bank that
// offers every service of the bank plan, 2-WAY included — and the telecom,
// with the test hooks the twoway module needs (the payee's texts, its
// replies, the payee's balance).

// Hooks of the bank plan on the demo's conformance hooks listener
// (demo.json conformance.hooks.sms, sms_reply, balance).
const (
	SMSHookPath      = "/sms"
	SMSReplyHookPath = "/sms-reply"
	BalanceHookPath  = "/balance"
)

// closedAccount is an account of the first customer of bank A that test
// mode opens and closes, for the transfer and account modules' closed
// account (answered as an unknown one, KECIS §15.8, §15.9).
const closedAccount = "0880-1000-0099"

// seedClosedAccount opens and closes closedAccount at bank A,
// idempotently (test mode only: it is not one of demo.json's accounts).
func (d *Demo) seedClosedAccount(ctx context.Context) error {
	b := d.Banks[0]
	c := b.Customers[0]
	oa, err := b.Bank.OpenAccount(ctx, bank.OpenAccountRequest{CustomerID: c.ID, Number: ecml.Secret(closedAccount),
		IdempotencyKey: "account-conformance-closed"})
	if err != nil {
		return err
	}
	_, err = b.Bank.CloseAccount(ctx, oa.ID, "close-conformance-closed")
	return err
}

// conformanceBank is the transfer and account modules' section of bank
// A's profile: the tester credits as TesterBankCode a customer's account
// (not the 2-WAY remitter's, whose balance the twoway module spends), the
// closed account, and bank B's payee's number as another bank's.
func (d *Demo) conformanceBank() *conformance.BankProfile {
	a, b := d.Banks[0], d.Banks[1]
	c := a.Customers[1]
	return &conformance.BankProfile{Currency: bank.Currency, Code: a.Code, CallerCode: TesterBankCode,
		Account:       conformance.BankAccountProfile{Number: c.Accounts[0].Number, Holder: c.Name},
		ClosedAccount: closedAccount, ForeignAccount: b.Customers[0].Accounts[0].Number, Amount: "1000"}
}

// conformanceTwoWay is the twoway module's section of bank A's profile:
// the remitter Kim Jiho sends to Lee Sora at bank B (her phone is hers:
// the name check matches); the other number is bank A's other customer's,
// which bank A texts too.
func (d *Demo) conformanceTwoWay() *conformance.TwoWayProfile {
	a, b := d.Banks[0], d.Banks[1]
	remitter, payee := a.Customers[0], b.Customer("sora")
	return &conformance.TwoWayProfile{Currency: bank.Currency, Endpoint: testerFrontEndpoint(TesterID),
		Login: remitter.Login, Password: remitter.Password,
		Payee:      conformance.TwoWayPayee{BankCode: b.Code, Account: payee.Accounts[0].Number, Phone: payee.Phone},
		OtherPhone: a.Customers[1].Phone, Amount: "10000"}
}

// conformanceEscrow is the escrow module's section of bank A's profile
// (KECIS §15.6, §15.8 transfer:collect): Yoon Seoyeon pays on bank A's
// buyer page (two escrows and a collect, within her 1,000,000원), and the
// money is released to Kim Jiho's account at bank A, whose balance the
// balance hook reads. The page is on bank A's KECIS listener, whose TLS
// certificate its metadata publishes.
func (d *Demo) conformanceEscrow() *conformance.EscrowProfile {
	a := d.Banks[0]
	buyer, settle := a.Customer("seoyeon"), a.Customer("jiho")
	return &conformance.EscrowProfile{Currency: bank.Currency, BankCode: a.Code, Amount: "150000", CollectAmount: "1000",
		Buyer:      conformance.EscrowBuyer{Login: buyer.Login, Password: buyer.Password, Account: buyer.Accounts[0].Number},
		Settlement: conformance.EscrowAccount{BankCode: a.Code, Account: settle.Accounts[0].Number}}
}

// conformancePhone is the phone module's section of the telecom's profile:
// bank B's payees, one per outcome (KECIS §15.10), a name one character
// off, and a number no subscriber has.
func (d *Demo) conformancePhone() *conformance.PhoneProfile {
	b := d.Banks[1]
	var p conformance.PhoneProfile
	for _, c := range b.Customers {
		if c.Payee == "" {
			continue // the shop's settlement account: no payee of the 2-WAY demo
		}
		p.Checks = append(p.Checks, conformance.PhoneCheck{Number: c.Phone, Name: c.Name, Expect: c.Payee})
	}
	sora := b.Customer("sora")
	p.Checks = append(p.Checks, conformance.PhoneCheck{Number: sora.Phone, Name: sora.Name[:len(sora.Name)-1] + "o", Expect: PayeeCloseMatch},
		conformance.PhoneCheck{Number: "010-8999-0000", Name: sora.Name, Expect: "not-possible"})
	return &p
}

// smsHook serves POST /sms {"phone": N}: the texts phone N received, oldest
// first, as {"messages": [{"from", "text"}]} — from the telecom's inbox.
// Test mode only: the texts carry 2-WAY codes, which the suite redacts.
func (d *Demo) smsHook() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+SMSHookPath, func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Phone string `json:"phone"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10)).Decode(&in); err != nil || in.Phone == "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "the body must be {\"phone\": a number}"})
			return
		}
		inbox, err := d.Telecom.Inbox(r.Context(), in.Phone)
		if err != nil {
			hookError(w, err)
			return
		}
		type text struct {
			From string `json:"from"`
			Text string `json:"text"`
		}
		out := make([]text, 0, len(inbox))
		for _, m := range slices.Backward(inbox) {
			out = append(out, text{From: m.From, Text: m.Text})
		}
		writeJSON(w, http.StatusOK, map[string]any{"messages": out})
	})
	return mux
}

// smsReplyHook serves POST /sms-reply {"from": N, "text": T}: phone N
// replies T, through the telecom, to a text it received from a bank that
// takes replies (the 2-WAY bank's sender) — as its holder does on the
// telecom's phone page, in the thread of the text that carries what they
// type (the code they read there), else of the newest such text. The
// telecom forwards it to the bank's webhook as the phone's own reply.
func (d *Demo) smsReplyHook() http.Handler {
	var senders []string
	for _, b := range d.Banks {
		if b.twoWay {
			senders = append(senders, b.sender.ID)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+SMSReplyHookPath, func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			From string `json:"from"`
			Text string `json:"text"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10)).Decode(&in); err != nil || in.From == "" || in.Text == "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "the body must be {\"from\": a number, \"text\": the reply}"})
			return
		}
		inbox, err := d.Telecom.Inbox(r.Context(), in.From)
		if err != nil {
			hookError(w, err)
			return
		}
		fromBank := func(m telecom.Message) bool { return slices.Contains(senders, m.SenderID) }
		i := slices.IndexFunc(inbox, func(m telecom.Message) bool { return fromBank(m) && strings.Contains(m.Text, in.Text) })
		if i < 0 {
			i = slices.IndexFunc(inbox, fromBank)
		}
		if i < 0 {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "the phone received no text from a bank that takes replies"})
			return
		}
		if _, err := d.Telecom.Reply(r.Context(), in.From, in.Text, inbox[i].ID); err != nil {
			hookError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

// balanceHook serves POST /balance {"bank_code": C, "account": A}: the
// balance of account A at the demo's bank C, as {"balance" (ECML amount),
// "currency"}, from the bank's own books.
func (d *Demo) balanceHook() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+BalanceHookPath, func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			BankCode string `json:"bank_code"`
			Account  string `json:"account"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10)).Decode(&in); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "the body must be {\"bank_code\", \"account\"}"})
			return
		}
		i := slices.IndexFunc(d.Banks, func(b *Bank) bool { return b.Code == in.BankCode })
		if i < 0 {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no demo bank has that code"})
			return
		}
		a, err := d.Banks[i].Bank.FindAccount(r.Context(), ecml.Secret(in.Account))
		if err != nil {
			hookError(w, err)
			return
		}
		amount, err := ecml.FormatAmount(ecml.Money{Minor: a.Balance, Currency: a.Currency})
		if err != nil {
			hookError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"balance": amount, "currency": a.Currency})
	})
	return mux
}

// hookError answers a hook whose company refused or failed: 404 for what
// it does not know, 502 otherwise; the cause is not echoed (it may name a
// number).
func hookError(w http.ResponseWriter, err error) {
	var be *bank.Error
	switch {
	case errors.Is(err, telecom.ErrNotFound), errors.Is(err, telecom.ErrNotSubscriber), errors.Is(err, telecom.ErrInvalid),
		errors.As(err, &be) && be.Code == bank.CodeNoSuchAccount:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such phone, text or account"})
	default:
		writeJSON(w, http.StatusBadGateway, map[string]string{"error": "the company did not answer"})
	}
}

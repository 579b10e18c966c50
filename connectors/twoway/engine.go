package twoway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/sms"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

// Config configures an Engine.
type Config struct {
	// BankCode is the remitter's bank (three digits); BankName opens every
	// text ("[KECIS Bank] …").
	BankCode string
	BankName string
	// EntityID is the bank's KECIS entityID; Signer signs its evidence
	// records (KECIS §4).
	EntityID string
	Signer   *saml.Signer
	Store    Store
	Bank     Bank
	Holders  HolderInquirer
	Phones   PhoneChecker
	Credits  Crediter
	// SMS sends the texts from the bank's registered caller number From.
	SMS  sms.Sender
	From string
	// Key keys the codes and the hashes (at least 32 bytes, a bank
	// secret; the store's key).
	Key []byte
	// CodeValidity is how long the payee's code is valid (default 10
	// minutes); DecisionTimeout how long the remitter has to decide after
	// the name check (default 10 minutes); MaxAttempts the wrong replies a
	// request takes (default 3).
	CodeValidity    time.Duration
	DecisionTimeout time.Duration
	MaxAttempts     int
	// ProceedOnNoMatch lets the remitter confirm after a no-match or
	// not-possible name check (Confirmation of Payee lets a payer go on
	// at its own risk); by default the remitter may only abandon.
	ProceedOnNoMatch bool
	Now              func() time.Time
	Rand             io.Reader
	Log              *slog.Logger
}

// Defaults of Config.
const (
	DefaultCodeValidity    = 10 * time.Minute
	DefaultDecisionTimeout = 10 * time.Minute
	DefaultMaxAttempts     = 3
)

// Engine runs 2-WAY transfers (KECIS §15.5). It implements
// sms.ReplyHandler: mount sms.WebhookHandler(secret, engine) where the
// gateway delivers replies.
type Engine struct {
	cfg  Config
	now  func() time.Time
	rand io.Reader
	log  *slog.Logger
}

var _ sms.ReplyHandler = (*Engine)(nil)

// New checks cfg and returns the engine.
func New(cfg Config) (*Engine, error) {
	switch {
	case len(cfg.BankCode) != 3 || !ecml.AllDigits(cfg.BankCode):
		return nil, errors.New("twoway: BankCode must be three digits")
	case cfg.Store == nil || cfg.Bank == nil || cfg.Holders == nil || cfg.Phones == nil || cfg.Credits == nil || cfg.SMS == nil:
		return nil, errors.New("twoway: Store, Bank, Holders, Phones, Credits and SMS are required")
	case cfg.EntityID == "" || cfg.Signer == nil:
		return nil, errors.New("twoway: EntityID and Signer are required")
	case len(cfg.Key) < 32:
		return nil, errors.New("twoway: Key must be at least 32 bytes")
	}
	if _, err := sms.NormalizeCallerID(cfg.From); err != nil {
		return nil, fmt.Errorf("twoway: From: %w", err)
	}
	if cfg.BankName == "" {
		cfg.BankName = "KECIS Bank"
	}
	if cfg.CodeValidity <= 0 {
		cfg.CodeValidity = DefaultCodeValidity
	}
	if cfg.DecisionTimeout <= 0 {
		cfg.DecisionTimeout = DefaultDecisionTimeout
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Engine{cfg: cfg, now: cfg.Now, rand: cfg.Rand, log: cfg.Log}, nil
}

// Refusals the engine answers the remitter's page (public messages).
var (
	errNotYours     = connectors.Refuse(saml.StatusRequester, saml.CodeDeclined, "the withdrawal account is not the customer's")
	errKeyReused    = connectors.Refuse(saml.StatusRequester, saml.CodeDuplicate, "the idempotency key was used for another transfer")
	errNotAwaiting  = connectors.Refuse(saml.StatusRequester, saml.CodeDeclined, "the request is not awaiting the remitter's confirmation")
	errNameMismatch = connectors.Refuse(saml.StatusRequester, saml.CodeDeclined, "the payee's phone does not belong to the account holder: the transfer can only be abandoned")
	errTooLate      = connectors.Refuse(saml.StatusRequester, saml.CodeDeclined, "the payee has confirmed: the transfer can no longer be cancelled")
)

func (e *Engine) newID() (string, error) {
	b := make([]byte, 16)
	if _, err := io.ReadFull(e.rand, b); err != nil {
		return "", fmt.Errorf("twoway: random: %w", err)
	}
	return "tw" + hex.EncodeToString(b), nil
}

// invalid is the refusal of a malformed request, with a detail for the
// page (never a number it was given).
func invalid(detail string) error {
	return connectors.Refuse(saml.StatusRequester, saml.CodeInvalidPayload, "the transfer request is invalid: "+detail)
}

// validate checks and normalises a request (step 1).
func (e *Engine) validate(t *TransferRequest) (*TransferRequest, error) {
	c := *t
	switch {
	case c.Customer == "":
		return nil, invalid("no customer")
	case c.Amount.Minor <= 0 || c.Amount.Currency != "KRW":
		return nil, invalid("the amount must be a positive amount in KRW")
	case c.Purpose != PhishingPrevention && c.Purpose != MutualAgreement:
		return nil, invalid("the purpose must be phishing-prevention or mutual-agreement")
	case c.Purpose == MutualAgreement && (c.Terms == nil || strings.TrimSpace(c.Terms.Text) == "" || c.Terms.RepaymentDate == ""):
		return nil, invalid("a mutual agreement needs its terms: repayment date and the terms in words")
	}
	phone, err := sms.NormalizePhone(c.PayeePhone)
	if err != nil {
		return nil, invalid("the payee's phone must be a mobile number")
	}
	c.PayeePhone = phone
	if c.Terms != nil {
		terms := *c.Terms
		terms.Text = strings.TrimSpace(terms.Text)
		if terms.Currency == "" {
			terms.Currency = c.Amount.Currency
		}
		if terms.Principal == "" {
			terms.Principal = strconv.FormatInt(c.Amount.Minor, 10)
		}
		if terms.InterestRate == "" {
			terms.InterestRate = "0"
		}
		c.Terms = &terms
		if c.Purpose != MutualAgreement {
			return nil, invalid("terms belong to a mutual agreement")
		}
		if d, err := time.Parse(time.DateOnly, terms.RepaymentDate); err == nil && !d.After(e.now()) {
			return nil, invalid("the repayment date must be in the future")
		}
	}
	// ECML's own checks of bank codes, account numbers, terms (KECIS §14).
	p := &ecml.Payload{BankAccounts: []*ecml.BankAccount{
		{BankCode: e.cfg.BankCode, Role: "remitter", AccountNumber: c.Account},
		{BankCode: c.PayeeBank, Role: "payee", AccountNumber: c.PayeeAccount}}, Transfer: &ecml.Transfer{Purpose: c.Purpose, Terms: c.Terms}}
	for _, pr := range p.Validate(ecml.ValidateOptions{Now: e.now()}) {
		if strings.HasPrefix(pr.Path, "/kx:") {
			return nil, invalid(pr.Path + " " + pr.Message)
		}
	}
	return &c, nil
}

// Start takes a 2-WAY transfer request (steps 1 and 2, KECIS §15.5): it
// records it and runs the name check. The remitter's page shows the
// request's NameCheck and ShownHolder, then calls Confirm or Cancel. A
// request whose name check could not run yet (a bank or telecom that did
// not answer) is Checking; Recover and Lookup run it again.
func (e *Engine) Start(ctx context.Context, t *TransferRequest) (*Request, error) {
	t, err := e.validate(t)
	if err != nil {
		return nil, err
	}
	if t.IdempotencyKey != "" {
		if r, err := e.cfg.Store.ByKey(ctx, t.Customer, t.IdempotencyKey); err == nil {
			if !sameRequest(r, t) {
				return nil, errKeyReused
			}
			return e.drive(ctx, r)
		} else if !errors.Is(err, ErrNotFound) {
			return nil, err
		}
	}
	rem, err := e.cfg.Bank.Remitter(ctx, t.Customer, t.Account)
	if err != nil {
		if _, ok := connectors.AsStatus(err); ok {
			return nil, errNotYours
		}
		return nil, fmt.Errorf("twoway: the remitter's account: %w", err)
	}
	id, err := e.newID()
	if err != nil {
		return nil, err
	}
	now := e.now()
	r := &Request{ID: id, Customer: t.Customer, State: Checking, RemitterBank: e.cfg.BankCode, RemitterAccount: t.Account,
		RemitterName: rem.Name, RemitterPhone: rem.Phone, Amount: t.Amount, PayeeBank: t.PayeeBank, PayeeAccount: t.PayeeAccount,
		PayeePhone: t.PayeePhone, Purpose: t.Purpose, Terms: t.Terms, MaxAttempts: e.cfg.MaxAttempts,
		Deadline: now.Add(e.cfg.DecisionTimeout), IdempotencyKey: t.IdempotencyKey, Created: now, Updated: now}
	ev := e.event(EventRequested, map[string]string{"amount": strconv.FormatInt(r.Amount.Minor, 10), "currency": r.Amount.Currency,
		"remitter_bank": r.RemitterBank, "remitter_account": MaskAccount(r.RemitterAccount), "payee_bank": r.PayeeBank,
		"payee_account": MaskAccount(r.PayeeAccount), "payee_phone": sms.MaskPhone(r.PayeePhone), "purpose": r.Purpose})
	if err := e.cfg.Store.Create(ctx, r, ev); err != nil {
		if errors.Is(err, ErrExists) && t.IdempotencyKey != "" {
			// A concurrent submission with the key won: answer its request.
			if won, gerr := e.cfg.Store.ByKey(ctx, t.Customer, t.IdempotencyKey); gerr == nil {
				if !sameRequest(won, t) {
					return nil, errKeyReused
				}
				return e.drive(ctx, won)
			}
		}
		return nil, err
	}
	e.log.InfoContext(ctx, "twoway: request", "request", r.ID, "amount", r.Amount.Minor, "payee_bank", r.PayeeBank,
		"payee_account", MaskAccount(r.PayeeAccount), "purpose", r.Purpose)
	return e.check(ctx, r)
}

// sameRequest reports whether a repeated submission asks for the same
// transfer as the stored request.
func sameRequest(r *Request, t *TransferRequest) bool {
	return r.Amount == t.Amount && r.PayeeBank == t.PayeeBank && digitsOnly(r.PayeeAccount.Reveal()) == digitsOnly(t.PayeeAccount.Reveal()) &&
		r.PayeePhone == t.PayeePhone && r.Purpose == t.Purpose && digitsOnly(r.RemitterAccount.Reveal()) == digitsOnly(t.Account.Reveal())
}

func (e *Engine) event(kind string, detail map[string]string) Event {
	if detail == nil {
		detail = map[string]string{}
	}
	return Event{Kind: kind, At: e.now(), Detail: detail}
}

// check runs the name check (step 2): the holder's name at the payee's
// bank, then the telecom's check of the payee's phone against it.
func (e *Engine) check(ctx context.Context, r *Request) (*Request, error) {
	name, err := e.cfg.Holders.Holder(ctx, r.PayeeBank, r.PayeeAccount)
	if errors.Is(err, ErrNoSuchAccount) {
		r.State, r.Reason, r.Notified, r.Updated = Failed, "no such account", true, e.now()
		return e.save(ctx, r, e.event(EventNameCheck, map[string]string{"holder": "no such account"}), e.event(EventEnded, map[string]string{"state": string(Failed), "reason": r.Reason}))
	}
	if err != nil {
		e.log.WarnContext(ctx, "twoway: holder inquiry failed; retried", "request", r.ID, "error", errText(err))
		return r, nil
	}
	outcome, err := e.cfg.Phones.HolderCheck(ctx, r.PayeePhone, name)
	if err == nil && !outcome.Valid() {
		err = fmt.Errorf("twoway: the telecom answered %q", outcome)
	}
	if err != nil {
		e.log.WarnContext(ctx, "twoway: phone check failed; retried", "request", r.ID, "error", errText(err))
		return r, nil
	}
	r.State, r.HolderName, r.NameCheck, r.Updated = AwaitingConfirmation, name, outcome, e.now()
	e.log.InfoContext(ctx, "twoway: name check", "request", r.ID, "outcome", outcome)
	return e.save(ctx, r, e.event(EventNameCheck, map[string]string{"holder": name, "outcome": string(outcome)}))
}

// save writes r with its events; a lost compare-and-set answers the
// request as it now is.
func (e *Engine) save(ctx context.Context, r *Request, ev ...Event) (*Request, error) {
	if err := e.cfg.Store.Update(ctx, r, ev...); err != nil {
		if errors.Is(err, ErrConflict) {
			return e.cfg.Store.Get(ctx, r.ID)
		}
		return nil, err
	}
	return r, nil
}

// Lookup returns the customer's request (ErrNotFound for another's), its
// expiry applied and any step it owes tried again.
func (e *Engine) Lookup(ctx context.Context, customer, id string) (*Request, error) {
	r, err := e.cfg.Store.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if customer != "" && r.Customer != customer {
		return nil, ErrNotFound
	}
	return e.drive(ctx, r)
}

// Confirm is the remitter's confirmation after the name check (step 2):
// the engine draws the code and texts it to the payee (steps 3 to 5). A
// request past it answers as it is.
func (e *Engine) Confirm(ctx context.Context, customer, id string) (*Request, error) {
	r, err := e.Lookup(ctx, customer, id)
	if err != nil {
		return nil, err
	}
	switch {
	case r.State == Texting || r.State == AwaitingReply || r.State.MovedMoney() || (r.State.Ended() && !r.ConfirmedAt.IsZero()):
		return r, nil // confirmed already
	case r.State != AwaitingConfirmation:
		return r, errNotAwaiting
	case (r.NameCheck == NoMatch || r.NameCheck == NotPossible) && !e.cfg.ProceedOnNoMatch:
		return r, errNameMismatch
	}
	nonce := make([]byte, 16)
	if _, err := io.ReadFull(e.rand, nonce); err != nil {
		return nil, fmt.Errorf("twoway: random: %w", err)
	}
	now := e.now()
	code := deriveCode(e.cfg.Key, nonce, r)
	r.State, r.Nonce, r.CodeMAC, r.ConfirmedAt, r.Deadline, r.Updated = Texting, nonce, codeMAC(e.cfg.Key, r.ID, code), now, now.Add(e.cfg.CodeValidity), now
	if r, err = e.save(ctx, r, e.event(EventConfirmed, map[string]string{"name_check": string(r.NameCheck)})); err != nil {
		return nil, err
	}
	e.log.InfoContext(ctx, "twoway: remitter confirmed", "request", r.ID)
	return e.drive(ctx, r)
}

// Cancel is the remitter's refusal: after the name check it abandons the
// request, after the code was sent it cancels it. Once the payee has
// confirmed, money moves and Cancel is refused.
func (e *Engine) Cancel(ctx context.Context, customer, id string) (*Request, error) {
	for range 8 {
		r, err := e.Lookup(ctx, customer, id)
		if err != nil {
			return nil, err
		}
		switch {
		case r.State == Checking || r.State == AwaitingConfirmation:
			r.State, r.Reason, r.Notified = Abandoned, "abandoned by the remitter", true
		case r.State == Texting || r.State == AwaitingReply:
			r.State, r.Reason = Cancelled, "cancelled by the remitter"
		case r.State.Ended() && !r.State.MovedMoney():
			return r, nil
		default:
			return r, errTooLate
		}
		r.Updated = e.now()
		err = e.cfg.Store.Update(ctx, r, e.event(EventEnded, map[string]string{"state": string(r.State), "reason": r.Reason}))
		if errors.Is(err, ErrConflict) {
			continue // a reply or Recover moved it: judged again
		}
		if err != nil {
			return nil, err
		}
		e.log.InfoContext(ctx, "twoway: cancelled by the remitter", "request", r.ID, "state", r.State)
		return e.drive(ctx, r)
	}
	return nil, ErrConflict
}

// drive carries a request as far as it can go now: the name check, the
// code's text, the execution, the remitter's text; a wait past its
// deadline expires. Recover runs it, and every call that reads a request.
func (e *Engine) drive(ctx context.Context, r *Request) (*Request, error) {
	var err error
	for range 8 {
		before := r.Version
		switch r.State {
		case Checking, AwaitingConfirmation, Texting, AwaitingReply:
			if !e.now().Before(r.Deadline) {
				r, err = e.expire(ctx, r)
				break
			}
			switch r.State {
			case Checking:
				r, err = e.check(ctx, r)
			case Texting:
				r, err = e.sendCode(ctx, r)
			}
		case Confirmed:
			r, err = e.debit(ctx, r)
		case Debited:
			r, err = e.credit(ctx, r, ctx.Value(recovering{}) != nil)
		case Reversing:
			r, err = e.reverse(ctx, r)
		default:
			if !r.Notified {
				r, err = e.notify(ctx, r)
			}
		}
		if err != nil || r.Version == before {
			return r, err
		}
	}
	return r, nil
}

type recovering struct{}

// expire ends a wait past its deadline.
func (e *Engine) expire(ctx context.Context, r *Request) (*Request, error) {
	r.State, r.Reason, r.Updated = Expired, "expired", e.now()
	if r.ConfirmedAt.IsZero() {
		r.Notified = true // the remitter left before deciding: nothing to text
	}
	e.log.InfoContext(ctx, "twoway: expired", "request", r.ID)
	return e.save(ctx, r, e.event(EventEnded, map[string]string{"state": string(Expired), "reason": r.Reason}))
}

// code recomputes the request's code from its nonce (for its text, after
// a crash) and checks it against the stored hash.
func (e *Engine) code(r *Request) (string, error) {
	c := deriveCode(e.cfg.Key, r.Nonce, r)
	if !checkCode(e.cfg.Key, r, c) {
		return "", fmt.Errorf("twoway: request %s: its code no longer matches the request", r.ID)
	}
	return c, nil
}

// sendCode texts the payee the code and the terms (steps 3 to 5), with
// the request's reference as the gateway's idempotency key: sent again
// after a crash, it is delivered once.
func (e *Engine) sendCode(ctx context.Context, r *Request) (*Request, error) {
	code, err := e.code(r)
	if err != nil {
		// The request changed after the code was drawn: end it.
		e.log.ErrorContext(ctx, "twoway: code binding broken; request ended", "request", r.ID)
		r.State, r.Reason, r.Updated = Failed, "the request changed after confirmation", e.now()
		return e.save(ctx, r, e.event(EventEnded, map[string]string{"state": string(Failed), "reason": r.Reason}))
	}
	text := e.codeText(r, code)
	id, err := e.cfg.SMS.Send(ctx, sms.Message{From: e.cfg.From, To: r.PayeePhone, Text: text, Ref: r.ID + ".code"})
	if err != nil {
		e.log.WarnContext(ctx, "twoway: the code's text was not sent; retried", "request", r.ID, "error", errText(err))
		return r, nil
	}
	r.State, r.CodeMessage, r.Updated = AwaitingReply, id, e.now()
	e.log.InfoContext(ctx, "twoway: code texted", "request", r.ID, "to", sms.MaskPhone(r.PayeePhone), "message", id)
	return e.save(ctx, r, e.event(EventCodeSent, map[string]string{"to": sms.MaskPhone(r.PayeePhone), "message": id,
		"text": strings.ReplaceAll(text, code, strings.Repeat("*", CodeDigits)), "expires": r.Deadline.UTC().Format(time.RFC3339)}))
}

// HandleReply judges a payee's SMS reply (steps 6 to 8, KECIS §15.5). The
// reply is matched to its request by the message it answers, else by its
// sender; its sender must be the payee's phone. A correct code executes
// the transfer; a wrong one counts an attempt; "거절" refuses. A reply to a
// request that ended — expired, cancelled, refused — is answered by text
// and moves no money; a second reply after the payee confirmed does
// nothing. A reply redelivered by the gateway (same id) is judged once. It
// returns an error only when the reply could not be recorded, so that the
// gateway delivers it again.
func (e *Engine) HandleReply(ctx context.Context, rep sms.Reply) error {
	from, err := sms.NormalizePhone(rep.From)
	if err != nil {
		e.log.WarnContext(ctx, "twoway: reply without a valid sender", "reply", rep.ID)
		return nil
	}
	rep.From = from
	if rep.ReceivedAt.IsZero() {
		rep.ReceivedAt = e.now()
	}
	r, err := e.cfg.Store.ByMessage(ctx, rep.InReplyTo)
	if err == nil && r.PayeePhone != from {
		// Another phone answers the payee's text: never a confirmation.
		e.log.WarnContext(ctx, "twoway: reply from another number than the payee's", "request", r.ID, "from", sms.MaskPhone(from))
		err := e.cfg.Store.Record(ctx, r.ID, e.replyEvent(rep, "wrong-sender"))
		if errors.Is(err, ErrReplySeen) {
			return nil
		}
		return err
	}
	if errors.Is(err, ErrNotFound) {
		r, err = e.forPhone(ctx, from, rep.Text)
	}
	if errors.Is(err, ErrNotFound) {
		e.log.InfoContext(ctx, "twoway: reply to no request", "from", sms.MaskPhone(from), "reply", rep.ID)
		return nil
	}
	if err != nil {
		return err
	}
	for range 8 {
		err = e.judge(ctx, r, rep)
		if !errors.Is(err, ErrConflict) {
			break
		}
		if r, err = e.cfg.Store.Get(ctx, r.ID); err != nil {
			return err
		}
	}
	if errors.Is(err, ErrReplySeen) {
		return nil
	}
	return err
}

// forPhone is the request a reply without a known message answers: of
// the sender's requests still waiting for a reply, the one whose code the
// reply carries — so that a payee with two requests waiting confirms the
// one whose code they typed, not the newest — else the newest waiting one,
// else the sender's newest.
func (e *Engine) forPhone(ctx context.Context, from, text string) (*Request, error) {
	rs, err := e.cfg.Store.ByPhone(ctx, PhoneMAC(e.cfg.Key, from), 20)
	if err != nil {
		return nil, err
	}
	if len(rs) == 0 {
		return nil, ErrNotFound
	}
	var newest *Request
	kind, code := ParseReply(text)
	for _, r := range rs {
		if r.State != AwaitingReply && r.State != Texting {
			continue
		}
		if kind == ReplyCode && checkCode(e.cfg.Key, r, code) {
			return r, nil
		}
		if newest == nil {
			newest = r
		}
	}
	if newest != nil {
		return newest, nil
	}
	return rs[0], nil
}

func (e *Engine) replyEvent(rep sms.Reply, result string) Event {
	return Event{Kind: EventReply, At: e.now(), ReplyID: rep.ID, Detail: map[string]string{
		"from": sms.MaskPhone(rep.From), "received": rep.ReceivedAt.UTC().Format(time.RFC3339), "result": result,
		"reply": rep.ID, "length": strconv.Itoa(len(rep.Text))}}
}

// judge applies one reply to r; ErrConflict when r changed meanwhile.
func (e *Engine) judge(ctx context.Context, r *Request, rep sms.Reply) error {
	kind, code := ParseReply(rep.Text)
	waiting := r.State == AwaitingReply || r.State == Texting
	if waiting && !e.now().Before(r.Deadline) {
		var err error
		if r, err = e.expire(ctx, r); err != nil {
			return err
		}
		waiting = false
	}
	if !waiting {
		// Late, duplicate or stray: no money moves.
		result, answer := "late", ""
		switch {
		case r.State.MovedMoney():
			result = "after-confirmation" // a second reply: nothing to do
		case r.State.Ended():
			answer = e.text(r, "이 송금 요청은 이미 종료되었습니다(%s). 돈은 이동하지 않았습니다.", endedWords(r.State))
		default:
			result = "before-code"
		}
		if err := e.cfg.Store.Record(ctx, r.ID, e.replyEvent(rep, result)); err != nil {
			return err
		}
		e.log.InfoContext(ctx, "twoway: reply outside the wait", "request", r.ID, "state", r.State, "result", result)
		e.answer(ctx, r, rep, answer)
		if !r.Notified {
			_, err := e.drive(ctx, r)
			return err
		}
		return nil
	}
	now := e.now()
	switch {
	case kind == ReplyCode && checkCode(e.cfg.Key, r, code):
		r.State, r.RepliedAt, r.ReplyID, r.Updated = Confirmed, rep.ReceivedAt, rep.ID, now
		if err := e.cfg.Store.Update(ctx, r, e.replyEvent(rep, "code-verified"),
			e.event(EventVerified, map[string]string{"result": "confirmed", "from": sms.MaskPhone(rep.From)})); err != nil {
			return err
		}
		e.log.InfoContext(ctx, "twoway: payee confirmed", "request", r.ID, "from", sms.MaskPhone(rep.From))
		_, err := e.drive(ctx, r)
		return err
	case kind == ReplyRefuse:
		r.State, r.Reason, r.RepliedAt, r.ReplyID, r.Updated = Refused, "refused by the payee", rep.ReceivedAt, rep.ID, now
		if err := e.cfg.Store.Update(ctx, r, e.replyEvent(rep, "refused"), e.event(EventEnded, map[string]string{"state": string(Refused), "reason": r.Reason})); err != nil {
			return err
		}
		e.log.InfoContext(ctx, "twoway: payee refused", "request", r.ID)
		e.answer(ctx, r, rep, e.text(r, "송금을 거절하셨습니다. 돈은 이동하지 않습니다."))
		_, err := e.drive(ctx, r)
		return err
	case kind == ReplyCode:
		r.Attempts++
		r.Updated = now
		ev := []Event{e.replyEvent(rep, "wrong-code")}
		answer := e.text(r, "인증번호가 틀렸습니다. %d번 더 입력할 수 있습니다.", r.MaxAttempts-r.Attempts)
		if r.Attempts >= r.MaxAttempts {
			r.State, r.Reason = WrongCode, "wrong codes"
			ev = append(ev, e.event(EventEnded, map[string]string{"state": string(WrongCode), "reason": r.Reason}))
			answer = e.text(r, "인증번호가 %d번 틀려 송금 요청이 종료되었습니다. 돈은 이동하지 않습니다.", r.MaxAttempts)
		}
		if err := e.cfg.Store.Update(ctx, r, ev...); err != nil {
			return err
		}
		e.log.InfoContext(ctx, "twoway: wrong code", "request", r.ID, "attempts", r.Attempts, "of", r.MaxAttempts)
		e.answer(ctx, r, rep, answer)
		_, err := e.drive(ctx, r)
		return err
	default:
		if err := e.cfg.Store.Record(ctx, r.ID, e.replyEvent(rep, "unreadable")); err != nil {
			return err
		}
		e.answer(ctx, r, rep, e.text(r, "인증번호 %d자리만 회신하시거나, 받지 않으려면 '거절'을 회신하세요.", CodeDigits))
		return nil
	}
}

// answer texts the payee back (best effort: the reply is recorded).
func (e *Engine) answer(ctx context.Context, r *Request, rep sms.Reply, text string) {
	if text == "" {
		return
	}
	ref := r.ID + ".answer." + rep.ID
	if rep.ID == "" {
		ref = r.ID + ".answer." + strconv.FormatInt(rep.ReceivedAt.UnixNano(), 36)
	}
	if _, err := e.cfg.SMS.Send(ctx, sms.Message{From: e.cfg.From, To: rep.From, Text: text, Ref: ref}); err != nil {
		e.log.WarnContext(ctx, "twoway: answer to a reply not sent", "request", r.ID, "error", errText(err))
		return
	}
	if err := e.cfg.Store.Record(ctx, r.ID, e.event(EventReplyAnswered, map[string]string{"to": sms.MaskPhone(rep.From), "text": text})); err != nil {
		e.log.WarnContext(ctx, "twoway: answer not recorded", "request", r.ID, "error", errText(err))
	}
}

// idempotency keys and references of a request's money movements: derived
// from its id, the same on every try.
func keyDebit(id string) string    { return id + ".debit" }
func keyCredit(id string) string   { return id + ".credit" }
func keyReverse(id string) string  { return id + ".reverse" }
func keyTransfer(id string) string { return id + ".transfer" }

// refusal returns the status of a business refusal in err; false for
// no error, and for an unknown outcome: an error that is no refusal, or a
// status that says the request may still run (KECIS §6.2, §10.3).
func refusal(err error) (saml.Status, bool) {
	st, ok := connectors.AsStatus(err)
	if !ok {
		return st, false
	}
	switch st.SubCode {
	case saml.CodePending, saml.CodeInFlight, saml.CodeProviderUnavailable, saml.CodeHubUnavailable:
		return st, false
	}
	return st, true
}

// debit executes a confirmed request (step 9): within the bank, one
// internal transfer; to another bank, the debit into the clearing account
// first. A refusal (insufficient funds, a limit) ends it with no money
// moved; an unknown outcome is asked again with the same key.
func (e *Engine) debit(ctx context.Context, r *Request) (*Request, error) {
	if r.SameBank() {
		ref, err := e.cfg.Bank.Transfer(ctx, &Internal{From: r.RemitterAccount, To: r.PayeeAccount, Amount: r.Amount,
			Reference: r.ID, Memo: "2-WAY " + r.RemitterName, IdempotencyKey: keyTransfer(r.ID)})
		if st, ok := refusal(err); ok {
			return e.fail(ctx, r, st)
		}
		if err != nil {
			e.log.WarnContext(ctx, "twoway: internal transfer outcome unknown; retried", "request", r.ID, "error", errText(err))
			return r, nil
		}
		r.State, r.DebitRef, r.CreditRef, r.Updated = Completed, ref, ref, e.now()
		e.log.InfoContext(ctx, "twoway: transferred within the bank", "request", r.ID, "reference", ref)
		return e.save(ctx, r, e.event(EventCredit, map[string]string{"result": string(Credited), "reference": ref, "internal": "true"}))
	}
	ref, err := e.cfg.Bank.SendOut(ctx, &Debit{Account: r.RemitterAccount, Amount: r.Amount, PayeeBank: r.PayeeBank,
		PayeeAccount: r.PayeeAccount, PayeeHolder: r.HolderName, Reference: r.ID, Memo: "2-WAY", IdempotencyKey: keyDebit(r.ID)})
	if st, ok := refusal(err); ok {
		return e.fail(ctx, r, st)
	}
	if err != nil {
		e.log.WarnContext(ctx, "twoway: debit outcome unknown; retried", "request", r.ID, "error", errText(err))
		return r, nil
	}
	r.State, r.DebitRef, r.Updated = Debited, ref, e.now()
	e.log.InfoContext(ctx, "twoway: remitter debited", "request", r.ID, "reference", ref)
	if r, err = e.save(ctx, r, e.event(EventDebited, map[string]string{"reference": ref})); err != nil || r.State != Debited {
		return r, err
	}
	return e.credit(ctx, r, false)
}

// fail ends a request the remitter's bank refused to debit.
func (e *Engine) fail(ctx context.Context, r *Request, st saml.Status) (*Request, error) {
	r.State, r.Reason, r.Updated = Failed, st.Message, e.now()
	if r.Reason == "" {
		r.Reason = st.SubCode
	}
	e.log.InfoContext(ctx, "twoway: debit refused", "request", r.ID, "code", st.SubCode)
	return e.save(ctx, r, e.event(EventEnded, map[string]string{"state": string(Failed), "reason": r.Reason, "code": st.SubCode}))
}

// credit asks the payee's bank to credit the payee, with the key derived
// from the request; after an unknown outcome (inquire set) it first asks
// whether the credit was made. Credited completes; refused reverses the
// debit; unknown is asked again later.
func (e *Engine) credit(ctx context.Context, r *Request, inquire bool) (*Request, error) {
	var out *CreditOutcome
	var err error
	if inquire {
		out, err = e.cfg.Credits.Inquire(ctx, r.PayeeBank, r.ID)
		if err != nil || out == nil || out.Status == CreditUnknown {
			e.log.WarnContext(ctx, "twoway: credit inquiry failed; retried", "request", r.ID, "error", errText(err))
			return r, nil
		}
	}
	if !inquire || out.Status == CreditNotFound {
		// Never made, or still in flight: the same key cannot credit twice.
		out, err = e.cfg.Credits.Credit(ctx, &Credit{Reference: r.ID, Amount: r.Amount, PayeeBank: r.PayeeBank,
			PayeeAccount: r.PayeeAccount, RemitterBank: r.RemitterBank, RemitterName: r.RemitterName,
			RemitterAccount: r.RemitterAccount, Transfer: r.Transfer(), IdempotencyKey: keyCredit(r.ID)})
	}
	switch {
	case err != nil || out == nil || out.Status == CreditUnknown || out.Status == CreditNotFound:
		e.log.WarnContext(ctx, "twoway: credit outcome unknown; inquired later", "request", r.ID, "error", errText(err))
		return r, nil
	case out.Status == Credited:
		r.State, r.CreditRef, r.Updated = Completed, out.Reference, e.now()
		e.log.InfoContext(ctx, "twoway: payee credited", "request", r.ID, "reference", out.Reference)
		if c, ok := e.cfg.Bank.(OutConfirmer); ok && r.DebitRef != "" {
			if err := c.ConfirmOut(ctx, r.DebitRef, out.Reference); err != nil {
				e.log.WarnContext(ctx, "twoway: the bank's record of the credit not updated", "request", r.ID, "error", errText(err))
			}
		}
		return e.save(ctx, r, e.event(EventCredit, map[string]string{"result": string(Credited), "reference": out.Reference}))
	default:
		r.State, r.Reason, r.Updated = Reversing, "refused by the payee's bank: "+out.Message, e.now()
		e.log.InfoContext(ctx, "twoway: credit refused; reversing", "request", r.ID, "code", out.Code)
		if r, err = e.save(ctx, r, e.event(EventCredit, map[string]string{"result": string(CreditRefused), "code": out.Code, "message": out.Message})); err != nil || r.State != Reversing {
			return r, err
		}
		return e.reverse(ctx, r)
	}
}

// reverse credits the remitter back after the payee's bank refused.
func (e *Engine) reverse(ctx context.Context, r *Request) (*Request, error) {
	err := e.cfg.Bank.ReverseOut(ctx, &Reversal{Account: r.RemitterAccount, Amount: r.Amount, Reference: r.ID,
		DebitRef: r.DebitRef, Reason: r.Reason, IdempotencyKey: keyReverse(r.ID)})
	if err != nil {
		// A reversal of a debit that exists is never refused for good:
		// every error is asked again.
		e.log.WarnContext(ctx, "twoway: reversal not confirmed; retried", "request", r.ID, "error", errText(err))
		return r, nil
	}
	r.State, r.ReversalDone, r.Updated = Reversed, true, e.now()
	e.log.InfoContext(ctx, "twoway: debit reversed", "request", r.ID)
	return e.save(ctx, r, e.event(EventReversed, nil))
}

// notify texts the remitter the result (steps 10 to 12), once: the text's
// reference is the request's.
func (e *Engine) notify(ctx context.Context, r *Request) (*Request, error) {
	if r.RemitterPhone == "" {
		r.Notified, r.Updated = true, e.now()
		return e.save(ctx, r)
	}
	text := e.resultText(r)
	id, err := e.cfg.SMS.Send(ctx, sms.Message{From: e.cfg.From, To: r.RemitterPhone, Text: text, Ref: r.ID + ".result"})
	if err != nil {
		e.log.WarnContext(ctx, "twoway: the remitter's text was not sent; retried", "request", r.ID, "error", errText(err))
		return r, nil
	}
	r.Notified, r.Updated = true, e.now()
	return e.save(ctx, r, e.event(EventResultTexted, map[string]string{"to": sms.MaskPhone(r.RemitterPhone), "message": id, "text": text}))
}

// Recover carries every request that owes work as far as it can go
// (KECIS §15.5): name checks and texts not done, confirmed transfers not
// executed (an unknown credit is inquired before it is asked again),
// refused credits not reversed, waits past their deadline, remitters not
// texted. It runs at start-up and on a schedule (Run), on any number of
// engines over one database; it reports how many requests still owe work
// that is not a wait.
func (e *Engine) Recover(ctx context.Context) (pending int, err error) {
	open, err := e.cfg.Store.Open(ctx, 1000)
	if err != nil {
		return 0, err
	}
	ctx = context.WithValue(ctx, recovering{}, true)
	for _, r := range open {
		id := r.ID
		r, err := e.drive(ctx, r)
		if err != nil {
			e.log.ErrorContext(ctx, "twoway: recovery of a request failed", "request", id, "error", errText(err))
			pending++
			continue
		}
		if r.State != AwaitingConfirmation && r.State != AwaitingReply && !r.Notified {
			pending++
		}
	}
	return pending, nil
}

// Run calls Recover now and at every tick until ctx ends.
func (e *Engine) Run(ctx context.Context, tick <-chan time.Time) {
	for {
		if n, err := e.Recover(ctx); err != nil {
			e.log.ErrorContext(ctx, "twoway: recovery failed", "error", errText(err))
		} else if n > 0 {
			e.log.WarnContext(ctx, "twoway: requests still owe work", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick:
		}
	}
}

// errText is an error for a log line: the engine's errors name no account
// or code; a card number a dependency might echo is redacted.
func errText(err error) string {
	if err == nil {
		return ""
	}
	return ecml.RedactPANs(err.Error())
}

package escrow

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/sqlstore"
	"github.com/kecis/kecis/connectors/store"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

// Defaults of Config.
const (
	DefaultAutoConfirmAfter = 7 * 24 * time.Hour
	DefaultPayBy            = 3 * 24 * time.Hour
	// DefaultStatusEvents is how many of the last changes Status returns.
	DefaultStatusEvents = 10
	// sweepBatch bounds the escrows one Sweep reads.
	sweepBatch = 500
	// maxRetryDelay bounds the backoff of an owed ledger call.
	maxRetryDelay = time.Hour
)

// Config configures an Engine.
type Config struct {
	// DB is the adapter's own database (SQLite or PostgreSQL); New
	// migrates the escrow tables in it.
	DB *sqlstore.DB
	// Holder is the bank's ledger.
	Holder Holder
	// Sealer seals the settlement and buyer account numbers at rest.
	Sealer *store.Sealer
	// Signer signs the records of the event table; Issuer is the bank's
	// entityID (their saml:Issuer).
	Signer *saml.Signer
	Issuer string
	Now    func() time.Time
	Rand   io.Reader
	Log    *slog.Logger
	// AutoConfirmAfter is the time after shipping when a shipped escrow
	// without dispute is confirmed (DefaultAutoConfirmAfter).
	AutoConfirmAfter time.Duration
	// PayBy is the time after opening when an unpaid order expires
	// (DefaultPayBy).
	PayBy time.Duration
}

// Engine runs escrows and collects (KECIS §15.6, §15.8). It is safe for
// concurrent use, also by several processes on one database: every state
// change is a compare-and-set.
type Engine struct {
	cfg Config
	st  *sqlStore
}

// New migrates the escrow tables in cfg.DB and returns the engine.
func New(ctx context.Context, cfg Config) (*Engine, error) {
	switch {
	case cfg.DB == nil || cfg.Holder == nil || cfg.Sealer == nil:
		return nil, errors.New("escrow: DB, Holder and Sealer are required")
	case cfg.Signer == nil || cfg.Issuer == "":
		return nil, errors.New("escrow: Signer and Issuer are required (the records are signed)")
	case cfg.AutoConfirmAfter < 0 || cfg.PayBy < 0:
		return nil, errors.New("escrow: negative AutoConfirmAfter or PayBy")
	}
	if cfg.AutoConfirmAfter == 0 {
		cfg.AutoConfirmAfter = DefaultAutoConfirmAfter
	}
	if cfg.PayBy == 0 {
		cfg.PayBy = DefaultPayBy
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
	st, err := newSQLStore(ctx, cfg.DB, cfg.Sealer)
	if err != nil {
		return nil, err
	}
	return &Engine{cfg: cfg, st: st}, nil
}

// AutoConfirmAfter is the engine's automatic confirmation delay.
func (e *Engine) AutoConfirmAfter() time.Duration { return e.cfg.AutoConfirmAfter }

func (e *Engine) now() time.Time { return e.cfg.Now().UTC().Truncate(time.Millisecond) }

// refEncoding is upper-case base32 without padding (A–Z, 2–7).
var refEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// ReferenceLen is the length of a reference: Transaction/Code/@Approval
// takes at most 12 characters (RFC 4112).
const ReferenceLen = 12

// newReference draws a reference: "E" and 55 random bits in 11 base32
// characters.
func (e *Engine) newReference() (string, error) {
	b := make([]byte, 7)
	if _, err := io.ReadFull(e.cfg.Rand, b); err != nil {
		return "", fmt.Errorf("escrow: random: %w", err)
	}
	return "E" + refEncoding.EncodeToString(b)[:ReferenceLen-1], nil
}

// ValidReference reports whether s has the shape of a reference.
func ValidReference(s string) bool {
	if len(s) != ReferenceLen || s[0] != 'E' {
		return false
	}
	for _, c := range s[1:] {
		if (c < 'A' || c > 'Z') && (c < '2' || c > '7') {
			return false
		}
	}
	return true
}

// Idempotency keys of the ledger calls, derived from the reference.
func fundKey(ref string, n int) string { return "escrow:" + ref + ":fund:" + strconv.Itoa(n) }
func releaseKey(ref string) string     { return "escrow:" + ref + ":release" }
func refundKey(ref string) string      { return "escrow:" + ref + ":refund" }

// Actors of the events.
func merchantActor(m string) string { return "merchant:" + m }
func buyerActor(c string) string    { return "buyer:" + c }
func operatorActor(o string) string { return "operator:" + o }

const sweepActor = "sweep"

// Open creates an escrow (escrow:open) in awaiting-payment, owned by
// req.Merchant. The same order again with the same content answers the
// escrow it created; with other content, Requester/Duplicate.
func (e *Engine) Open(ctx context.Context, req *OpenRequest) (*Escrow, error) {
	return e.open(ctx, req, true)
}

// Collect creates a collect (transfer:collect): as Open, but the buyer's
// payment goes straight on to the settlement account (→ paid).
func (e *Engine) Collect(ctx context.Context, req *OpenRequest) (*Escrow, error) {
	return e.open(ctx, req, false)
}

func (e *Engine) open(ctx context.Context, req *OpenRequest, hold bool) (*Escrow, error) {
	if err := checkOpen(req); err != nil {
		return nil, err
	}
	for range 3 {
		if x, err := e.st.byOrder(ctx, req.Merchant, req.Order); err == nil {
			if !sameOpen(x, req, hold) {
				return nil, connectors.Refuse(saml.StatusRequester, saml.CodeDuplicate, "the order exists with other content")
			}
			return x, nil
		} else if !errors.Is(err, errNoRow) {
			return nil, err
		}
		ref, err := e.newReference()
		if err != nil {
			return nil, err
		}
		now := e.now()
		x := &Escrow{Reference: ref, Merchant: req.Merchant, Order: req.Order, Hold: hold, Amount: req.Amount, Goods: req.Goods,
			State: AwaitingPayment, SettlementBank: req.SettlementBank, SettlementAccount: req.SettlementAccount,
			PayeeName: req.PayeeName, PayBy: now.Add(e.cfg.PayBy), OpenKey: req.IdempotencyKey, Created: now, Updated: now}
		ev, err := e.event(x, "", EventOpened, merchantActor(req.Merchant), now, map[string]string{"idempotency_key": req.IdempotencyKey})
		if err != nil {
			return nil, err
		}
		err = e.st.create(ctx, x, ev)
		if errors.Is(err, errExists) {
			continue // a concurrent open of the same order: read it
		}
		if err != nil {
			return nil, err
		}
		e.cfg.Log.Info("escrow opened", "reference", ref, "merchant", req.Merchant, "order", req.Order, "hold", hold,
			"amount", req.Amount.Minor, "currency", req.Amount.Currency, "settlement", ecml.MaskAccount(req.SettlementAccount.Reveal()))
		return x, nil
	}
	return nil, fmt.Errorf("escrow: the order %q is being created concurrently", req.Order)
}

func checkOpen(req *OpenRequest) error {
	switch {
	case req.Merchant == "":
		return invalid("the caller is unknown")
	case req.Order == "" || len(req.Order) > 128:
		return invalid("Ecom/@ConsumerOrderID, the order, is required (at most 128 characters)")
	case req.Amount.Minor <= 0 || req.Amount.Currency == "":
		return invalid("a positive Transaction/@Amount with @Currency is required")
	case len(req.SettlementBank) != 3 || !ecml.AllDigits(req.SettlementBank):
		return invalid(`kx:BankAccount Role="settlement" with a three-digit @BankCode is required`)
	case !validAccount(req.SettlementAccount):
		return invalid(`the settlement account's kx:AccountNumber (encrypted for the bank) is required`)
	}
	return nil
}

func sameOpen(x *Escrow, req *OpenRequest, hold bool) bool {
	return x.Hold == hold && x.Amount == req.Amount && x.Goods == req.Goods && x.SettlementBank == req.SettlementBank &&
		digits(x.SettlementAccount) == digits(req.SettlementAccount)
}

func digits(a ecml.Secret) string {
	d, _ := ecml.AccountDigits(a.Reveal())
	return d
}

func validAccount(a ecml.Secret) bool {
	_, ok := ecml.AccountDigits(a.Reveal())
	return ok
}

// find reads a merchant's escrow by its reference or its order; another
// merchant's is not found.
func (e *Engine) find(ctx context.Context, merchant string, r Ref) (*Escrow, error) {
	var x *Escrow
	var err error
	switch {
	case r.Reference != "":
		x, err = e.st.get(ctx, r.Reference)
		if err == nil && r.Order != "" && x.Order != r.Order {
			return nil, errNotFound()
		}
	case r.Order != "":
		x, err = e.st.byOrder(ctx, merchant, r.Order)
	default:
		return nil, invalid("name the escrow: Transaction/Code/@Approval (the reference) or Ecom/@ConsumerOrderID")
	}
	if errors.Is(err, errNoRow) || (err == nil && x.Merchant != merchant) {
		return nil, errNotFound()
	}
	return x, err
}

// Ship records the shipment of the merchant's escrow (escrow:ship): funded
// → shipped, the confirm-by deadline set. The same shipment again answers
// the escrow unchanged.
func (e *Engine) Ship(ctx context.Context, merchant string, r Ref, carrier, tracking, key string) (*Escrow, error) {
	carrier, tracking = strings.TrimSpace(carrier), strings.TrimSpace(tracking)
	if carrier == "" || tracking == "" || utf8.RuneCountInString(carrier) > 64 || len(tracking) > 64 {
		return nil, invalid("kx:Escrow @Carrier and @Tracking are required (at most 64 characters each)")
	}
	return e.change(ctx, func() (*Escrow, error) { return e.find(ctx, merchant, r) }, func(x *Escrow, now time.Time) (*transition, error) {
		if !x.Hold {
			return nil, wrongState("a collect is not an escrow: it has no shipment")
		}
		switch x.State {
		case Funded:
			x.Carrier, x.Tracking, x.ShippedAt, x.ConfirmBy = carrier, tracking, now, now.Add(e.cfg.AutoConfirmAfter)
			return &transition{to: Shipped, kind: EventShipped, actor: merchantActor(merchant),
				detail: map[string]string{"carrier": carrier, "tracking": tracking, "idempotency_key": key}}, nil
		case Shipped:
			if x.Carrier == carrier && x.Tracking == tracking {
				return nil, nil
			}
			return nil, wrongState("the escrow is shipped already, with another tracking number")
		case AwaitingPayment:
			return nil, wrongState("the buyer has not paid yet: nothing to ship against")
		}
		return nil, wrongState("the escrow is " + string(x.State) + ": it can no longer be shipped")
	})
}

// Refund refunds the merchant's escrow (escrow:refund): funded, shipped or
// disputed → refunded, the money back to the buyer; an order not yet paid
// is cancelled. Repeated, it answers the escrow unchanged.
func (e *Engine) Refund(ctx context.Context, merchant string, r Ref, key string) (*Escrow, error) {
	x, err := e.change(ctx, func() (*Escrow, error) { return e.find(ctx, merchant, r) }, func(x *Escrow, now time.Time) (*transition, error) {
		detail := map[string]string{"idempotency_key": key}
		switch {
		case x.State == AwaitingPayment && x.Owed == OwesFund:
			return nil, wrongState("the buyer's payment is under way: try again shortly")
		case x.State == AwaitingPayment:
			return &transition{to: Cancelled, kind: EventCancelled, actor: merchantActor(merchant), detail: detail}, nil
		case x.State.Holding():
			x.Owed, x.Attempts, x.Retry = OwesRefund, 0, now
			return &transition{to: Refunded, kind: EventRefunded, actor: merchantActor(merchant), detail: detail}, nil
		case x.State == Refunded || x.State == Cancelled:
			return nil, nil
		case x.State == Paid:
			return nil, wrongState("a collect is paid to the merchant already: refund the buyer by a transfer")
		}
		return nil, wrongState("the escrow is " + string(x.State) + ": it can no longer be refunded")
	})
	if err != nil {
		return nil, err
	}
	return e.settled(ctx, x)
}

// Status reads the merchant's escrow and its last changes (escrow:status),
// oldest first.
func (e *Engine) Status(ctx context.Context, merchant string, r Ref) (*Escrow, []Event, error) {
	x, err := e.find(ctx, merchant, r)
	if err != nil {
		return nil, nil, err
	}
	ev, err := e.st.lastEvents(ctx, x.Reference, DefaultStatusEvents)
	if err != nil {
		return nil, nil, err
	}
	return x, ev, nil
}

// View is what the buyer page may show a logged-in customer: an order not
// yet paid by anyone (its reference came with the merchant's form), or
// one the customer paid. Anything else is not found.
func (e *Engine) View(ctx context.Context, customer, ref string) (*Escrow, error) {
	if customer == "" || !ValidReference(ref) {
		return nil, errNotFound()
	}
	x, err := e.st.get(ctx, ref)
	if errors.Is(err, errNoRow) {
		return nil, errNotFound()
	}
	if err != nil {
		return nil, err
	}
	if x.Buyer != "" && x.Buyer != customer {
		return nil, errNotFound()
	}
	return x, nil
}

// Mine lists up to limit escrows and collects the customer paid, newest
// first (the buyer page's "my escrow payments").
func (e *Engine) Mine(ctx context.Context, customer string, limit int) ([]*Escrow, error) {
	if customer == "" {
		return nil, nil
	}
	if limit <= 0 || limit > 200 {
		limit = 200
	}
	return e.st.byBuyer(ctx, customer, limit)
}

// own reads the customer's escrow (one it paid); another's is not found.
func (e *Engine) own(ctx context.Context, customer, ref string) (*Escrow, error) {
	x, err := e.View(ctx, customer, ref)
	if err == nil && x.Buyer != customer {
		return nil, errNotFound()
	}
	return x, err
}

// Pay is the buyer's payment on the bank's page: the customer's account
// (one of its own; the Holder checks) is debited into the holding account
// → funded (a collect: on to the settlement account → paid). A refusal of
// the ledger (insufficient funds, not the customer's account) leaves the
// order unpaid; an unknown outcome is carried on by Sweep with the same
// key. Paying again answers the escrow unchanged.
func (e *Engine) Pay(ctx context.Context, customer, ref string, account ecml.Secret) (*Escrow, error) {
	if !validAccount(account) {
		return nil, invalid("choose one of your accounts")
	}
	x, err := e.change(ctx, func() (*Escrow, error) { return e.View(ctx, customer, ref) }, func(x *Escrow, now time.Time) (*transition, error) {
		switch {
		case x.State == AwaitingPayment && x.Owed == OwesFund:
			return nil, nil // the customer's payment under way: carry it on
		case x.State == AwaitingPayment && !now.Before(x.PayBy):
			return nil, wrongState("the order has expired: ask the shop for a new one")
		case x.State == AwaitingPayment:
			x.Buyer, x.BuyerAccount, x.Owed, x.Attempts, x.Retry = customer, account, OwesFund, 0, now
			x.Payments++
			return &transition{write: true}, nil // the intent, no state change yet
		case x.Buyer == customer:
			return nil, nil // paid already
		}
		return nil, wrongState("the order is " + string(x.State) + ": it can no longer be paid")
	})
	if err != nil {
		return nil, err
	}
	y, err := e.settle(ctx, x)
	if err != nil && y != nil && y.State != AwaitingPayment {
		return y, nil // paid; what follows (a collect's release) is the sweep's
	}
	return y, err
}

// Confirm is the buyer's confirmation of receipt: funded, shipped or
// disputed (withdrawing the dispute) → confirmed, and the money released
// to the settlement account. Confirming again answers the escrow
// unchanged.
func (e *Engine) Confirm(ctx context.Context, customer, ref string) (*Escrow, error) {
	x, err := e.change(ctx, func() (*Escrow, error) { return e.own(ctx, customer, ref) }, func(x *Escrow, now time.Time) (*transition, error) {
		if !x.Hold {
			return nil, wrongState("a collect has nothing to confirm")
		}
		switch {
		case x.State.Holding():
			detail := map[string]string{}
			if x.State == Disputed {
				detail["dispute"] = "withdrawn"
			}
			x.Owed, x.Attempts, x.Retry = OwesRelease, 0, now
			return &transition{to: Confirmed, kind: EventConfirmed, actor: buyerActor(customer), detail: detail}, nil
		case x.State == Confirmed:
			return nil, nil
		case x.State == AwaitingPayment:
			return nil, wrongState("the order is not paid")
		}
		return nil, wrongState("the escrow is " + string(x.State) + ": it can no longer be confirmed")
	})
	if err != nil {
		return nil, err
	}
	return e.settled(ctx, x)
}

// Dispute is the buyer's dispute, with a reason (at most
// ecml.EscrowReasonMax characters): funded, or shipped before the
// confirm-by deadline → disputed. The same dispute again answers the
// escrow unchanged.
func (e *Engine) Dispute(ctx context.Context, customer, ref, reason string) (*Escrow, error) {
	reason = strings.Join(strings.Fields(reason), " ")
	if reason == "" || utf8.RuneCountInString(reason) > ecml.EscrowReasonMax {
		return nil, invalid(fmt.Sprintf("give the dispute's reason (at most %d characters)", ecml.EscrowReasonMax))
	}
	return e.change(ctx, func() (*Escrow, error) { return e.own(ctx, customer, ref) }, func(x *Escrow, now time.Time) (*transition, error) {
		if !x.Hold {
			return nil, wrongState("a collect cannot be disputed at the bank")
		}
		switch x.State {
		case Shipped:
			if !now.Before(x.ConfirmBy) {
				return nil, wrongState("the confirmation deadline has passed: the escrow is confirmed")
			}
			fallthrough
		case Funded:
			x.Reason = reason
			return &transition{to: Disputed, kind: EventDisputed, actor: buyerActor(customer), detail: map[string]string{"reason": reason}}, nil
		case Disputed:
			if x.Reason == reason {
				return nil, nil
			}
			return nil, wrongState("the escrow is disputed already")
		}
		return nil, wrongState("the escrow is " + string(x.State) + ": it can no longer be disputed")
	})
}

// Resolve is the bank operator's resolution of a dispute: release (→
// confirmed, the money to the merchant) or refund (→ refunded, back to
// the buyer). The same decision again answers the escrow unchanged.
func (e *Engine) Resolve(ctx context.Context, operator, ref string, d Decision) (*Escrow, error) {
	if operator == "" || (d != DecideRelease && d != DecideRefund) {
		return nil, invalid("an operator and a decision (release or refund) are required")
	}
	x, err := e.change(ctx, func() (*Escrow, error) {
		x, err := e.st.get(ctx, ref)
		if errors.Is(err, errNoRow) {
			return nil, errNotFound()
		}
		return x, err
	}, func(x *Escrow, now time.Time) (*transition, error) {
		switch {
		case x.State == Disputed && d == DecideRelease:
			x.Owed, x.Attempts, x.Retry, x.Resolver = OwesRelease, 0, now, operator
			return &transition{to: Confirmed, kind: EventConfirmed, actor: operatorActor(operator), detail: map[string]string{"decision": string(d)}}, nil
		case x.State == Disputed:
			x.Owed, x.Attempts, x.Retry, x.Resolver = OwesRefund, 0, now, operator
			return &transition{to: Refunded, kind: EventRefunded, actor: operatorActor(operator), detail: map[string]string{"decision": string(d)}}, nil
		case x.Resolver == operator && (x.State == Confirmed) == (d == DecideRelease) && (x.State == Confirmed || x.State == Refunded):
			return nil, nil
		}
		return nil, wrongState("the escrow is " + string(x.State) + ", not disputed: nothing to resolve")
	})
	if err != nil {
		return nil, err
	}
	return e.settled(ctx, x)
}

// settled settles x after a state change that stands whatever the
// ledger answers (a confirmation, a refund): a failed call is logged and
// left to Sweep, and the answer is the escrow.
func (e *Engine) settled(ctx context.Context, x *Escrow) (*Escrow, error) {
	y, err := e.settle(ctx, x)
	if err != nil && y != nil {
		return y, nil
	}
	return y, err
}

// Events returns the escrow's event table rows, oldest first.
func (e *Engine) Events(ctx context.Context, ref string) ([]Event, error) {
	return e.st.events(ctx, ref)
}

// Get reads an escrow by its reference (the bank's staff; no owner
// check).
func (e *Engine) Get(ctx context.Context, ref string) (*Escrow, error) {
	x, err := e.st.get(ctx, ref)
	if errors.Is(err, errNoRow) {
		return nil, errNotFound()
	}
	return x, err
}

// Sweep does what time owes (run it on a schedule; it is safe to run
// concurrently): confirms shipped escrows past their deadline without a
// dispute (Auto) and releases them, expires orders unpaid after PayBy,
// and carries on owed ledger calls — pending releases and calls a crash
// or a failure interrupted — with their keys.
func (e *Engine) Sweep(ctx context.Context) (SweepReport, error) {
	var rep SweepReport
	now := e.now()
	due, err := e.st.due(ctx, now, sweepBatch)
	if err != nil {
		return rep, err
	}
	var errs []error
	for _, x := range due {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		if err := e.sweepOne(ctx, x, now, &rep); err != nil {
			rep.Failed++
			errs = append(errs, fmt.Errorf("escrow %s: %w", x.Reference, err))
		}
	}
	return rep, errors.Join(errs...)
}

func (e *Engine) sweepOne(ctx context.Context, x *Escrow, now time.Time, rep *SweepReport) error {
	switch {
	case x.Owed == OwesNothing && x.State == Shipped && !now.Before(x.ConfirmBy):
		y, err := e.change(ctx, func() (*Escrow, error) { return e.st.get(ctx, x.Reference) }, func(x *Escrow, now time.Time) (*transition, error) {
			if x.State != Shipped || now.Before(x.ConfirmBy) {
				return nil, nil // disputed or confirmed meanwhile
			}
			x.Auto, x.Owed, x.Attempts, x.Retry = true, OwesRelease, 0, now
			return &transition{to: Confirmed, kind: EventConfirmed, actor: sweepActor, detail: map[string]string{"auto": "true"}}, nil
		})
		if err != nil {
			return err
		}
		if y.Auto && y.State == Confirmed {
			rep.AutoConfirmed++
		}
		x = y
	case x.Owed == OwesNothing && x.State == AwaitingPayment && !now.Before(x.PayBy):
		y, err := e.change(ctx, func() (*Escrow, error) { return e.st.get(ctx, x.Reference) }, func(x *Escrow, now time.Time) (*transition, error) {
			if x.State != AwaitingPayment || x.Owed != OwesNothing || now.Before(x.PayBy) {
				return nil, nil
			}
			return &transition{to: Expired, kind: EventExpired, actor: sweepActor}, nil
		})
		if err == nil && y.State == Expired {
			rep.Expired++
		}
		return err
	case x.Owed == OwesNothing || now.Before(x.Retry):
		return nil
	}
	owed := x.Owed
	if owed == OwesNothing {
		return nil // disputed or confirmed by someone else meanwhile
	}
	y, err := e.settle(ctx, x)
	if _, refused := connectors.AsStatus(err); refused && owed == OwesFund {
		rep.Finished++ // the ledger refused the payment for good: the order is payable again
		return nil
	}
	if err != nil {
		return err
	}
	switch {
	case y.Owed == OwesNothing && owed == OwesRelease:
		rep.Released++
	case y.Owed == OwesNothing:
		rep.Finished++
	case y.Owed == OwesRelease:
		rep.Pending++
	}
	return nil
}

// retryDelay is the backoff after n failed attempts: 1, 2, 4 … minutes,
// at most maxRetryDelay.
func retryDelay(n int) time.Duration {
	d := time.Minute
	for i := 1; i < n && d < maxRetryDelay; i++ {
		d *= 2
	}
	return min(d, maxRetryDelay)
}

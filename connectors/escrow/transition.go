package escrow

import (
	"context"
	"errors"
	"time"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/ecml"
)

// transition is what an operation does to an escrow it read: a state
// change with its event (to, kind), an event without a state change
// (kind, to ""), or a write of the row alone (write: an intent).
type transition struct {
	write  bool
	to     State
	kind   string
	actor  string
	detail map[string]string
}

// maxConflicts bounds the compare-and-set retries of one change (each lost
// race means another writer moved the escrow on).
const maxConflicts = 64

// change reads an escrow, lets fn decide (fn may set fields of x; a nil
// transition writes nothing and answers x as read), and writes it with
// its event if the row is still at the version read; on a lost race it
// reads again and lets fn decide again.
func (e *Engine) change(ctx context.Context, read func() (*Escrow, error), fn func(x *Escrow, now time.Time) (*transition, error)) (*Escrow, error) {
	for range maxConflicts {
		x, err := read()
		if err != nil {
			return nil, err
		}
		now := e.now()
		t, err := fn(x, now)
		if err != nil || t == nil {
			return x, err
		}
		from := x.State
		if t.to != "" {
			x.State = t.to
		}
		x.Updated = now
		var ev *Event
		if t.kind != "" {
			if ev, err = e.event(x, from, t.kind, t.actor, now, t.detail); err != nil {
				return nil, err
			}
		}
		err = e.st.update(ctx, x, ev)
		if errors.Is(err, ErrConflict) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if ev != nil {
			e.cfg.Log.Info("escrow "+ev.Kind, "reference", x.Reference, "merchant", x.Merchant, "order", x.Order,
				"from", string(from), "state", string(x.State), "actor", ev.Actor, "owed", string(x.Owed))
		}
		return x, nil
	}
	return nil, ErrConflict
}

// reread is a read function of change for an escrow by its reference.
func (e *Engine) reread(ctx context.Context, ref string) func() (*Escrow, error) {
	return func() (*Escrow, error) { return e.Get(ctx, ref) }
}

// settle makes the ledger call x owes, and the next (a collect's funding
// is followed by its release), until none is owed or one cannot finish
// now. It answers the escrow as it stands. Its error is a refusal of the
// funding (the order is unpaid again) or an unknown outcome, which Sweep
// carries on after a backoff with the same key; a release that is
// pending is no error.
func (e *Engine) settle(ctx context.Context, x *Escrow) (*Escrow, error) {
	for x.Owed != OwesNothing {
		var next *transition
		owed := x.Owed
		switch owed {
		case OwesFund:
			ref, err := e.cfg.Holder.Fund(ctx, &Funding{Customer: x.Buyer, Account: x.BuyerAccount, Amount: x.Amount,
				Reference: x.Reference, IdempotencyKey: fundKey(x.Reference, x.Payments)})
			if _, refused := connectors.AsStatus(err); refused {
				return e.unpaid(ctx, x, err)
			}
			if err != nil {
				return e.failed(ctx, x, err)
			}
			next = &transition{to: Funded, kind: EventFunded, actor: buyerActor(x.Buyer), detail: map[string]string{"fund_ref": ref}}
			if !x.Hold {
				next = &transition{to: Paid, kind: EventPaid, actor: buyerActor(x.Buyer), detail: map[string]string{"fund_ref": ref}}
			}
			x, err = e.change(ctx, e.reread(ctx, x.Reference), func(y *Escrow, now time.Time) (*transition, error) {
				if y.Owed != OwesFund {
					return nil, nil
				}
				y.FundRef, y.Owed, y.Attempts, y.Retry = ref, OwesNothing, 0, now
				if !y.Hold {
					y.Owed = OwesRelease
				}
				return next, nil
			})
			if err != nil {
				return x, err
			}
		case OwesRelease:
			out, err := e.cfg.Holder.Release(ctx, &Release{Amount: x.Amount, SettlementBank: x.SettlementBank,
				SettlementAccount: x.SettlementAccount, PayeeName: x.PayeeName, Reference: x.Reference, IdempotencyKey: releaseKey(x.Reference)})
			if err != nil {
				return e.failed(ctx, x, err)
			}
			if !out.Done {
				return e.later(ctx, x, nil)
			}
			x, err = e.done(ctx, x, OwesRelease, EventReleased, func(y *Escrow) { y.ReleaseRef = out.Ref }, out.Ref)
			if err != nil {
				return x, err
			}
		case OwesRefund:
			ref, err := e.cfg.Holder.Refund(ctx, &Refund{Customer: x.Buyer, Account: x.BuyerAccount, Amount: x.Amount,
				Reference: x.Reference, IdempotencyKey: refundKey(x.Reference)})
			if err != nil {
				return e.failed(ctx, x, err)
			}
			x, err = e.done(ctx, x, OwesRefund, EventReturned, func(y *Escrow) { y.RefundRef = ref }, ref)
			if err != nil {
				return x, err
			}
		default:
			return x, errors.New("escrow: unknown owed call " + string(owed))
		}
		if x.Owed == owed {
			return x, nil // another process holds it (its version moved on)
		}
	}
	return x, nil
}

// done records that the owed call completed: the owed mark cleared, the
// ledger's reference kept, an event without a state change.
func (e *Engine) done(ctx context.Context, x *Escrow, owed Owed, kind string, set func(*Escrow), ref string) (*Escrow, error) {
	return e.change(ctx, e.reread(ctx, x.Reference), func(y *Escrow, now time.Time) (*transition, error) {
		if y.Owed != owed {
			return nil, nil
		}
		set(y)
		y.Owed, y.Attempts, y.Retry = OwesNothing, 0, time.Time{}
		return &transition{kind: kind, actor: "ledger", detail: map[string]string{"ledger_ref": ref}}, nil
	})
}

// unpaid undoes a payment the ledger refused: the order is unpaid again,
// and the refusal is the answer.
func (e *Engine) unpaid(ctx context.Context, x *Escrow, refusal error) (*Escrow, error) {
	y, err := e.change(ctx, e.reread(ctx, x.Reference), func(y *Escrow, now time.Time) (*transition, error) {
		if y.Owed != OwesFund {
			return nil, nil
		}
		y.Buyer, y.BuyerAccount, y.Owed, y.Attempts, y.Retry = "", "", OwesNothing, 0, time.Time{}
		return &transition{write: true}, nil
	})
	if err != nil {
		return x, err
	}
	s, _ := connectors.AsStatus(refusal)
	e.cfg.Log.Info("escrow payment refused by the ledger", "reference", x.Reference, "status", s.SubCode, "message", s.Message,
		"account", ecml.MaskAccount(x.BuyerAccount.Reveal()))
	return y, refusal
}

// failed records a failed attempt of the owed call (its outcome unknown,
// or a refusal of a release or refund, which needs the bank's attention)
// and answers err.
func (e *Engine) failed(ctx context.Context, x *Escrow, err error) (*Escrow, error) {
	e.cfg.Log.Warn("escrow ledger call failed; retried by the sweep", "reference", x.Reference, "owed", string(x.Owed),
		"attempt", x.Attempts+1, "error", err)
	return e.later(ctx, x, err)
}

// later schedules the owed call's next attempt after a backoff.
func (e *Engine) later(ctx context.Context, x *Escrow, cause error) (*Escrow, error) {
	owed := x.Owed
	y, err := e.change(ctx, e.reread(ctx, x.Reference), func(y *Escrow, now time.Time) (*transition, error) {
		if y.Owed != owed {
			return nil, nil
		}
		y.Attempts++
		y.Retry = now.Add(retryDelay(y.Attempts))
		return &transition{write: true}, nil
	})
	if err != nil {
		return x, errors.Join(cause, err)
	}
	return y, cause
}

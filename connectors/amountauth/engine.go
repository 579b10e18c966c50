package amountauth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"strconv"
	"time"

	"github.com/beevik/etree"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/card"
	"github.com/kecis/kecis/connectors/ratelimit"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

// Config configures an Engine.
type Config struct {
	// EntityID is the PG; Signer signs its authentication results.
	EntityID string
	Signer   *saml.Signer
	Store    Store
	Issuer   Issuer
	Acquirer Acquirer
	// Route finds the issuer of a card by its BIN (connectors.Resolver's
	// RecipientFor for card:approve-verification).
	Route func(ctx context.Context, bin string) (string, error)
	// Key keys the HMACs of challenges, cards and users (at least 32
	// bytes, a PG secret).
	Key []byte
	// Options are the defaults; Merchants overrides them per merchant
	// entityID (whole Options, zero fields defaulted).
	Options   Options
	Merchants map[string]Options
	// MerchantNames are the names the cardholder's text shows for a
	// merchant that sends no Ecom/@Merchant.
	MerchantNames map[string]string
	// ResultValidity is how long an authentication result is valid
	// (default 10 minutes).
	ResultValidity time.Duration
	// Grace is how long a step in flight is left to its own process before
	// Recover takes it over (default DefaultGrace).
	Grace time.Duration
	// Limits bound the sessions and attempts per card, user, client and
	// merchant (KECIS §15.3.4); zero fields take DefaultLimits.
	Limits Limits
	Now    func() time.Time
	Rand   io.Reader
	Log    *slog.Logger
}

// Limits are the rate limits of amount authentication: sessions a card, a
// user and a merchant may start, and entries a client (the cardholder's
// browser, by address) may make on the page. Each is a rate per hour and
// a burst.
// CardFailuresPerDay bounds a card's wrong entries in 24 hours, counted in
// sessions: past CardFailuresPerDay × the attempt limit wrong entries in
// sessions that did not end approved (failed, expired or still open), the
// card is refused AA until the oldest is a day old. With n possible
// challenges and k attempts a session, it bounds a guesser's chance per
// card and day at CardFailuresPerDay·k/n (KECIS §15.3.4), however the
// guesser ends its sessions.
type Limits struct {
	CardPerHour, UserPerHour, MerchantPerSecond, ClientPerHour float64
	CardBurst, UserBurst, MerchantBurst, ClientBurst           int
	CardFailuresPerDay                                         int
}

// DefaultLimits: a card 3 sessions an hour (burst 3) and 3 failed sessions
// a day, a user 20 sessions an hour (10), a merchant 50 a second (100), a
// client 60 entries an hour (20).
var DefaultLimits = Limits{CardPerHour: 3, CardBurst: 3, CardFailuresPerDay: 3, UserPerHour: 20, UserBurst: 10,
	MerchantPerSecond: 50, MerchantBurst: 100, ClientPerHour: 60, ClientBurst: 20}

// DefaultGrace outlasts any request: a call through the hub with its
// retries (three attempts of 30 s and their backoff) and a receiver's
// clock skew on either side (2 × 3 min), so that a verification request
// Recover has found no trace of can no longer arrive.
const DefaultGrace = 8 * time.Minute

// Engine runs amount authentication.
type Engine struct {
	cfg                          Config
	card, user, merchant, client *ratelimit.Limiter
	now                          func() time.Time
	rand                         io.Reader
	log                          *slog.Logger
}

// New checks cfg and returns the engine.
func New(cfg Config) (*Engine, error) {
	switch {
	case cfg.EntityID == "" || cfg.Signer == nil || cfg.Store == nil || cfg.Issuer == nil || cfg.Acquirer == nil || cfg.Route == nil:
		return nil, errors.New("amountauth: EntityID, Signer, Store, Issuer, Acquirer and Route are required")
	case len(cfg.Key) < 32:
		return nil, errors.New("amountauth: Key must be at least 32 bytes")
	}
	cfg.Options = cfg.Options.withDefaults()
	if err := cfg.Options.check(); err != nil {
		return nil, err
	}
	for m, o := range cfg.Merchants {
		if err := o.withDefaults().check(); err != nil {
			return nil, fmt.Errorf("%w (merchant %s)", err, m)
		}
	}
	if cfg.ResultValidity <= 0 {
		cfg.ResultValidity = 10 * time.Minute
	}
	if cfg.Grace <= 0 {
		cfg.Grace = DefaultGrace
	}
	l := cfg.Limits
	d := DefaultLimits
	if l.CardPerHour <= 0 {
		l.CardPerHour, l.CardBurst = d.CardPerHour, d.CardBurst
	}
	if l.UserPerHour <= 0 {
		l.UserPerHour, l.UserBurst = d.UserPerHour, d.UserBurst
	}
	if l.MerchantPerSecond <= 0 {
		l.MerchantPerSecond, l.MerchantBurst = d.MerchantPerSecond, d.MerchantBurst
	}
	if l.CardFailuresPerDay <= 0 {
		l.CardFailuresPerDay = d.CardFailuresPerDay
	}
	if l.ClientPerHour <= 0 {
		l.ClientPerHour, l.ClientBurst = d.ClientPerHour, d.ClientBurst
	}
	cfg.Limits = l
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	e := &Engine{cfg: cfg, now: cfg.Now, rand: cfg.Rand, log: cfg.Log,
		card:     ratelimit.New(ratelimit.Config{PerSecond: l.CardPerHour / 3600, Burst: max(l.CardBurst, 1)}, cfg.Now),
		user:     ratelimit.New(ratelimit.Config{PerSecond: l.UserPerHour / 3600, Burst: max(l.UserBurst, 1)}, cfg.Now),
		merchant: ratelimit.New(ratelimit.Config{PerSecond: l.MerchantPerSecond, Burst: max(l.MerchantBurst, 1)}, cfg.Now),
		client:   ratelimit.New(ratelimit.Config{PerSecond: l.ClientPerHour / 3600, Burst: max(l.ClientBurst, 1)}, cfg.Now),
	}
	return e, nil
}

// options returns the merchant's options.
func (e *Engine) options(merchant string) Options {
	if o, ok := e.cfg.Merchants[merchant]; ok {
		return o.withDefaults()
	}
	return e.cfg.Options
}

// Refusals the engine answers itself.
var (
	errNoSession   = connectors.Refuse(saml.StatusRequester, saml.CodeDeclined, "no such session")
	errOrderInUse  = connectors.Refuse(saml.StatusRequester, saml.CodeDuplicate, "the order already has an amount authentication")
	errRateLimited = connectors.Refuse(saml.StatusResponder, saml.CodeLimitExceeded, "too many amount authentications; try again later")
)

// NoSuchSession is the status of a session that is unknown or another
// merchant's (KECIS §13.3).
var NoSuchSession = errNoSession.Status

// mac is the engine's keyed hash of a labelled value.
func (e *Engine) mac(label string, parts ...string) []byte {
	h := hmac.New(sha256.New, e.cfg.Key)
	h.Write([]byte(label))
	for _, p := range parts {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(p)))
		h.Write(n[:])
		h.Write([]byte(p))
	}
	return h.Sum(nil)
}

// challengeMAC binds a challenge to its session.
func (e *Engine) challengeMAC(id string, m Method, value string) []byte {
	return e.mac("amountauth challenge", id, string(m), value)
}

// uniform draws an integer from [0, n) from the engine's random source.
func (e *Engine) uniform(n int64) (int64, error) {
	v, err := rand.Int(e.rand, big.NewInt(n))
	if err != nil {
		return 0, fmt.Errorf("amountauth: random: %w", err)
	}
	return v.Int64(), nil
}

func (e *Engine) newID() (string, error) {
	b := make([]byte, 16)
	if _, err := io.ReadFull(e.rand, b); err != nil {
		return "", fmt.Errorf("amountauth: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// Idempotency keys of the engine's own calls, derived from the session so
// that a retry after a crash repeats the same request (KECIS §7.1).
func keyVerify(id string) string   { return "aa-" + id + "-verify" }
func keyVoid(id string) string     { return "aa-" + id + "-void" }
func keyRefund(id string) string   { return "aa-" + id + "-refund" }
func keyPurchase(id string) string { return "aa-" + id + "-purchase" }

// verifyOrder is the order number of the verification approval at the
// issuer (the PG's own order there).
func verifyOrder(id string) string { return "AA-" + id }

// Start begins an amount authentication for a purchase (KECIS §15.3.1
// start). A repeat for the same order and card resumes the session; the
// same order with another card or amount is refused. When the options skip
// AA (below the minimum purchase, or a profile within its period) the
// purchase is approved at once.
func (e *Engine) Start(ctx context.Context, r *StartRequest) (*Session, error) {
	if r.Merchant == "" || r.OrderID == "" || r.Card.Number == "" || r.Amount.Minor <= 0 || r.Amount.Currency == "" {
		return nil, connectors.Refuse(saml.StatusRequester, saml.CodeInvalidPayload, "a start needs the order, the card and a positive amount")
	}
	bin := r.Card.Number.BIN()
	if bin == "" {
		return nil, card.InvalidCard("the card number does not check")
	}
	cardMAC := e.mac("amountauth card", r.Card.Number.Reveal())
	var userMAC []byte
	if r.UserID != "" {
		userMAC = e.mac("amountauth user", r.Merchant, r.UserID)
	}
	if s, err := e.cfg.Store.ByOrder(ctx, r.Merchant, r.OrderID); err == nil {
		if !hmac.Equal(s.CardMAC, cardMAC) || s.Amount != r.Amount {
			return nil, errOrderInUse
		}
		return e.drive(ctx, s)
	} else if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	if err := e.allow(r.Merchant, cardMAC, userMAC); err != nil {
		return nil, err
	}
	o := e.options(r.Merchant)
	now := e.now()

	id, err := e.newID()
	if err != nil {
		return nil, err
	}
	issuer, err := e.cfg.Route(ctx, bin)
	if err != nil {
		return nil, connectors.Refuse(saml.StatusResponder, saml.CodeDeclined, "no issuer takes this card")
	}
	s := &Session{ID: id, Merchant: r.Merchant, OrderID: r.OrderID, State: Starting, Method: o.Method, Amount: r.Amount,
		Card: r.Card, CardMAC: cardMAC, UserMAC: userMAC, CardRef: r.Card.Number.Masked(), Issuer: issuer,
		SubMerchant: e.subMerchant(r), MaxAttempts: o.Attempts, Deadline: now.Add(o.Timeout), Created: now, Updated: now}
	skip, verifiedAt, err := e.skip(ctx, o, r, userMAC, cardMAC, now)
	if err != nil {
		return nil, err
	}
	if !skip {
		if n, err := e.cfg.Store.Failures(ctx, cardMAC, now.Add(-24*time.Hour)); err != nil {
			return nil, err
		} else if n >= e.cfg.Limits.CardFailuresPerDay*o.Attempts {
			e.log.WarnContext(ctx, "amountauth: card past its failed sessions of the day", "card", r.Card.Number.Masked(), "failures", n)
			return nil, errRateLimited
		}
	}
	var secret string
	if skip {
		s.State, s.VerifyDone, s.VerifiedAt = Processing, true, verifiedAt
		s.ChallengeMAC = e.challengeMAC(id, o.Method, "")
	} else {
		secret, err = e.draw(o, r.Amount.Minor)
		if err != nil {
			return nil, err
		}
		s.Ceiling = min(r.Amount.Minor, o.HighestChallenge)
		s.ChallengeMAC = e.challengeMAC(id, o.Method, secret)
	}
	if err := e.cfg.Store.Create(ctx, s); err != nil {
		if errors.Is(err, ErrExists) {
			return nil, errOrderInUse
		}
		return nil, err
	}
	e.log.InfoContext(ctx, "amountauth: session started", "session", s.ID, "merchant", s.Merchant, "card", s.CardRef, "skip", skip)
	if skip {
		return e.drive(ctx, s)
	}
	return e.verify(ctx, s, secret, o)
}

// subMerchant is the name the cardholder's text shows.
//
// The configured name comes first: the name in the text is what lets a
// cardholder see whom they are paying, so a merchant may not choose
// another's. A merchant without a configured name is shown by the name it
// sends, else by its entityID.
func (e *Engine) subMerchant(r *StartRequest) string {
	if n := e.cfg.MerchantNames[r.Merchant]; n != "" {
		return n
	}
	if r.SubMerchant != "" {
		return r.SubMerchant
	}
	return r.Merchant
}

// allow applies the rate limits of a start.
func (e *Engine) allow(merchant string, cardMAC, userMAC []byte) error {
	if ok, _ := e.merchant.Allow(merchant); !ok {
		return errRateLimited
	}
	if ok, _ := e.card.Allow(string(cardMAC)); !ok {
		return errRateLimited
	}
	if userMAC != nil {
		if ok, _ := e.user.Allow(string(userMAC)); !ok {
			return errRateLimited
		}
	}
	return nil
}

// AllowClient applies the page's rate limit to a client (its address).
func (e *Engine) AllowClient(client string) (bool, time.Duration) { return e.client.Allow(client) }

// skip reports whether AA is skipped: below the minimum purchase, or a
// profile within its period (then also when that verification was).
func (e *Engine) skip(ctx context.Context, o Options, r *StartRequest, userMAC, cardMAC []byte, now time.Time) (bool, time.Time, error) {
	if r.Amount.Minor < o.MinPurchase {
		return true, time.Time{}, nil
	}
	if o.ProfilePeriod <= 0 || userMAC == nil {
		return false, time.Time{}, nil
	}
	at, ok, err := e.cfg.Store.Verified(ctx, r.Merchant, userMAC, cardMAC)
	if err != nil || !ok || now.Sub(at) >= o.ProfilePeriod {
		return false, time.Time{}, err
	}
	return true, at, nil
}

// draw returns the secret the cardholder types: the challenge amount
// (uniform in [lowest, min(purchase, highest)), KECIS §15.3.4), or a
// descriptor code (the challenge amount is then the lowest).
func (e *Engine) draw(o Options, purchase int64) (string, error) {
	if o.Method == ByDescriptor {
		n, err := e.uniform(1_000_000)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%0*d", descriptorDigits, n), nil
	}
	n, err := e.uniform(min(purchase, o.HighestChallenge) - o.LowestChallenge)
	if err != nil {
		return "", err
	}
	return strconv.FormatInt(o.LowestChallenge+n, 10), nil
}

// verify asks the issuer for the verification approval of a new session.
func (e *Engine) verify(ctx context.Context, s *Session, secret string, o Options) (*Session, error) {
	req := &card.VerificationRequest{Merchant: e.cfg.EntityID, OrderID: verifyOrder(s.ID), SessionID: s.ID,
		Ceiling: ecml.Money{Minor: s.Ceiling, Currency: s.Amount.Currency}, Card: s.Card, SubMerchant: s.SubMerchant,
		IdempotencyKey: keyVerify(s.ID)}
	if o.Method == ByDescriptor {
		req.Challenge = ecml.Money{Minor: o.LowestChallenge, Currency: s.Amount.Currency}
		req.DescriptorCode = ecml.Secret(secret)
	} else {
		v, _ := strconv.ParseInt(secret, 10, 64)
		req.Challenge = ecml.Money{Minor: v, Currency: s.Amount.Currency}
	}
	out, err := e.cfg.Issuer.ApproveVerification(ctx, s.Issuer, req)
	return e.verified(ctx, s, out, err)
}

// verified records the outcome of the verification approval.
func (e *Engine) verified(ctx context.Context, s *Session, out *card.Outcome, err error) (*Session, error) {
	switch {
	case unknown(out, err):
		// Unknown: Recover learns it with inquire.
		e.log.WarnContext(ctx, "amountauth: verification approval outcome unknown", "session", s.ID, "error", errText(err))
		return s, nil
	case out.OK():
		s.State, s.VerifyApproval = AwaitingAmount, out.Approval.ApprovalNumber
	default:
		s.State, s.VerifyDone = Refused, true
		s.RefusalCode, s.RefusalMessage = out.Result.Status.SubCode, out.Result.Status.Message
	}
	s.Updated = e.now()
	if err := e.cfg.Store.Update(ctx, s); err != nil {
		return e.reload(ctx, s, err)
	}
	return s, nil
}

// reload answers a lost compare-and-set with the session as it now is.
func (e *Engine) reload(ctx context.Context, s *Session, err error) (*Session, error) {
	if !errors.Is(err, ErrConflict) {
		return nil, err
	}
	return e.cfg.Store.Get(ctx, s.ID)
}

// Lookup returns the merchant's session (ErrNotFound for another's).
func (e *Engine) Lookup(ctx context.Context, merchant, id string) (*Session, error) {
	s, err := e.cfg.Store.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if merchant != "" && s.Merchant != merchant {
		return nil, ErrNotFound
	}
	return e.expire(ctx, s)
}

// expire ends an awaiting session past its deadline and voids its
// verification approval.
func (e *Engine) expire(ctx context.Context, s *Session) (*Session, error) {
	if s.State != AwaitingAmount || e.now().Before(s.Deadline) {
		return s, nil
	}
	s.State, s.Updated = Expired, e.now()
	if err := e.cfg.Store.Update(ctx, s); err != nil {
		return e.reload(ctx, s, err)
	}
	e.log.InfoContext(ctx, "amountauth: session expired", "session", s.ID)
	return e.void(ctx, s)
}

// Confirm takes one typed amount or code for the merchant's session
// (KECIS §15.3.1 confirm; the page calls it with merchant ""). A session
// that ended answers as it is, without counting an attempt.
func (e *Engine) Confirm(ctx context.Context, merchant, id string, typed Typed) (*Session, error) {
	// An entry that loses a compare-and-set to a concurrent one (the page
	// and the merchant at once) is judged again on the session as it now
	// is, so that none is lost or judged on a stale state.
	for range 8 {
		s, err := e.confirm(ctx, merchant, id, typed)
		if !errors.Is(err, ErrConflict) {
			return s, err
		}
	}
	return e.Lookup(ctx, merchant, id)
}

func (e *Engine) confirm(ctx context.Context, merchant, id string, typed Typed) (*Session, error) {
	s, err := e.Lookup(ctx, merchant, id)
	if err != nil {
		return nil, err
	}
	if s.State != AwaitingAmount {
		return e.drive(ctx, s)
	}
	var value string
	switch {
	case s.Method == ByDescriptor && typed.Code != "":
		value = typed.Code.Reveal()
	case s.Method == ByAmount && typed.Amount != nil && typed.Amount.Currency == s.Amount.Currency:
		value = strconv.FormatInt(typed.Amount.Minor, 10)
	}
	if typed.Amount == nil && typed.Code == "" {
		return s, nil // nothing typed: nothing judged, nothing counted
	}
	match := value != "" && hmac.Equal(e.challengeMAC(s.ID, s.Method, value), s.ChallengeMAC)
	now := e.now()
	if !match {
		s.Attempts++
		if s.Attempts >= s.MaxAttempts {
			s.State = Failed
		}
		s.Updated = now
		if err := e.cfg.Store.Update(ctx, s); err != nil {
			return nil, err
		}
		e.log.InfoContext(ctx, "amountauth: wrong entry", "session", s.ID, "attempts", s.Attempts, "of", s.MaxAttempts)
		if s.State == Failed {
			return e.void(ctx, s)
		}
		return s, nil
	}
	s.State, s.VerifiedAt, s.Updated = Processing, now, now
	if err := e.cfg.Store.Update(ctx, s); err != nil {
		return nil, err
	}
	e.log.InfoContext(ctx, "amountauth: matched", "session", s.ID)
	if s.UserMAC != nil && e.options(s.Merchant).ProfilePeriod > 0 {
		if err := e.cfg.Store.Remember(ctx, s.Merchant, s.UserMAC, s.CardMAC, now); err != nil {
			e.log.WarnContext(ctx, "amountauth: profile not recorded", "session", s.ID, "error", errText(err))
		}
	}
	return e.drive(ctx, s)
}

// drive carries a session as far as it can go now: a verification
// approval whose outcome is unknown is asked again, a matched session
// voids and approves, an ended one voids. It is what Recover runs, and
// what a repeated request runs.
func (e *Engine) drive(ctx context.Context, s *Session) (*Session, error) {
	var err error
	switch s.State {
	case Starting:
		return e.resume(ctx, s)
	case AwaitingAmount:
		return e.expire(ctx, s)
	case Processing:
		if s, err = e.void(ctx, s); err != nil || !s.VerifyDone {
			return s, err
		}
		return e.purchase(ctx, s)
	}
	if !s.VerifyDone {
		return e.void(ctx, s)
	}
	return s, nil
}

// resume learns the outcome of a verification approval that was not
// recorded (a crash, or an answer that never came) with inquire by its
// order (KECIS §15.3.3): found, the session awaits the amount until its
// deadline; not found once the grace has passed since the request (longer
// than any request lives), it never will be, and the session expires. The
// challenge itself is not kept, so the request cannot be sent again.
func (e *Engine) resume(ctx context.Context, s *Session) (*Session, error) {
	if e.now().Sub(s.Updated) < e.cfg.Grace && ctx.Value(recovering{}) == nil {
		return s, nil // its own request is still in flight
	}
	out, err := e.cfg.Issuer.Inquire(ctx, s.Issuer, &card.InquireRequest{Merchant: e.cfg.EntityID, OrderID: verifyOrder(s.ID)})
	switch {
	case unknown(out, err):
		return s, nil
	case out.OK():
		s.VerifyApproval = out.Approval.ApprovalNumber
	case out.Result.Status.Code == saml.StatusRequester && out.Result.Status.SubCode == saml.CodeDeclined:
		// No such approval: it was never made. The verification request
		// may still be in flight at the issuer after a crash; Recover
		// leaves the session until the grace has passed since its last
		// write, longer than any request lives (Client retries included).
		if e.now().Sub(s.Updated) < e.cfg.Grace {
			return s, nil
		}
		s.VerifyDone = true
	default:
		return s, nil
	}
	if s.VerifyDone {
		s.State = Expired
	} else {
		// The approval stands: the cardholder has its text, and the
		// session goes on until its deadline (its challenge's HMAC was
		// written before the request was sent).
		s.State = AwaitingAmount
	}
	s.Updated = e.now()
	if err := e.cfg.Store.Update(ctx, s); err != nil {
		return e.reload(ctx, s, err)
	}
	e.log.InfoContext(ctx, "amountauth: interrupted start resolved", "session", s.ID, "state", s.State)
	return e.drive(ctx, s)
}

type recovering struct{}

// void voids the session's verification approval, once: cancel with the
// session's void key; a settled one is refunded; an unknown outcome is
// resolved with inquire, and otherwise left for Recover.
func (e *Engine) void(ctx context.Context, s *Session) (*Session, error) {
	if s.VerifyDone {
		return s, nil
	}
	ref := &card.CancelRequest{Merchant: e.cfg.EntityID, OrderID: verifyOrder(s.ID), ApprovalNumber: s.VerifyApproval, IdempotencyKey: keyVoid(s.ID)}
	out, err := e.cfg.Issuer.Cancel(ctx, s.Issuer, ref)
	done := false
	switch {
	case err == nil && out != nil && out.OK():
		done = true
	case !unknown(out, err) && out.Result.Status.SubCode == saml.CodePolicyViolation:
		// Settled: refund it whole (KECIS §15.2: no amount).
		r, rerr := e.cfg.Issuer.Refund(ctx, s.Issuer, &card.RefundRequest{Merchant: e.cfg.EntityID, OrderID: ref.OrderID,
			ApprovalNumber: ref.ApprovalNumber, IdempotencyKey: keyRefund(s.ID)})
		done = rerr == nil && r != nil && r.OK()
	}
	if !done {
		done = e.voided(ctx, s)
	}
	if !done {
		e.log.WarnContext(ctx, "amountauth: void not confirmed; Recover retries", "session", s.ID, "error", errText(err))
		return s, nil
	}
	s.VerifyDone, s.Updated = true, e.now()
	if err := e.cfg.Store.Update(ctx, s); err != nil {
		return e.reload(ctx, s, err)
	}
	e.log.InfoContext(ctx, "amountauth: verification approval voided", "session", s.ID, "approval", s.VerifyApproval)
	return s, nil
}

// voided asks the issuer whether the verification approval is void (or
// refunded) already.
func (e *Engine) voided(ctx context.Context, s *Session) bool {
	out, err := e.cfg.Issuer.Inquire(ctx, s.Issuer, &card.InquireRequest{Merchant: e.cfg.EntityID, OrderID: verifyOrder(s.ID), ApprovalNumber: s.VerifyApproval})
	if err != nil || out == nil || !out.OK() {
		return false
	}
	st := out.Approval.State
	return st == card.Cancelled || st == card.Refunded
}

// purchase approves the purchase of a verified session (its verification
// approval voided) through the PG's own approve, with the signed result.
func (e *Engine) purchase(ctx context.Context, s *Session) (*Session, error) {
	res, err := e.result(s)
	if err != nil {
		return nil, err
	}
	p := &Purchase{ApproveRequest: card.ApproveRequest{Merchant: s.Merchant, OrderID: s.OrderID, Amount: s.Amount, Card: s.Card,
		IdempotencyKey: keyPurchase(s.ID), SubMerchant: s.SubMerchant}, Result: res}
	ap, err := e.cfg.Acquirer.ApprovePurchase(ctx, p)
	if st, ok := connectors.AsStatus(err); ok {
		if st.SubCode == saml.CodePending || st.SubCode == saml.CodeInFlight || st.SubCode == saml.CodeProviderUnavailable || st.SubCode == saml.CodeHubUnavailable {
			return s, nil // unknown: asked again with the same key
		}
		s.State, s.RefusalCode, s.RefusalMessage = Declined, st.SubCode, st.Message
	} else if err != nil {
		e.log.WarnContext(ctx, "amountauth: purchase outcome unknown; asked again later", "session", s.ID, "error", errText(err))
		return s, nil
	} else {
		s.State, s.PurchaseApproval = Approved, ap.ApprovalNumber
		if res != nil {
			doc := etree.NewDocument()
			doc.SetRoot(res.Copy())
			if b, err := doc.WriteToBytes(); err == nil {
				s.Result = b
			}
		}
	}
	s.Updated = e.now()
	if err := e.cfg.Store.Update(ctx, s); err != nil {
		return e.reload(ctx, s, err)
	}
	e.log.InfoContext(ctx, "amountauth: purchase decided", "session", s.ID, "state", s.State, "code", s.RefusalCode)
	return s, nil
}

// result signs the authentication result of a verified session (none when
// AA was skipped below the minimum purchase).
func (e *Engine) result(s *Session) (*etree.Element, error) {
	if s.VerifiedAt.IsZero() {
		return nil, nil
	}
	amount, err := ecml.FormatAmount(s.Amount)
	if err != nil {
		return nil, err
	}
	id, err := e.newID()
	if err != nil {
		return nil, err
	}
	now := e.now()
	r := &saml.AuthenticationResult{ID: "_aa" + id, IssueInstant: now, Issuer: e.cfg.EntityID, Method: MethodURI, Factors: 1,
		Amount: amount, Currency: s.Amount.Currency, Merchant: s.Merchant, OrderID: s.OrderID, CardRef: s.CardRef,
		AuthnInstant: s.VerifiedAt, NotOnOrAfter: now.Add(e.cfg.ResultValidity)}
	return r.Sign(e.cfg.Signer)
}

// Recover finishes what sessions left (KECIS §15.3.3): it ends sessions
// past their timeout, asks again for outcomes not recorded, voids every
// verification approval still standing and approves matched purchases.
// It runs at start-up and on a schedule (Run); it reads at most limit
// sessions and reports how many still owe work.
func (e *Engine) Recover(ctx context.Context, limit int) (pending int, err error) {
	open, err := e.cfg.Store.Open(ctx, limit)
	if err != nil {
		return 0, err
	}
	ctx = context.WithValue(ctx, recovering{}, true)
	for _, s := range open {
		if s.State == AwaitingAmount && e.now().Before(s.Deadline) {
			continue
		}
		if s.State == Processing && e.now().Sub(s.Updated) < e.cfg.Grace {
			continue // its own request is still driving it
		}
		id := s.ID
		s, err := e.drive(ctx, s)
		if err != nil {
			// One session's trouble stops no other's recovery.
			e.log.ErrorContext(ctx, "amountauth: recovery of a session failed", "session", id, "error", errText(err))
			pending++
			continue
		}
		if !s.VerifyDone || s.State == Starting || s.State == Processing {
			pending++
		}
	}
	return pending, nil
}

// Run calls Recover now and at every tick until ctx ends.
func (e *Engine) Run(ctx context.Context, tick <-chan time.Time) {
	for {
		if n, err := e.Recover(ctx, 1000); err != nil {
			e.log.ErrorContext(ctx, "amountauth: recovery failed", "error", errText(err))
		} else if n > 0 {
			e.log.WarnContext(ctx, "amountauth: sessions still owe work", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick:
		}
	}
}

// unknown reports an outcome that is not known: an error, Pending or
// InFlight, or a provider or hub that could not answer (KECIS §6.2, §10.3).
func unknown(out *card.Outcome, err error) bool {
	if err != nil || out == nil || out.Result == nil || out.Result.Pending() {
		return true
	}
	c := out.Result.Status.SubCode
	return c == saml.CodeProviderUnavailable || c == saml.CodeHubUnavailable
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return ecml.RedactPANs(err.Error())
}

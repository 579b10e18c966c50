package microdeposit

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
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/ratelimit"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

// Config configures an Engine.
type Config struct {
	Store     Store
	Depositor Depositor
	// Returner asks the holder's bank to return deposits; required when a
	// policy is Return.
	Returner Returner
	// Key keys the hashes of accounts, users, amounts and codes (at least
	// 32 bytes, a verifier's secret).
	Key []byte
	// Options are the defaults; Verifiers overrides them per verifier
	// (whole Options, zero fields defaulted).
	Options   Options
	Verifiers map[string]Options
	// Names are the verifiers' names on the holder's statement (at most
	// MaxNameLength characters); Name is the default.
	Names map[string]string
	Name  string
	// Limits bound the sessions per account and user and the page's
	// entries per client; zero fields take DefaultLimits.
	Limits Limits
	// Grace is how long a session's own request is left to send its
	// deposits before Recover takes it over (default 8 minutes, longer
	// than a call through the hub with its retries).
	Grace time.Duration
	Now   func() time.Time
	Rand  io.Reader
	Log   *slog.Logger
}

// MaxNameLength bounds a verifier's name on statements (characters):
// with a code and a space it stays within what banks show.
const MaxNameLength = 10

// Limits: sessions an account may have started in 24 hours (whichever
// verifier started them), sessions a verifier's user may have, and
// entries a client may make on the page (a rate per hour and a burst).
type Limits struct {
	AccountPerDay, UserPerDay int
	ClientPerHour             float64
	ClientBurst               int
}

// DefaultLimits: an account 3 sessions a day, a user 5, a client 60
// entries an hour (burst 20).
var DefaultLimits = Limits{AccountPerDay: 3, UserPerDay: 5, ClientPerHour: 60, ClientBurst: 20}

// DefaultGrace is Config.Grace's default.
const DefaultGrace = 8 * time.Minute

// Engine runs micro-deposit verifications.
type Engine struct {
	cfg    Config
	client *ratelimit.Limiter
	now    func() time.Time
	rand   io.Reader
	log    *slog.Logger
}

// New checks cfg and returns the engine.
func New(cfg Config) (*Engine, error) {
	switch {
	case cfg.Store == nil || cfg.Depositor == nil:
		return nil, errors.New("microdeposit: Store and Depositor are required")
	case len(cfg.Key) < 32:
		return nil, errors.New("microdeposit: Key must be at least 32 bytes")
	}
	cfg.Options = cfg.Options.withDefaults()
	all := map[string]Options{"": cfg.Options}
	for v, o := range cfg.Verifiers {
		all[v] = o.withDefaults()
	}
	for v, o := range all {
		if err := o.check(); err != nil {
			return nil, fmt.Errorf("%w (verifier %q)", err, v)
		}
		if o.Policy == Return && cfg.Returner == nil {
			return nil, fmt.Errorf("microdeposit: the return policy needs a Returner (verifier %q)", v)
		}
	}
	for v, n := range cfg.Names {
		if err := checkName(n); err != nil {
			return nil, fmt.Errorf("%w (verifier %q)", err, v)
		}
	}
	if cfg.Name != "" {
		if err := checkName(cfg.Name); err != nil {
			return nil, err
		}
	}
	l, d := cfg.Limits, DefaultLimits
	if l.AccountPerDay <= 0 {
		l.AccountPerDay = d.AccountPerDay
	}
	if l.UserPerDay <= 0 {
		l.UserPerDay = d.UserPerDay
	}
	if l.ClientPerHour <= 0 {
		l.ClientPerHour, l.ClientBurst = d.ClientPerHour, d.ClientBurst
	}
	cfg.Limits = l
	if cfg.Grace <= 0 {
		cfg.Grace = DefaultGrace
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
	return &Engine{cfg: cfg, now: cfg.Now, rand: cfg.Rand, log: cfg.Log,
		client: ratelimit.New(ratelimit.Config{PerSecond: l.ClientPerHour / 3600, Burst: max(l.ClientBurst, 1)}, cfg.Now)}, nil
}

func checkName(n string) error {
	if n == "" || utf8.RuneCountInString(n) > MaxNameLength || !utf8.ValidString(n) || strings.ContainsFunc(n, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return fmt.Errorf("microdeposit: a verifier's name is 1 to %d printable characters", MaxNameLength)
	}
	return nil
}

func (e *Engine) options(verifier string) Options {
	if o, ok := e.cfg.Verifiers[verifier]; ok {
		return o.withDefaults()
	}
	return e.cfg.Options
}

// Refusals the engine answers itself.
var (
	errNoSession   = connectors.Refuse(saml.StatusRequester, saml.CodeDeclined, "no such session")
	errDuplicate   = connectors.Refuse(saml.StatusRequester, saml.CodeDuplicate, "the idempotency key was used for another account or user")
	errRateLimited = connectors.Refuse(saml.StatusResponder, saml.CodeLimitExceeded, "too many verifications of this account or user; try again later")
)

// NoSuchSession is the status of a session that is unknown or another
// verifier's (KECIS §13.3).
var NoSuchSession = errNoSession.Status

func invalid(msg string) error {
	return connectors.Refuse(saml.StatusRequester, saml.CodeInvalidPayload, msg)
}

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

// secretMAC binds what the holder must type to its session: the two
// amounts sorted (the order is irrelevant), or the code.
func (e *Engine) secretMAC(id string, v Variant, amounts []int64, code string) []byte {
	if v == Code {
		return e.mac("microdeposit code", id, code)
	}
	a := slices.Clone(amounts)
	slices.Sort(a)
	parts := []string{id}
	for _, x := range a {
		parts = append(parts, strconv.FormatInt(x, 10))
	}
	return e.mac("microdeposit amounts", parts...)
}

func (e *Engine) uniform(n int64) (int64, error) {
	v, err := rand.Int(e.rand, big.NewInt(n))
	if err != nil {
		return 0, fmt.Errorf("microdeposit: random: %w", err)
	}
	return v.Int64(), nil
}

func (e *Engine) newID() (string, error) {
	b := make([]byte, 16)
	if _, err := io.ReadFull(e.rand, b); err != nil {
		return "", fmt.Errorf("microdeposit: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// draw draws a session's deposits.
func (e *Engine) draw(o Options) (*Draw, error) {
	d := &Draw{Currency: o.Currency}
	if o.Variant == Code {
		var b strings.Builder
		for range o.CodeLength {
			n, err := e.uniform(int64(len(CodeAlphabet)))
			if err != nil {
				return nil, err
			}
			b.WriteByte(CodeAlphabet[n])
		}
		d.Code, d.Amounts = b.String(), []int64{o.CodeAmount}
		return d, nil
	}
	for range 2 {
		n, err := e.uniform(o.MaxAmount - o.MinAmount + 1)
		if err != nil {
			return nil, err
		}
		d.Amounts = append(d.Amounts, o.MinAmount+n)
	}
	return d, nil
}

// References and idempotency keys of the engine's own calls, derived from
// the session so that a retry after a crash repeats the same request
// (KECIS §7.1).
func depositRef(id string, i int) string { return "MD-" + id + "-" + strconv.Itoa(i+1) }
func depositKey(id string, i int) string { return "md-" + id + "-deposit-" + strconv.Itoa(i+1) }
func returnRef(id string) string         { return "MDR-" + id }
func returnKey(id string) string         { return "md-" + id + "-return" }

// Start begins a verification of the user's account: it records the
// session and sends the deposits. A repeat with the same idempotency key
// answers the same session (carried as far as it can go); the same key
// for another account or user is refused.
func (e *Engine) Start(ctx context.Context, r *StartRequest) (*Session, error) {
	digits, ok := ecml.AccountDigits(r.Account.Reveal())
	switch {
	case r.Verifier == "" || r.UserID == "" || r.IdempotencyKey == "" || len(r.IdempotencyKey) > 64:
		return nil, invalid("a verification needs the verifier, the user and an idempotency key of at most 64 characters")
	case !validBankCode(r.Bank):
		return nil, invalid("the bank code is three digits")
	case !ok:
		return nil, invalid("the account number is 6 to 20 digits, optionally grouped with single hyphens")
	}
	acctMAC := e.mac("microdeposit account", r.Bank, digits)
	userMAC := e.mac("microdeposit user", r.Verifier, r.UserID)
	if s, err := e.cfg.Store.ByKey(ctx, r.Verifier, r.IdempotencyKey); err == nil {
		return e.repeat(ctx, s, acctMAC, userMAC)
	} else if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	now := e.now()
	if n, err := e.cfg.Store.Started(ctx, acctMAC, true, now.Add(-24*time.Hour)); err != nil {
		return nil, err
	} else if n >= e.cfg.Limits.AccountPerDay {
		e.log.WarnContext(ctx, "microdeposit: account past its sessions of the day", "bank", r.Bank, "account", ecml.MaskAccount(digits))
		return nil, errRateLimited
	}
	if n, err := e.cfg.Store.Started(ctx, userMAC, false, now.Add(-24*time.Hour)); err != nil {
		return nil, err
	} else if n >= e.cfg.Limits.UserPerDay {
		e.log.WarnContext(ctx, "microdeposit: user past its sessions of the day", "verifier", r.Verifier)
		return nil, errRateLimited
	}
	name := e.cfg.Names[r.Verifier]
	if name == "" {
		name = e.cfg.Name
	}
	if name == "" {
		return nil, errors.New("microdeposit: no name on statements for the verifier " + r.Verifier)
	}
	o := e.options(r.Verifier)
	id, err := e.newID()
	if err != nil {
		return nil, err
	}
	d, err := e.draw(o)
	if err != nil {
		return nil, err
	}
	s := &Session{ID: id, Verifier: r.Verifier, IdempotencyKey: r.IdempotencyKey, State: Sending, Variant: o.Variant,
		Bank: r.Bank, Account: ecml.Secret(digits), AccountRef: ecml.MaskAccount(digits), AccountMAC: acctMAC, UserMAC: userMAC,
		Memo: name, SecretMAC: e.secretMAC(id, o.Variant, d.Amounts, d.Code), Deposits: len(d.Amounts),
		MaxAttempts: o.Attempts, Deadline: now.Add(o.Expiry), Policy: o.Policy, Created: now, Updated: now, Pending: d}
	if err := e.cfg.Store.Create(ctx, s); err != nil {
		if errors.Is(err, ErrExists) { // a concurrent repeat won
			if w, gerr := e.cfg.Store.ByKey(ctx, r.Verifier, r.IdempotencyKey); gerr == nil {
				return e.repeat(ctx, w, acctMAC, userMAC)
			}
		}
		return nil, err
	}
	e.log.InfoContext(ctx, "microdeposit: session started", "session", s.ID, "verifier", s.Verifier, "bank", s.Bank,
		"account", s.AccountRef, "variant", s.Variant)
	return e.send(ctx, s, false)
}

// repeat answers a start repeated with its idempotency key.
func (e *Engine) repeat(ctx context.Context, s *Session, acctMAC, userMAC []byte) (*Session, error) {
	if !hmac.Equal(s.AccountMAC, acctMAC) || !hmac.Equal(s.UserMAC, userMAC) {
		return nil, errDuplicate
	}
	return e.drive(ctx, s)
}

// send sends every deposit not credited yet, one after the other, and
// records each credit at once; with resolve (a session taken over from a
// crash or an unknown outcome) it first asks whether the deposit was made.
// An outcome still unknown leaves the session sending, for Recover.
func (e *Engine) send(ctx context.Context, s *Session, resolve bool) (*Session, error) {
	for i := range s.Deposits {
		if s.Credits[i] != "" {
			continue
		}
		if s.Pending == nil || len(s.Pending.Amounts) != s.Deposits {
			return nil, fmt.Errorf("microdeposit: session %s has deposits to send and no draw", s.ID)
		}
		ref, refusal, known := e.deposit(ctx, s, i, resolve)
		if !known {
			e.log.WarnContext(ctx, "microdeposit: deposit outcome unknown; Recover asks again", "session", s.ID, "deposit", i+1)
			return s, nil
		}
		if refusal != nil {
			s.State, s.Pending, s.RefusalCode, s.RefusalMessage = Refused, nil, refusal.SubCode, refusal.Message
			e.owe(s)
			s.Updated = e.now()
			if err := e.cfg.Store.Update(ctx, s); err != nil {
				return e.reload(ctx, s, err)
			}
			e.log.InfoContext(ctx, "microdeposit: deposit refused", "session", s.ID, "deposit", i+1, "code", refusal.SubCode)
			return e.settle(ctx, s)
		}
		if ref == "" {
			break // past the deadline and never made: not sent any more
		}
		s.Credits[i], s.Updated = ref, e.now()
		if err := e.cfg.Store.Update(ctx, s); err != nil {
			return e.reload(ctx, s, err)
		}
		e.log.InfoContext(ctx, "microdeposit: deposit credited", "session", s.ID, "deposit", i+1, "credit", ref)
	}
	now := e.now()
	s.Pending, s.Updated = nil, now
	if now.Before(s.Deadline) && s.Credits[s.Deposits-1] != "" {
		s.State = Awaiting
	} else {
		s.State = Expired
		e.owe(s)
	}
	if err := e.cfg.Store.Update(ctx, s); err != nil {
		return e.reload(ctx, s, err)
	}
	e.log.InfoContext(ctx, "microdeposit: deposits credited", "session", s.ID, "state", s.State)
	return e.settle(ctx, s)
}

// deposit makes the session's i-th deposit: it sends it and, when the
// outcome is unknown, asks the depositor whether it was made and, if not,
// sends it again under the same key (the bank answers a repeat with the
// first outcome); with inquireFirst it asks before sending, and past the
// session's deadline a deposit never made is not sent (ref "", known).
func (e *Engine) deposit(ctx context.Context, s *Session, i int, inquireFirst bool) (ref string, refusal *saml.Status, known bool) {
	d := &Deposit{Reference: depositRef(s.ID, i), IdempotencyKey: depositKey(s.ID, i), Bank: s.Bank, Account: s.Account,
		Amount: ecml.Money{Minor: s.Pending.Amounts[i], Currency: s.Pending.Currency}, Memo: ecml.Secret(s.Memo)}
	if s.Variant == Code {
		d.Memo = ecml.Secret(s.Pending.Code + " " + s.Memo)
	}
	steps := []bool{false, true, false} // send, inquire, send
	if inquireFirst {
		steps = steps[1:]
	}
	for _, inquire := range steps {
		if inquire {
			ref, err := e.cfg.Depositor.Inquire(ctx, d.Bank, d.Reference)
			switch {
			case err == nil && ref != "":
				return ref, nil, true
			case errors.Is(err, ErrNoSuchDeposit) && !e.now().Before(s.Deadline):
				// Never made, and the session is over: nothing is sent
				// after its deadline.
				return "", nil, true
			case errors.Is(err, ErrNoSuchDeposit):
				continue
			default:
				return "", nil, false
			}
		}
		ref, err := e.cfg.Depositor.Deposit(ctx, d)
		if err == nil && ref != "" {
			return ref, nil, true
		}
		if st, ok := connectors.AsStatus(err); ok && !unknownStatus(st) {
			return "", &st, true
		}
		e.log.WarnContext(ctx, "microdeposit: deposit not answered", "session", s.ID, "deposit", i+1, "error", errText(err))
	}
	return "", nil, false
}

// unknownStatus reports a status that leaves an outcome unknown (KECIS
// §6.2, §10.3).
func unknownStatus(st saml.Status) bool {
	switch st.SubCode {
	case saml.CodePending, saml.CodeInFlight, saml.CodeProviderUnavailable, saml.CodeHubUnavailable:
		return true
	}
	return false
}

// owe marks the return of the session's credited deposits as owed when
// its policy returns them.
func (e *Engine) owe(s *Session) {
	if s.Policy == Return && s.Return == "" && (s.Credits[0] != "" || s.Credits[1] != "") {
		s.Return = ReturnOwed
	}
}

// settle requests the return of an ended session's deposits when it is
// owed, once under the session's key; an unknown outcome is left for
// Recover.
func (e *Engine) settle(ctx context.Context, s *Session) (*Session, error) {
	if s.Return != ReturnOwed || !s.State.Ended() {
		return s, nil
	}
	if e.cfg.Returner == nil {
		return nil, errors.New("microdeposit: a return is owed and no Returner is configured")
	}
	r := &ReturnRequest{Reference: returnRef(s.ID), IdempotencyKey: returnKey(s.ID), Bank: s.Bank}
	for i := range s.Deposits {
		if s.Credits[i] != "" {
			r.Deposits = append(r.Deposits, Credited{Reference: depositRef(s.ID, i), CreditRef: s.Credits[i]})
		}
	}
	st, err := e.cfg.Returner.RequestReturn(ctx, r)
	if err != nil || (st != ReturnRequested && st != ReturnReturned && st != ReturnRefused) {
		e.log.WarnContext(ctx, "microdeposit: return request not answered; Recover asks again", "session", s.ID, "error", errText(err))
		return s, nil
	}
	s.Return, s.Updated = st, e.now()
	if err := e.cfg.Store.Update(ctx, s); err != nil {
		return e.reload(ctx, s, err)
	}
	e.log.InfoContext(ctx, "microdeposit: return requested", "session", s.ID, "return", st)
	return s, nil
}

// reload answers a lost compare-and-set with the session as it now is.
func (e *Engine) reload(ctx context.Context, s *Session, err error) (*Session, error) {
	if !errors.Is(err, ErrConflict) {
		return nil, err
	}
	return e.cfg.Store.Get(ctx, s.ID)
}

// Lookup returns the verifier's session (ErrNotFound for another's); a
// verifier "" is the holder's page, whose capability is the session's
// unguessable id.
func (e *Engine) Lookup(ctx context.Context, verifier, id string) (*Session, error) {
	s, err := e.cfg.Store.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if verifier != "" && s.Verifier != verifier {
		return nil, ErrNotFound
	}
	return e.expire(ctx, s)
}

// expire ends an awaiting session past its deadline.
func (e *Engine) expire(ctx context.Context, s *Session) (*Session, error) {
	if s.State != Awaiting || e.now().Before(s.Deadline) {
		return s, nil
	}
	s.State, s.Updated = Expired, e.now()
	e.owe(s)
	if err := e.cfg.Store.Update(ctx, s); err != nil {
		return e.reload(ctx, s, err)
	}
	e.log.InfoContext(ctx, "microdeposit: session expired", "session", s.ID)
	return e.settle(ctx, s)
}

// Confirm judges one entry of the holder for the verifier's session (the
// page calls it with verifier ""). An empty entry is not judged; a session
// that is not awaiting answers as it is, counting nothing.
func (e *Engine) Confirm(ctx context.Context, verifier, id string, typed Typed) (*Session, error) {
	// An entry that loses a compare-and-set to a concurrent one is judged
	// again on the session as it now is: none is lost or judged stale.
	for range 8 {
		s, err := e.confirm(ctx, verifier, id, typed)
		if !errors.Is(err, ErrConflict) {
			return s, err
		}
	}
	return e.Lookup(ctx, verifier, id)
}

func (e *Engine) confirm(ctx context.Context, verifier, id string, typed Typed) (*Session, error) {
	s, err := e.Lookup(ctx, verifier, id)
	if err != nil {
		return nil, err
	}
	if s.State != Awaiting {
		return e.drive(ctx, s)
	}
	if len(typed.Amounts) == 0 && typed.Code == "" {
		return s, nil
	}
	match := false
	switch {
	case s.Variant == Amounts && len(typed.Amounts) == 2:
		match = hmac.Equal(e.secretMAC(s.ID, Amounts, typed.Amounts, ""), s.SecretMAC)
	case s.Variant == Code && typed.Code != "":
		code, err := ParseCode(typed.Code)
		match = err == nil && hmac.Equal(e.secretMAC(s.ID, Code, nil, code), s.SecretMAC)
	}
	now := e.now()
	s.Updated = now
	if match {
		s.State, s.VerifiedAt = Verified, now
	} else {
		s.Attempts++
		if s.Attempts >= s.MaxAttempts {
			s.State = Failed
		}
	}
	if s.State.Ended() {
		e.owe(s)
	}
	if err := e.cfg.Store.Update(ctx, s); err != nil {
		return nil, err
	}
	if match {
		e.log.InfoContext(ctx, "microdeposit: account verified", "session", s.ID, "verifier", s.Verifier, "account", s.AccountRef)
	} else {
		e.log.InfoContext(ctx, "microdeposit: wrong entry", "session", s.ID, "attempts", s.Attempts, "of", s.MaxAttempts)
	}
	return e.settle(ctx, s)
}

// drive carries a session as far as it can go now: deposits left sending
// past the grace are resolved and sent, an awaiting session past its
// deadline expires, an owed return is requested. It is what Recover runs,
// and what a repeated request runs.
func (e *Engine) drive(ctx context.Context, s *Session) (*Session, error) {
	switch s.State {
	case Sending:
		if e.now().Sub(s.Updated) < e.cfg.Grace {
			return s, nil // its own request is still sending
		}
		return e.send(ctx, s, true)
	case Awaiting:
		return e.expire(ctx, s)
	}
	return e.settle(ctx, s)
}

// Recover finishes what sessions left: deposits whose outcome is unknown
// (or that a crash left unsent) are asked after and sent under their keys,
// sessions past their deadline expire, owed returns are requested. It
// runs at start-up and on a schedule (Run); it reads at most limit
// sessions and reports how many still owe work.
func (e *Engine) Recover(ctx context.Context, limit int) (pending int, err error) {
	open, err := e.cfg.Store.Open(ctx, limit)
	if err != nil {
		return 0, err
	}
	for _, s := range open {
		if s.State == Awaiting && e.now().Before(s.Deadline) {
			continue
		}
		id := s.ID
		s, err := e.drive(ctx, s)
		if err != nil {
			// One session's trouble stops no other's recovery.
			e.log.ErrorContext(ctx, "microdeposit: recovery of a session failed", "session", id, "error", errText(err))
			pending++
			continue
		}
		if s.State == Sending || s.Return == ReturnOwed {
			pending++
		}
	}
	return pending, nil
}

// Run calls Recover now and at every tick until ctx ends.
func (e *Engine) Run(ctx context.Context, tick <-chan time.Time) {
	for {
		if n, err := e.Recover(ctx, 1000); err != nil {
			e.log.ErrorContext(ctx, "microdeposit: recovery failed", "error", errText(err))
		} else if n > 0 {
			e.log.WarnContext(ctx, "microdeposit: sessions still owe work", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick:
		}
	}
}

// AllowClient applies the page's rate limit to a client (its address).
func (e *Engine) AllowClient(client string) (bool, time.Duration) { return e.client.Allow(client) }

// AttemptsLeft is the number of entries the session still takes.
func (s *Session) AttemptsLeft() int {
	if s.State != Awaiting {
		return 0
	}
	return max(s.MaxAttempts-s.Attempts, 0)
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return ecml.RedactPANs(err.Error())
}

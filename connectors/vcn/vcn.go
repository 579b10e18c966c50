package vcn

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/kecis/kecis/connectors/sqlstore"
	"github.com/kecis/kecis/ecml"
)

//go:embed migrations
var migrations embed.FS

// Component is the package's name in schema_migrations.
const Component = "vcn"

// Defaults and bounds (KECIS §15.4).
const (
	// DefaultLifetime is how long a number lives unless asked otherwise.
	DefaultLifetime = 30 * time.Minute
	// MaxLifetime bounds every number's life: less than a year, so that a
	// day of the year is never live twice from the same issuance year.
	MaxLifetime = 364 * 24 * time.Hour
	// DefaultLocation is the time zone of the day of issue.
	DefaultLocation = "Asia/Seoul"
)

// Errors of the service; test them with errors.Is. None holds a card
// number.
var (
	// ErrUnknown: not a virtual number of this issuer, or none issued (or
	// pruned since). An approval answers InvalidCard (KECIS §15.4).
	ErrUnknown = errors.New("vcn: unknown virtual card number")
	// ErrExpired: the number's expiry has passed.
	ErrExpired = errors.New("vcn: the virtual card number has expired")
	// ErrUsed: a single-use number was already spent.
	ErrUsed = errors.New("vcn: the virtual card number was already used")
	// ErrRevoked: the number was revoked.
	ErrRevoked = errors.New("vcn: the virtual card number was revoked")
	// ErrMerchant: the number is locked to another merchant.
	ErrMerchant = errors.New("vcn: the virtual card number is locked to another merchant")
	// ErrAmount: the amount is above the number's cap (LimitExceeded).
	ErrAmount = errors.New("vcn: the amount is above the virtual card number's cap")
	// ErrCurrency: the number is capped in another currency.
	ErrCurrency = errors.New("vcn: the virtual card number is for another currency")
	// ErrExhausted: the day's pool of the BIN has no serial left; never a
	// duplicate instead.
	ErrExhausted = errors.New("vcn: no virtual card number left in today's pool for this card type")
	// ErrInvalid: the request to Issue is malformed (card type, real card
	// number, controls); the message says which, never a digit of a card.
	ErrInvalid = errors.New("vcn: invalid request")
)

// Sealer encrypts the real card number at rest; connectors/store.Sealer
// (AES-256-GCM under the at-rest key) fits. ad binds a sealed value to its
// row.
type Sealer interface {
	Seal(plain, ad []byte) ([]byte, error)
	Open(sealed, ad []byte) ([]byte, error)
}

// Config configures a Service. Zero fields take the documented defaults.
type Config struct {
	// BINs maps a card type (ecml.VirtualCardCredit, …Check, …Prepaid,
	// …Other) to its 6-digit virtual BIN; DefaultBINs() when nil. Only the
	// types listed can be issued. The BINs must be distinct.
	BINs map[string]string
	// Location is the time zone of the day of issue; Asia/Seoul when nil.
	Location *time.Location
	// PoolKey (32 bytes or more) keys the permutation of the serial pool.
	PoolKey []byte
	// HashKey (32 bytes or more) keys the hashes by which numbers are found.
	HashKey []byte
	// Sealer seals the real card number. Required.
	Sealer Sealer
	// PoolSize is the number of serials per BIN and day, 1–999999
	// (serials 000001 up to it); MaxPoolSize when 0. Tests use small pools.
	PoolSize int
	// DefaultLifetime is a number's life when Issue is given no expiry;
	// DefaultLifetime when 0; at most MaxLifetime.
	DefaultLifetime time.Duration
	Now             func() time.Time
	Rand            io.Reader
	Log             *slog.Logger
}

// Controls are what the issuer enforces when it approves with a virtual
// number (KECIS §15.4).
type Controls struct {
	// SingleUse: the first approval spends the number.
	SingleUse bool
	// Merchant is the only merchant (entityID) the number may pay; "" any.
	Merchant string
	// MaxAmount caps each approval, in minor units of Currency; 0 no cap.
	MaxAmount int64
	// Currency is the only currency the number may pay in; "" any.
	Currency string
	// NotOnOrAfter is the expiry; Issue sets it to now + DefaultLifetime
	// when zero and clamps it to now + MaxLifetime.
	NotOnOrAfter time.Time
}

// DefaultControls are the controls of KECIS §15.4 for a number issued for a
// merchant: single use, locked to it, short-lived (NotOnOrAfter zero: the
// service's default lifetime).
func DefaultControls(merchant string) Controls {
	return Controls{SingleUse: true, Merchant: merchant}
}

// Issued is a number Issue handed out. ExpMonth and ExpYear are the
// month of the expiry in the issuer's time zone (the card's ExpDate).
type Issued struct {
	Number            ecml.PAN
	Type              string
	ExpMonth, ExpYear int
	Controls          Controls
	IssuedAt          time.Time
}

// Use is an approval asked with a virtual number: the merchant (the
// request's sub-merchant when an acquirer sends it, else the caller), the
// amount in minor units and its currency.
type Use struct {
	Merchant string
	Amount   int64
	Currency string
}

// Resolved is a virtual number found and accepted by AuthorizeTx: the real
// card behind it and the number's controls.
type Resolved struct {
	CardRef  string
	Real     ecml.PAN
	Number   ecml.PAN
	Type     string
	Controls Controls
}

// Service issues virtual card numbers and checks them at approval (KECIS
// §15.4), in the issuer's database. It is safe for concurrent use, and
// several Services (processes) may share one database.
type Service struct {
	db       *sqlstore.DB
	bins     map[string]string // type → BIN
	types    map[string]string // BIN → type
	loc      *time.Location
	poolKey  []byte
	hashKey  []byte
	sealer   Sealer
	poolSize int
	lifetime time.Duration
	now      func() time.Time
	rand     io.Reader
	log      *slog.Logger
}

// Open checks cfg, migrates the component "vcn" in db and returns the
// service (KECIS §15.4).
func Open(ctx context.Context, db *sqlstore.DB, cfg Config) (*Service, error) {
	if db == nil {
		return nil, errors.New("vcn: a database is required")
	}
	if cfg.Sealer == nil {
		return nil, errors.New("vcn: a sealer is required")
	}
	if len(cfg.PoolKey) < 32 || len(cfg.HashKey) < 32 {
		return nil, errors.New("vcn: PoolKey and HashKey must be at least 32 bytes")
	}
	s := &Service{db: db, bins: map[string]string{}, types: map[string]string{},
		loc: cfg.Location, poolKey: cfg.PoolKey, hashKey: cfg.HashKey, sealer: cfg.Sealer,
		poolSize: cfg.PoolSize, lifetime: cfg.DefaultLifetime, now: cfg.Now, rand: cfg.Rand, log: cfg.Log}
	bins := cfg.BINs
	if bins == nil {
		bins = DefaultBINs()
	}
	if len(bins) == 0 {
		return nil, errors.New("vcn: no virtual BIN configured")
	}
	for typ, bin := range bins {
		if _, ok := TypeCode(typ); !ok {
			return nil, fmt.Errorf("vcn: unknown card type %q", typ)
		}
		if len(bin) != 6 || !ecml.AllDigits(bin) {
			return nil, fmt.Errorf("vcn: the virtual BIN of %s must be 6 digits", typ)
		}
		if other, dup := s.types[bin]; dup {
			return nil, fmt.Errorf("vcn: %s and %s share the virtual BIN %s", other, typ, bin)
		}
		s.bins[typ], s.types[bin] = bin, typ
	}
	if s.loc == nil {
		loc, err := time.LoadLocation(DefaultLocation)
		if err != nil {
			// No zone database: Korea has kept UTC+9 without daylight
			// saving since 1988.
			loc = time.FixedZone("KST", 9*60*60)
		}
		s.loc = loc
	}
	if s.poolSize == 0 {
		s.poolSize = MaxPoolSize
	}
	if s.poolSize < 1 || s.poolSize > MaxPoolSize {
		return nil, fmt.Errorf("vcn: PoolSize must be 1 to %d", MaxPoolSize)
	}
	if s.lifetime == 0 {
		s.lifetime = DefaultLifetime
	}
	if s.lifetime < 0 || s.lifetime > MaxLifetime {
		return nil, errors.New("vcn: DefaultLifetime must be positive and at most MaxLifetime")
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if _, err := db.MigrateFS(ctx, Component, migrations, "migrations"); err != nil {
		return nil, err
	}
	return s, nil
}

// IsVirtual reports whether pan has the shape of a virtual number (16
// digits) and one of this issuer's virtual BINs (KECIS §15.4): an approval
// with it is de-tokenised with AuthorizeTx.
func (s *Service) IsVirtual(pan ecml.PAN) bool {
	p := pan.Reveal()
	if len(p) != Digits || !ecml.AllDigits(p) {
		return false
	}
	_, ok := s.types[p[:6]]
	return ok
}

// BINs returns the virtual BINs by card type (to publish among the
// issuer's BINs, KECIS §11.1).
func (s *Service) BINs() map[string]string {
	out := make(map[string]string, len(s.bins))
	for t, b := range s.bins {
		out[t] = b
	}
	return out
}

// mac is the keyed hash by which a number is found: HMAC-SHA256 under
// HashKey, separated by kind ("number" for virtual, "real").
func (s *Service) mac(kind string, pan ecml.PAN) []byte {
	m := hmac.New(sha256.New, s.hashKey)
	m.Write([]byte("kecis/vcn/" + kind + "\x00" + pan.Reveal()))
	return m.Sum(nil)
}

// invalid is ErrInvalid with what is wrong.
func invalid(what string) error { return fmt.Errorf("%w: %s", ErrInvalid, what) }

// Issue issues a virtual number of card type typ for the real card real
// (the issuer's card cardRef) with controls c (KECIS §15.4): the virtual BIN
// of the type, the day of the year of now in the issuer's time zone, the
// next serial of the day's pool, the Luhn digit. The number is unique among
// every number still live (the database refuses a second one; a number
// still live from a year before is skipped), the real card is stored
// sealed, and neither number in clear. ErrExhausted when the day's pool
// has no serial left; ErrInvalid for a bad request.
func (s *Service) Issue(ctx context.Context, cardRef string, real ecml.PAN, typ string, c Controls) (*Issued, error) {
	bin, ok := s.bins[typ]
	if !ok {
		return nil, invalid("no virtual BIN for the card type")
	}
	if r := real.Reveal(); !ecml.LooksLikePAN(r) || !ecml.LuhnValid(r) {
		return nil, invalid("the real card number is not a card number")
	}
	if s.IsVirtual(real) {
		return nil, invalid("the real card number is a virtual one")
	}
	if cardRef == "" || ecml.ContainsPAN(cardRef) {
		return nil, invalid("the card reference is empty or holds a card number")
	}
	if c.MaxAmount < 0 {
		return nil, invalid("negative amount cap")
	}
	if c.Currency != "" && !isCurrency(c.Currency) {
		return nil, invalid("the currency is not an ISO 4217 code")
	}
	now := s.now()
	switch {
	case c.NotOnOrAfter.IsZero():
		c.NotOnOrAfter = now.Add(s.lifetime)
	case !c.NotOnOrAfter.After(now):
		return nil, invalid("the expiry has passed")
	case c.NotOnOrAfter.After(now.Add(MaxLifetime)):
		c.NotOnOrAfter = now.Add(MaxLifetime)
	}
	c.NotOnOrAfter = c.NotOnOrAfter.UTC().Truncate(time.Microsecond) // as stored
	local := now.In(s.loc)
	day, yday := local.Format(time.DateOnly), local.YearDay()
	realMAC := s.mac("real", real)
	d := s.db.Dialect

	var number ecml.PAN
	err := s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		number = ""
		for drawn := 0; ; drawn++ {
			seed, acc, k, n, err := s.draw(ctx, tx, bin, day, now)
			if errors.Is(err, ErrExhausted) && drawn > 0 {
				return nil // keep the count of the live numbers skipped
			}
			if err != nil {
				return err
			}
			perm, err := newPermutation(s.poolKey, bin, day, int(n))
			if err != nil {
				return err
			}
			serial := perm.Apply(poolIndex(acc, k, seed, n)) + 1
			num, err := Format(Parts{BIN: bin, Day: yday, Serial: int(serial)})
			if err != nil {
				return err
			}
			numMAC := s.mac("number", num)
			sealed, err := s.sealer.Seal([]byte(real.Reveal()), numMAC)
			if err != nil {
				return fmt.Errorf("vcn: seal: %w", err)
			}
			// A row of the same number that has expired is replaced; a
			// live one stays, and the walk goes on.
			res, err := tx.ExecContext(ctx, `INSERT INTO vcn_number (number_mac, bin, day, real_sealed, real_mac,
	card_ref, card_type, single_use, merchant, max_amount, currency, not_on_or_after, issued_at, uses, used_at, revoked_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 0, NULL, NULL)
ON CONFLICT (number_mac) DO UPDATE SET bin = excluded.bin, day = excluded.day, real_sealed = excluded.real_sealed,
	real_mac = excluded.real_mac, card_ref = excluded.card_ref, card_type = excluded.card_type,
	single_use = excluded.single_use, merchant = excluded.merchant, max_amount = excluded.max_amount,
	currency = excluded.currency, not_on_or_after = excluded.not_on_or_after, issued_at = excluded.issued_at,
	uses = 0, used_at = NULL, revoked_at = NULL
WHERE vcn_number.not_on_or_after <= $13`,
				numMAC, bin, day, sealed, realMAC, cardRef, typ, c.SingleUse, c.Merchant, c.MaxAmount, c.Currency,
				d.Time(c.NotOnOrAfter), d.Time(now))
			if err != nil {
				return fmt.Errorf("vcn: issue: %w", err)
			}
			if n, err := res.RowsAffected(); err != nil {
				return fmt.Errorf("vcn: issue: %w", err)
			} else if n == 1 {
				number = num
				return nil
			}
			// Still live from an earlier year: not issued, not counted.
			if _, err := tx.ExecContext(ctx, `UPDATE vcn_pool SET total_count = total_count - 1 WHERE bin = $1 AND day = $2`, bin, day); err != nil {
				return fmt.Errorf("vcn: issue: %w", err)
			}
		}
	})
	if err == nil && number == "" {
		err = ErrExhausted
	}
	if err != nil {
		if errors.Is(err, ErrExhausted) {
			s.log.Warn("vcn pool exhausted", "bin", bin, "day", day, "card_type", typ)
		}
		return nil, err
	}
	exp := c.NotOnOrAfter.In(s.loc)
	s.log.Info("vcn issued", "number", number, "card_type", typ, "card_ref", cardRef,
		"single_use", c.SingleUse, "merchant", c.Merchant, "max_amount", c.MaxAmount, "currency", c.Currency,
		"not_on_or_after", c.NotOnOrAfter)
	return &Issued{Number: number, Type: typ, ExpMonth: int(exp.Month()), ExpYear: exp.Year(),
		Controls: c, IssuedAt: now}, nil
}

// draw takes the next pool index of the BIN's day (KECIS §15.4): it counts
// the draw in the day's row, atomically (the row is locked until the
// transaction ends), creating the row with a fresh seed on the day's first
// issuance. It returns the seed, the accumulated value, the seed count
// before this draw and the pool size; ErrExhausted once every index of the
// day was drawn.
func (s *Service) draw(ctx context.Context, tx *sql.Tx, bin, day string, now time.Time) (seed, acc, k, n uint64, err error) {
	const bump = `UPDATE vcn_pool SET seed_count = seed_count + 1, total_count = total_count + 1
WHERE bin = $1 AND day = $2 AND seed_count < pool_size
RETURNING seed, accumulated, seed_count - 1, pool_size`
	for attempt := 0; ; attempt++ {
		err = tx.QueryRowContext(ctx, bump, bin, day).Scan(&seed, &acc, &k, &n)
		if err == nil {
			return seed, acc, k, n, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return 0, 0, 0, 0, fmt.Errorf("vcn: draw: %w", err)
		}
		if attempt > 0 {
			return 0, 0, 0, 0, ErrExhausted
		}
		seed, acc, err := newSeed(s.rand, s.poolSize)
		if err != nil {
			return 0, 0, 0, 0, err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO vcn_pool (bin, day, pool_size, seed, accumulated, seed_count, total_count, created_at)
VALUES ($1, $2, $3, $4, $5, 0, 0, $6) ON CONFLICT (bin, day) DO NOTHING`,
			bin, day, s.poolSize, seed, acc, s.db.Dialect.Time(now)); err != nil {
			return 0, 0, 0, 0, fmt.Errorf("vcn: draw: %w", err)
		}
	}
}

// AuthorizeTx finds the virtual number inside the caller's transaction tx
// (the issuer's approval transaction, KECIS §15.4) and checks its controls
// against u: ErrUnknown, ErrRevoked, ErrExpired, ErrUsed, ErrMerchant,
// ErrCurrency, ErrAmount, in that order. When they pass, the use is
// counted in tx — a single-use number is spent, and stays spent only if the
// caller commits — and the real card is returned.
func (s *Service) AuthorizeTx(ctx context.Context, tx *sql.Tx, number ecml.PAN, u Use) (*Resolved, error) {
	if !s.IsVirtual(number) {
		return nil, ErrUnknown
	}
	if _, err := Parse(number); err != nil {
		return nil, ErrUnknown
	}
	numMAC := s.mac("number", number)
	var (
		r                = Resolved{Number: number}
		sealed           []byte
		uses             int
		used, revoked    time.Time
		singleUse        bool
		notOnOrAfter     time.Time
		merchant, cur    string
		maxAmount        int64
		cardRef, cardTyp string
	)
	err := tx.QueryRowContext(ctx, `SELECT real_sealed, card_ref, card_type, single_use, merchant, max_amount, currency,
	not_on_or_after, uses, used_at, revoked_at FROM vcn_number WHERE number_mac = $1`, numMAC).Scan(
		&sealed, &cardRef, &cardTyp, &singleUse, &merchant, &maxAmount, &cur,
		sqlstore.ScanTime(&notOnOrAfter), &uses, sqlstore.ScanTime(&used), sqlstore.ScanTime(&revoked))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, s.refuse(number, u, ErrUnknown)
	}
	if err != nil {
		return nil, fmt.Errorf("vcn: authorize: %w", err)
	}
	r.CardRef, r.Type = cardRef, cardTyp
	r.Controls = Controls{SingleUse: singleUse, Merchant: merchant, MaxAmount: maxAmount, Currency: cur, NotOnOrAfter: notOnOrAfter}
	now := s.now()
	switch {
	case !revoked.IsZero():
		return nil, s.refuse(number, u, ErrRevoked)
	case !now.Before(notOnOrAfter):
		return nil, s.refuse(number, u, ErrExpired)
	case singleUse && uses > 0:
		return nil, s.refuse(number, u, ErrUsed)
	case merchant != "" && u.Merchant != merchant:
		return nil, s.refuse(number, u, ErrMerchant)
	case cur != "" && u.Currency != cur:
		return nil, s.refuse(number, u, ErrCurrency)
	case maxAmount > 0 && u.Amount > maxAmount:
		return nil, s.refuse(number, u, ErrAmount)
	}
	q := `UPDATE vcn_number SET uses = uses + 1, used_at = COALESCE(used_at, $2) WHERE number_mac = $1 AND revoked_at IS NULL`
	if singleUse {
		q += ` AND uses = 0`
	}
	res, err := tx.ExecContext(ctx, q, numMAC, s.db.Dialect.Time(now))
	if err != nil {
		return nil, fmt.Errorf("vcn: authorize: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return nil, fmt.Errorf("vcn: authorize: %w", err)
	} else if n != 1 { // spent or revoked by a transaction that committed meanwhile
		return nil, s.refuse(number, u, ErrUsed)
	}
	real, err := s.sealer.Open(sealed, numMAC)
	if err != nil {
		return nil, fmt.Errorf("vcn: authorize: open the sealed card: %w", err)
	}
	r.Real = ecml.PAN(real)
	s.log.Info("vcn use accepted", "number", number, "card_ref", cardRef, "merchant", u.Merchant,
		"amount", u.Amount, "currency", u.Currency, "uses", uses+1)
	return &r, nil
}

// refuse logs a refused use and returns err.
func (s *Service) refuse(number ecml.PAN, u Use, err error) error {
	s.log.Info("vcn use refused", "number", number, "merchant", u.Merchant, "amount", u.Amount,
		"currency", u.Currency, "reason", err.Error())
	return err
}

// Revoke ends a virtual number now (KECIS §15.4): every later approval with
// it is refused (ErrRevoked). Revoking a revoked number is no error;
// ErrUnknown when there is no such number.
func (s *Service) Revoke(ctx context.Context, number ecml.PAN) error {
	if !s.IsVirtual(number) {
		return ErrUnknown
	}
	numMAC := s.mac("number", number)
	err := s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE vcn_number SET revoked_at = $2 WHERE number_mac = $1 AND revoked_at IS NULL`,
			numMAC, s.db.Dialect.Time(s.now()))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
		var one int
		err = tx.QueryRowContext(ctx, `SELECT 1 FROM vcn_number WHERE number_mac = $1`, numMAC).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrUnknown
		}
		return err
	})
	if errors.Is(err, ErrUnknown) {
		return err
	}
	if err != nil {
		return fmt.Errorf("vcn: revoke: %w", err)
	}
	s.log.Info("vcn revoked", "number", number)
	return nil
}

// RevokeCard revokes every live virtual number of the real card real (when
// the card is blocked or reissued) and returns how many it revoked. The
// card is found by its keyed hash.
func (s *Service) RevokeCard(ctx context.Context, real ecml.PAN) (int64, error) {
	var n int64
	now := s.now()
	err := s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE vcn_number SET revoked_at = $2
WHERE real_mac = $1 AND revoked_at IS NULL AND not_on_or_after > $2`, s.mac("real", real), s.db.Dialect.Time(now))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("vcn: revoke card: %w", err)
	}
	s.log.Info("vcn card's numbers revoked", "card", real, "count", n)
	return n, nil
}

// Prune deletes the numbers whose expiry has passed (their serials may be
// issued again) and the pool rows of days before today, and returns how
// many numbers it deleted. An approval with a pruned number is ErrUnknown
// rather than ErrExpired.
func (s *Service) Prune(ctx context.Context) (int64, error) {
	now := s.now()
	today := now.In(s.loc).Format(time.DateOnly)
	var n int64
	err := s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM vcn_number WHERE not_on_or_after <= $1`, s.db.Dialect.Time(now))
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM vcn_pool WHERE day < $1`, today)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("vcn: prune: %w", err)
	}
	return n, nil
}

// isCurrency reports whether c is three ASCII capitals (ISO 4217).
func isCurrency(c string) bool {
	if len(c) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if c[i] < 'A' || c[i] > 'Z' {
			return false
		}
	}
	return true
}

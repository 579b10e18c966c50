package issuer

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/internal/passwordhash"
)

// Cardholder authentication credentials (KECIS §15.7): a card's
// authentication password (안심클릭 password, distinct from the four-digit
// card password of key-in payments) and its TOTP seed (RFC 6238). The
// issuer checks them for its authentication page; it never shows them.

// Argon2Params are the argon2id parameters of new authentication password
// hashes (RFC 9106; internal/passwordhash). A hash keeps the parameters it
// was made with, so changing them affects only passwords set afterwards.
type Argon2Params = passwordhash.Params

// TOTP parameters (RFC 6238): 30-second steps, six digits, HMAC-SHA1 (what
// authenticator apps read from an otpauth URI), one step of skew either way.
const (
	totpPeriod = 30
	totpDigits = otp.DigitsSix
	totpSkew   = 1
	totpSeed   = 20 // bytes
)

// Password length bounds of the authentication password, in characters.
const (
	MinAuthPasswordLen = 6
	MaxAuthPasswordLen = 64
)

// TOTPEnrolment is a new TOTP seed, shown this once (and again only to an
// idempotent repeat of the request that made it): Seed in base32, URI the
// otpauth:// URI an authenticator app reads (as a QR code). Both print
// masked; use Reveal.
type TOTPEnrolment struct {
	Seed ecml.Secret
	URI  ecml.Secret
}

// AuthCheck is the outcome of checking a cardholder credential.
type AuthCheck struct {
	// OK: the credential is right.
	OK bool
	// Left is, after a wrong credential, how many more failures lock the
	// card's authentication (0: this failure locked it).
	Left int
	// Locked: the card's authentication was locked before this attempt,
	// which was not checked; UnlockAuth unlocks it.
	Locked bool
}

// checkAuthPassword validates a new authentication password.
func checkAuthPassword(pw string) *Error {
	n := utf8.RuneCountInString(pw)
	if !utf8.ValidString(pw) || n < MinAuthPasswordLen || n > MaxAuthPasswordLen || strings.ContainsFunc(pw, unicode.IsControl) {
		return invalid(fmt.Sprintf("authentication password must be %d to %d characters, no control characters",
			MinAuthPasswordLen, MaxAuthPasswordLen))
	}
	return nil
}

// hashAuthPassword is the PHC string of argon2id over the password keyed
// with the pepper (internal/passwordhash).
func (i *Issuer) hashAuthPassword(ctx context.Context, pw string) (string, error) {
	return i.passwords.Hash(ctx, pw)
}

// verifyAuthPassword checks pw against a PHC string made by
// hashAuthPassword.
func (i *Issuer) verifyAuthPassword(ctx context.Context, phc, pw string) (bool, error) {
	ok, err := i.passwords.Verify(ctx, phc, pw)
	if errors.Is(err, passwordhash.ErrMalformed) {
		return false, errors.New("issuer: stored authentication password hash is malformed")
	}
	return ok, err
}

// newTOTPSeed draws a TOTP seed.
func (i *Issuer) newTOTPSeed() ([]byte, error) { return randomBytes(i.rand, totpSeed) }

// totpEnrolment is the seed as an authenticator app reads it; the account
// is the masked card number.
func (i *Issuer) totpEnrolment(seed []byte, masked string) (*TOTPEnrolment, error) {
	k, err := totp.Generate(totp.GenerateOpts{Issuer: i.brand, AccountName: masked, Period: totpPeriod,
		Secret: seed, Digits: totpDigits, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return nil, fmt.Errorf("issuer: totp: %w", err)
	}
	return &TOTPEnrolment{Seed: ecml.Secret(k.Secret()), URI: ecml.Secret(k.URL())}, nil
}

func totpAD(cardID string) []byte { return []byte("totp:" + cardID) }

// totpSeed opens a card's TOTP seed, nil when it has none.
func (i *Issuer) totpSeed(ctx context.Context, cardID string) ([]byte, error) {
	var enc []byte
	if err := i.db.QueryRowContext(ctx, `SELECT totp_seed_enc FROM issuer_cards WHERE id = $1`, cardID).Scan(&enc); err != nil {
		return nil, fmt.Errorf("issuer: read card: %w", err)
	}
	if enc == nil {
		return nil, nil
	}
	return i.vault.Open(enc, totpAD(cardID))
}

// authCard is what a credential check reads of a card.
type authCard struct {
	status  CardStatus
	pwHash  string
	seedEnc []byte
	last4   string
}

func (i *Issuer) authCard(ctx context.Context, cardID string) (*authCard, error) {
	var c authCard
	var status string
	err := i.db.QueryRowContext(ctx, `SELECT status, auth_pw_hash, totp_seed_enc, last4 FROM issuer_cards WHERE id = $1`,
		cardID).Scan(&status, &c.pwHash, &c.seedEnc, &c.last4)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, newError(CodeNotFound, "no such card")
	}
	if err != nil {
		return nil, fmt.Errorf("issuer: read card: %w", err)
	}
	c.status = CardStatus(status)
	if c.status != CardActive {
		return nil, newError(CodeDeclined, "card "+string(c.status))
	}
	return &c, nil
}

// Failure counters of the two factors. Their sum is the one count that
// locks; a success clears its own factor's only, so that knowing one
// factor never buys more guesses at the other.
const (
	pwFailures   = "auth_pw_failures"
	totpFailures = "auth_totp_failures"
)

// reserveAttempt counts an attempt as a failure before it is checked, so
// that no number of concurrent attempts gets past the lock; a success
// clears it. It returns the attempts left, or locked when the card's
// authentication is locked already.
func (i *Issuer) reserveAttempt(ctx context.Context, cardID, counter string) (left int, locked bool, err error) {
	now := i.authNow()
	err = i.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var sum int
		err := tx.QueryRowContext(ctx, `UPDATE issuer_cards SET `+counter+` = `+counter+` + 1,
			auth_locked = (auth_pw_failures + auth_totp_failures + 1 >= $1), updated_at = $2
			WHERE id = $3 AND NOT auth_locked RETURNING auth_pw_failures + auth_totp_failures`,
			i.maxAuthFail, i.t(now), cardID).Scan(&sum)
		if errors.Is(err, sql.ErrNoRows) {
			locked = true
			return nil
		}
		if err != nil {
			return fmt.Errorf("issuer: count authentication attempt: %w", err)
		}
		left, locked = max(i.maxAuthFail-sum, 0), false
		return nil
	})
	return left, locked, err
}

// clearFailures clears a factor's failures after a success; the lock
// stays if the other factor's failures alone reach the limit. A TOTP
// success (step ≥ 0) also records its step, only if it is later than the
// last one accepted; it reports whether the row was updated.
func (i *Issuer) clearFailures(ctx context.Context, cardID, counter, other string, step int64) (bool, error) {
	now := i.authNow()
	q := `UPDATE issuer_cards SET ` + counter + ` = 0, auth_locked = (` + other + ` >= $1), updated_at = $2`
	args := []any{i.maxAuthFail, i.t(now), cardID}
	if step >= 0 {
		q += `, totp_last_step = $4 WHERE id = $3 AND totp_last_step < $4`
		args = append(args, step)
	} else {
		q += ` WHERE id = $3`
	}
	var n int64
	err := i.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("issuer: clear authentication failures: %w", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return n == 1, err
}

// CheckAuthPassword checks a card's authentication password (KECIS
// §15.7.2). A wrong one counts towards the lock that Config.MaxAuthFailures
// failures of the password and the TOTP code together set; a right one
// clears the password's failures. Errors: NOT_FOUND (no such card),
// DECLINED (the card is not active), NOT_ENROLLED (it has no
// authentication password).
func (i *Issuer) CheckAuthPassword(ctx context.Context, cardID string, pw ecml.Secret) (*AuthCheck, error) {
	c, err := i.authCard(ctx, cardID)
	if err != nil {
		return nil, err
	}
	if c.pwHash == "" {
		return nil, newError(CodeNotEnrolled, "the card has no authentication password")
	}
	left, locked, err := i.reserveAttempt(ctx, cardID, pwFailures)
	if err != nil || locked {
		return &AuthCheck{Locked: locked}, err
	}
	ok, err := i.verifyAuthPassword(ctx, c.pwHash, pw.Reveal())
	if err != nil {
		return nil, err
	}
	if !ok {
		i.authFailed(ctx, cardID, c.last4, "password", left)
		return &AuthCheck{Left: left}, nil
	}
	if _, err := i.clearFailures(ctx, cardID, pwFailures, totpFailures, -1); err != nil {
		return nil, err
	}
	return &AuthCheck{OK: true}, nil
}

// CheckTOTP checks an RFC 6238 code of the card's TOTP seed (30-second
// steps of Config.AuthNow, six digits, one step of skew either way). A code of a step at or
// before the last one accepted is refused — a code is good once — and
// counts as a failure, as a wrong code does, towards the lock shared with
// the password; a right one clears the TOTP failures. A code that is not
// six digits is INVALID_REQUEST and not counted. Errors as
// CheckAuthPassword's; NOT_ENROLLED when the card has no seed.
func (i *Issuer) CheckTOTP(ctx context.Context, cardID string, code ecml.Secret) (*AuthCheck, error) {
	cs := code.Reveal()
	if len(cs) != totpDigits.Length() || !ecml.AllDigits(cs) {
		return nil, invalid("a TOTP code is six digits")
	}
	c, err := i.authCard(ctx, cardID)
	if err != nil {
		return nil, err
	}
	if c.seedEnc == nil {
		return nil, newError(CodeNotEnrolled, "the card has no TOTP seed")
	}
	seed, err := i.vault.Open(c.seedEnc, totpAD(cardID))
	if err != nil {
		return nil, err
	}
	left, locked, err := i.reserveAttempt(ctx, cardID, totpFailures)
	if err != nil || locked {
		return &AuthCheck{Locked: locked}, err
	}
	secret := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(seed)
	now := i.authNow().Unix() / totpPeriod
	matched := int64(-1)
	for d := int64(-totpSkew); d <= totpSkew; d++ {
		want, err := hotp.GenerateCodeCustom(secret, uint64(now+d), hotp.ValidateOpts{Digits: totpDigits, Algorithm: otp.AlgorithmSHA1})
		if err != nil {
			return nil, fmt.Errorf("issuer: totp: %w", err)
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(cs)) == 1 {
			matched = now + d
		}
	}
	if matched < 0 {
		i.authFailed(ctx, cardID, c.last4, "totp", left)
		return &AuthCheck{Left: left}, nil
	}
	fresh, err := i.clearFailures(ctx, cardID, totpFailures, pwFailures, matched)
	if err != nil {
		return nil, err
	}
	if !fresh {
		i.log.WarnContext(ctx, "cardholder authentication: TOTP code of a step already used", "card", cardID, "last4", c.last4, "left", left)
		return &AuthCheck{Left: left}, nil
	}
	return &AuthCheck{OK: true}, nil
}

func (i *Issuer) authFailed(ctx context.Context, cardID, last4, factor string, left int) {
	i.log.WarnContext(ctx, "cardholder authentication failed", "card", cardID, "last4", last4, "factor", factor, "left", left)
	if left == 0 {
		i.log.WarnContext(ctx, "cardholder authentication locked after repeated failures", "card", cardID, "last4", last4)
	}
}

// UnlockAuth clears a card's authentication failures and lock (an
// administrative operation; also on the admin page). Unlocking an unlocked
// card changes nothing.
func (i *Issuer) UnlockAuth(ctx context.Context, cardID string) (*Card, error) {
	now := i.authNow()
	var n int64
	err := i.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE issuer_cards SET auth_pw_failures = 0, auth_totp_failures = 0,
			auth_locked = $1, updated_at = $2 WHERE id = $3`, false, i.t(now), cardID)
		if err != nil {
			return fmt.Errorf("issuer: unlock authentication: %w", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, newError(CodeNotFound, "no such card")
	}
	i.log.InfoContext(ctx, "cardholder authentication unlocked", "card", cardID)
	return i.Card(ctx, cardID)
}

// MaxAuthFailures is the number of failures that lock a card's
// cardholder authentication (Config.MaxAuthFailures).
func (i *Issuer) MaxAuthFailures() int { return i.maxAuthFail }

// CardNumber returns the number of an active card, for the issuer's own
// authentication page (which puts it, encrypted for the acquirer, in its
// answer; KECIS §15.7). Errors: NOT_FOUND, DECLINED (not active).
func (i *Issuer) CardNumber(ctx context.Context, cardID string) (ecml.PAN, error) {
	c, sealed, err := i.cardWithSealed(ctx, cardID)
	if err != nil {
		return "", err
	}
	if c.Status != CardActive {
		return "", newError(CodeDeclined, "card "+string(c.Status))
	}
	pan, err := i.vault.openPAN(c.ID, sealed)
	return ecml.PAN(pan), err
}

package issuer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/kecis/kecis/connectors/sqlstore"
	"github.com/kecis/kecis/ecml"
)

const cardColumns = `id, card_type, status, bin, last4, exp_month, exp_year, holder_name, holder_phone,
	currency, credit_limit, available, failed_attempts, response_delay_ms, created_at,
	auth_pw_hash <> '', totp_seed_enc IS NOT NULL, auth_pw_failures + auth_totp_failures, auth_locked`

func scanCard(row interface{ Scan(...any) error }, c *Card, extra ...any) error {
	var typ, status string
	var delayMS int64
	dst := append([]any{&c.ID, &typ, &status, &c.BIN, &c.Last4, &c.ExpMonth, &c.ExpYear,
		&c.HolderName, &c.HolderPhone, &c.Currency, &c.Limit, &c.Available, &c.FailedAttempts, &delayMS,
		sqlstore.ScanTime(&c.CreatedAt), &c.AuthPassword, &c.TOTP, &c.AuthFailures, &c.AuthLocked}, extra...)
	if err := row.Scan(dst...); err != nil {
		return err
	}
	c.Type, c.Status = CardType(typ), CardStatus(status)
	c.ResponseDelay = time.Duration(delayMS) * time.Millisecond
	return nil
}

// MaxResponseDelay bounds SetCardResponseDelay.
const MaxResponseDelay = 2 * time.Minute

// SetCardResponseDelay makes the issuer's host slow for a card: an
// approval on it is decided only after d (0: at once), and is decided
// then even if the caller has hung up — as a real host carries on with a
// request its client gave up on. It simulates the issuer timeout a caller
// must resolve by inquiry (the demo's timeout test card). Setting the
// current delay again changes nothing.
func (i *Issuer) SetCardResponseDelay(ctx context.Context, id string, d time.Duration) (*Card, error) {
	if d < 0 || d > MaxResponseDelay {
		return nil, invalid("response delay must be 0 to " + MaxResponseDelay.String())
	}
	now := i.now()
	var n int64
	err := i.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE issuer_cards SET response_delay_ms = $1, updated_at = $2 WHERE id = $3`,
			d.Milliseconds(), i.t(now), id)
		if err != nil {
			return fmt.Errorf("issuer: set response delay: %w", err)
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
	i.log.InfoContext(ctx, "card response delay set", "card", id, "delay", d)
	return i.Card(ctx, id)
}

// responseDelay is how long the host takes to decide on the card with
// number pan (0 for an unknown card).
func (i *Issuer) responseDelay(ctx context.Context, pan string) time.Duration {
	var ms int64
	if err := i.db.QueryRowContext(ctx, `SELECT response_delay_ms FROM issuer_cards WHERE pan_hash = $1`,
		i.vault.panHash(pan)).Scan(&ms); err != nil {
		return 0
	}
	return time.Duration(ms) * time.Millisecond
}

// IssueCard issues a new card with a fresh Luhn-valid number under the
// BIN of its type and returns it with its number, which is shown this once
// (and again only to an idempotent repeat of the same request). The number
// is stored encrypted, the birth date and the password's two leading
// digits as keyed salted hashes; the rest of the password is discarded.
// An authentication password given is kept as an argon2id hash; a TOTP
// seed asked for is stored sealed like the number and returned likewise.
func (i *Issuer) IssueCard(ctx context.Context, req IssueCardRequest) (*IssuedCard, error) {
	if e := checkKey(req.IdempotencyKey); e != nil {
		return nil, e
	}
	if !req.Type.valid() {
		return nil, invalid("card type must be credit, check or prepaid")
	}
	if e := checkText("holder name", req.HolderName, 64, true); e != nil {
		return nil, e
	}
	phone, ok := normalizePhone(req.HolderPhone)
	if !ok {
		return nil, invalid("holder phone must be a Korean mobile number such as 010-1234-5678")
	}
	birth, password := req.BirthDate.Reveal(), req.Password.Reveal()
	if !validYYMMDD(birth) {
		return nil, invalid("birth date must be a date written YYMMDD")
	}
	if len(password) != 4 || !ecml.AllDigits(password) {
		return nil, invalid("card password must be four digits")
	}
	cur := req.Currency
	if cur == "" {
		cur = "KRW"
	}
	if _, ok := ecml.MinorUnits(cur); !ok {
		return nil, invalid("unknown currency " + strconv.Quote(cur))
	}
	if req.Limit < 0 {
		return nil, invalid("limit must not be negative")
	}
	authPW := req.AuthPassword.Reveal()
	if authPW != "" {
		if e := checkAuthPassword(authPW); e != nil {
			return nil, e
		}
	}
	now := i.now()
	expM, expY := req.ExpMonth, req.ExpYear
	if expM == 0 && expY == 0 {
		l := now.In(i.loc)
		expM, expY = int(l.Month()), l.Year()+i.validity
	}
	expY = normYear(expY)
	if expM < 1 || expM > 12 || expY < 2000 || expY > 2099 {
		return nil, invalid("expiry must be a month 1–12 and a year 2000–2099")
	}

	fp := i.vault.fingerprint(opIssueCard, string(req.Type), req.HolderName, phone, birth, password,
		strconv.FormatInt(req.Limit, 10), cur, strconv.Itoa(expM), strconv.Itoa(expY), authPW, strconv.FormatBool(req.EnrolTOTP))
	var pwHash string
	if authPW != "" {
		// Hashed before the transaction, which it would hold for the
		// hash's time; a replay discards it.
		var err error
		if pwHash, err = i.hashAuthPassword(ctx, authPW); err != nil {
			return nil, err
		}
	}
	var pan string
	var seed []byte
	out, err := i.idempotent(ctx, adminScope, req.IdempotencyKey, opIssueCard, fp, now,
		func(ctx context.Context, tx *sql.Tx) (string, *Error, error) {
			id, err := newID(i.rand, "card")
			if err != nil {
				return "", nil, err
			}
			pan, err = i.newPAN(ctx, tx, i.bins[req.Type])
			if err != nil {
				return "", nil, err
			}
			sealed, err := i.vault.sealPAN(id, pan)
			if err != nil {
				return "", nil, err
			}
			salt, err := randomBytes(i.rand, 16)
			if err != nil {
				return "", nil, err
			}
			var seedEnc []byte
			seed = nil
			if req.EnrolTOTP {
				if seed, err = i.newTOTPSeed(); err != nil {
					return "", nil, err
				}
				if seedEnc, err = i.vault.Seal(seed, totpAD(id)); err != nil {
					return "", nil, err
				}
			}
			_, err = tx.ExecContext(ctx, `INSERT INTO issuer_cards (id, pan_hash, pan_enc, bin, last4,
				exp_month, exp_year, card_type, status, holder_name, holder_phone, secret_salt, birth_hash,
				pw2_hash, currency, credit_limit, available, failed_attempts, created_at, updated_at,
				auth_pw_hash, totp_seed_enc)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, 0, $18, $19, $20, $21)`,
				id, i.vault.panHash(pan), sealed, ecml.PAN(pan).BIN(), ecml.PAN(pan).Last4(), expM, expY, string(req.Type),
				string(CardActive), req.HolderName, phone, salt,
				i.vault.secretHash("birth", salt, birth), i.vault.secretHash("pw2", salt, password[:2]),
				cur, req.Limit, req.Limit, i.t(now), i.t(now), pwHash, seedEnc)
			if err != nil {
				return "", nil, fmt.Errorf("issuer: insert card: %w", err)
			}
			return id, nil, nil
		})
	if err != nil {
		return nil, err
	}
	if out.err != nil {
		return nil, out.err
	}
	c, sealed, err := i.cardWithSealed(ctx, out.ref)
	if err != nil {
		return nil, err
	}
	if out.replayed {
		if pan, err = i.vault.openPAN(c.ID, sealed); err != nil {
			return nil, err
		}
		if seed, err = i.totpSeed(ctx, c.ID); err != nil {
			return nil, err
		}
	} else {
		i.log.InfoContext(ctx, "card issued", "card", c.ID, "type", c.Type, "masked", c.Masked(),
			"currency", c.Currency, "limit", c.Limit, "auth_password", c.AuthPassword, "totp", c.TOTP)
	}
	ic := &IssuedCard{Card: *c, PAN: ecml.PAN(pan), Replayed: out.replayed}
	if seed != nil {
		if ic.TOTPEnrolment, err = i.totpEnrolment(seed, c.Masked()); err != nil {
			return nil, err
		}
	}
	return ic, nil
}

// newPAN draws a 16-digit Luhn-valid card number under bin that no card
// has yet.
func (i *Issuer) newPAN(ctx context.Context, tx *sql.Tx, bin string) (string, error) {
	for range 20 {
		body, err := randomDigits(i.rand, 9)
		if err != nil {
			return "", err
		}
		d, ok := ecml.LuhnCheckDigit(bin + body)
		if !ok {
			return "", errors.New("issuer: Luhn check digit")
		}
		pan := bin + body + string(d)
		var one int
		err = tx.QueryRowContext(ctx, `SELECT 1 FROM issuer_cards WHERE pan_hash = $1`, i.vault.panHash(pan)).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return pan, nil
		}
		if err != nil {
			return "", fmt.Errorf("issuer: check card number: %w", err)
		}
	}
	return "", fmt.Errorf("issuer: BIN %s has no free card number left", bin)
}

func (i *Issuer) cardWithSealed(ctx context.Context, id string) (*Card, []byte, error) {
	var c Card
	var sealed []byte
	err := scanCard(i.db.QueryRowContext(ctx, `SELECT `+cardColumns+`, pan_enc FROM issuer_cards WHERE id = $1`, id), &c, &sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, newError(CodeNotFound, "no such card")
	}
	if err != nil {
		return nil, nil, fmt.Errorf("issuer: read card: %w", err)
	}
	return &c, sealed, nil
}

// Card returns the card with the given ID (NOT_FOUND if none).
func (i *Issuer) Card(ctx context.Context, id string) (*Card, error) {
	c, _, err := i.cardWithSealed(ctx, id)
	return c, err
}

// FindCard returns the card with the given number (NOT_FOUND if none),
// found by the number's keyed hash.
func (i *Issuer) FindCard(ctx context.Context, pan ecml.PAN) (*Card, error) {
	var c Card
	err := scanCard(i.db.QueryRowContext(ctx, `SELECT `+cardColumns+` FROM issuer_cards WHERE pan_hash = $1`,
		i.vault.panHash(pan.Reveal())), &c)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, newError(CodeNotFound, "no such card")
	}
	if err != nil {
		return nil, fmt.Errorf("issuer: read card: %w", err)
	}
	return &c, nil
}

// Cards lists the cards, newest first, at most limit (100 if limit ≤ 0).
func (i *Issuer) Cards(ctx context.Context, limit int) ([]Card, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := i.db.QueryContext(ctx, `SELECT `+cardColumns+` FROM issuer_cards
		ORDER BY created_at DESC, id LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("issuer: list cards: %w", err)
	}
	defer rows.Close()
	var out []Card
	for rows.Next() {
		var c Card
		if err := scanCard(rows, &c); err != nil {
			return nil, fmt.Errorf("issuer: list cards: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("issuer: list cards: %w", err)
	}
	return out, nil
}

// SetCardStatus blocks a card, reports it lost, or reactivates it; a
// reactivation also clears the count of wrong key-in attempts. A card
// reported lost also loses its virtual numbers and client certificates
// (revoked: a reactivation does not bring them back); a blocked card
// keeps them, useless while it is blocked. Setting the current status
// again changes nothing.
func (i *Issuer) SetCardStatus(ctx context.Context, id string, status CardStatus) (*Card, error) {
	if !status.valid() {
		return nil, invalid("status must be active, blocked or lost")
	}
	now := i.now()
	var n int64
	err := i.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE issuer_cards SET status = $1,
			failed_attempts = CASE WHEN $2 = 'active' THEN 0 ELSE failed_attempts END, updated_at = $3
			WHERE id = $4`, string(status), string(status), i.t(now), id)
		if err != nil {
			return fmt.Errorf("issuer: set card status: %w", err)
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
	i.log.InfoContext(ctx, "card status set", "card", id, "status", status)
	if status == CardLost {
		if err := i.revokeCardCredentials(ctx, id, i.authNow()); err != nil {
			return nil, err
		}
	}
	return i.Card(ctx, id)
}

// revokeCardCredentials revokes a lost card's virtual numbers and client
// certificates; now is the authentication clock's (the CRL's time).
func (i *Issuer) revokeCardCredentials(ctx context.Context, id string, now time.Time) error {
	var certs int64
	err := i.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE issuer_client_certs SET revoked_at = $1
			WHERE card_id = $2 AND revoked_at IS NULL`, i.t(now), id)
		if err != nil {
			return fmt.Errorf("issuer: revoke a lost card's certificates: %w", err)
		}
		certs, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return err
	}
	if certs > 0 && i.ca != nil {
		i.ca.mu.Lock()
		i.ca.crl = nil
		i.ca.mu.Unlock()
	}
	var virtual int64
	if i.vcn != nil {
		_, sealed, err := i.cardWithSealed(ctx, id)
		if err != nil {
			return err
		}
		pan, err := i.vault.openPAN(id, sealed)
		if err != nil {
			return err
		}
		if virtual, err = i.vcn.RevokeCard(ctx, ecml.PAN(pan)); err != nil {
			return fmt.Errorf("issuer: %w", err)
		}
	}
	i.log.InfoContext(ctx, "lost card's credentials revoked", "card", id, "certificates", certs, "virtual_numbers", virtual)
	return nil
}

// cardForApproval is what Approve needs of a card, the secret hashes
// included.
type cardForApproval struct {
	Card
	salt, birthHash, pw2Hash []byte
}

func (i *Issuer) cardByPANHash(ctx context.Context, tx *sql.Tx, h []byte) (*cardForApproval, error) {
	var c cardForApproval
	err := scanCard(tx.QueryRowContext(ctx, `SELECT `+cardColumns+`, secret_salt, birth_hash, pw2_hash
		FROM issuer_cards WHERE pan_hash = $1`+i.forUpdate(""), h), &c.Card, &c.salt, &c.birthHash, &c.pw2Hash)
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// keyInFailed counts a wrong key-in attempt and blocks the card at the
// limit; it reports whether the card is now blocked.
func (i *Issuer) keyInFailed(ctx context.Context, tx *sql.Tx, cardID string, now time.Time) (attempts int, blocked bool, err error) {
	if _, err := tx.ExecContext(ctx, `UPDATE issuer_cards SET failed_attempts = failed_attempts + 1,
		status = CASE WHEN failed_attempts + 1 >= $1 THEN 'blocked' ELSE status END, updated_at = $2
		WHERE id = $3`, i.maxFail, i.t(now), cardID); err != nil {
		return 0, false, fmt.Errorf("issuer: count key-in failure: %w", err)
	}
	var status string
	if err := tx.QueryRowContext(ctx, `SELECT failed_attempts, status FROM issuer_cards WHERE id = $1`, cardID).
		Scan(&attempts, &status); err != nil {
		return 0, false, fmt.Errorf("issuer: count key-in failure: %w", err)
	}
	return attempts, CardStatus(status) == CardBlocked, nil
}

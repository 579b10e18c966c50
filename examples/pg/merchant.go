package pg

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kecis/kecis/connectors/sqlstore"
)

// CreateMerchant opens an ACTIVE merchant account with its contract and
// returns it with its API key, which the PG shows this once (it keeps only
// the key's hash). An empty MID assigns the next "M000001"; a chosen MID
// (4–20 upper-case letters and digits, e.g. the account a KECIS sidecar
// uses for the federation's merchants) that is already in use is
// CodeInvalidRequest.
func (p *PG) CreateMerchant(ctx context.Context, req NewMerchant) (*CreatedMerchant, error) {
	if req.MID != "" {
		if e := checkMID(req.MID); e != nil {
			return nil, e
		}
	}
	if e := checkText("name", req.Name, 100, true); e != nil {
		return nil, e
	}
	if e := checkContract(req.Contract); e != nil {
		return nil, e
	}
	key, err := newAPIKey(p.rand)
	if err != nil {
		return nil, err
	}
	now := p.now()
	mid := req.MID
	err = p.db.WriteTx(ctx, func(tx *sql.Tx) error {
		if req.MID == "" {
			n, err := p.next(ctx, tx, "mid", "")
			if err != nil {
				return err
			}
			mid = fmt.Sprintf("M%06d", n)
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO pgw_merchants (mid, name, status, api_key_hash, api_key_hint,
			created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (mid) DO NOTHING`,
			mid, req.Name, string(MerchantActive), apiKeyHash(key), key[len(key)-4:], p.t(now))
		if err != nil {
			return fmt.Errorf("pg: insert merchant: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("pg: insert merchant: %w", err)
		} else if n == 0 {
			return invalid("merchant " + mid + " already exists")
		}
		return p.putContract(ctx, tx, mid, req.Contract, now)
	})
	if err != nil {
		return nil, err
	}
	m, err := p.Merchant(ctx, mid)
	if err != nil {
		return nil, err
	}
	p.log.InfoContext(ctx, "merchant created", "mid", mid, "name", req.Name, "fee_bps", req.Contract.FeeBPS,
		"max_amount", req.Contract.MaxAmount, "daily_limit", req.Contract.DailyLimit,
		"bins", strings.Join(req.Contract.BINPrefixes, ","))
	return &CreatedMerchant{Merchant: *m, APIKey: key}, nil
}

func (p *PG) putContract(ctx context.Context, tx *sql.Tx, mid string, c Contract, now time.Time) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO pgw_contracts (mid, bin_prefixes, fee_bps, max_amount, daily_limit, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (mid) DO UPDATE SET bin_prefixes = $2, fee_bps = $3,
		max_amount = $4, daily_limit = $5, updated_at = $6`,
		mid, strings.Join(c.BINPrefixes, ","), c.FeeBPS, c.MaxAmount, c.DailyLimit, p.t(now)); err != nil {
		return fmt.Errorf("pg: store contract: %w", err)
	}
	return nil
}

// UpdateContract replaces a merchant's contract; it applies to payments
// from now on (a transaction keeps the fee rate it was approved with).
func (p *PG) UpdateContract(ctx context.Context, mid string, c Contract) (*Merchant, error) {
	if e := checkContract(c); e != nil {
		return nil, e
	}
	err := p.db.WriteTx(ctx, func(tx *sql.Tx) error {
		if _, err := p.merchant(ctx, tx, mid); err != nil {
			return err
		}
		return p.putContract(ctx, tx, mid, c, p.now())
	})
	if err != nil {
		return nil, err
	}
	p.log.InfoContext(ctx, "contract updated", "mid", mid, "fee_bps", c.FeeBPS, "max_amount", c.MaxAmount,
		"daily_limit", c.DailyLimit, "bins", strings.Join(c.BINPrefixes, ","))
	return p.Merchant(ctx, mid)
}

// SetMerchantStatus suspends, terminates or reactivates a merchant.
func (p *PG) SetMerchantStatus(ctx context.Context, mid string, s MerchantStatus) (*Merchant, error) {
	switch s {
	case MerchantActive, MerchantSuspended, MerchantTerminated:
	default:
		return nil, invalid("status must be ACTIVE, SUSPENDED or TERMINATED")
	}
	res, err := p.db.ExecContext(ctx, `UPDATE pgw_merchants SET status = $1, updated_at = $2 WHERE mid = $3`,
		string(s), p.t(p.now()), mid)
	if err != nil {
		return nil, fmt.Errorf("pg: update merchant: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return nil, fmt.Errorf("pg: update merchant: %w", err)
	} else if n == 0 {
		return nil, newError(CodeNotFound, "no such merchant")
	}
	p.log.InfoContext(ctx, "merchant status changed", "mid", mid, "status", s)
	return p.Merchant(ctx, mid)
}

// Merchant returns a merchant and its contract.
func (p *PG) Merchant(ctx context.Context, mid string) (*Merchant, error) {
	return p.merchant(ctx, p.db, mid)
}

const merchantColumns = `m.mid, m.name, m.status, m.api_key_hint, m.created_at, m.updated_at,
	c.bin_prefixes, c.fee_bps, c.max_amount, c.daily_limit`

func (p *PG) merchant(ctx context.Context, q sqlstore.Queryer, mid string) (*Merchant, error) {
	m, err := scanMerchant(q.QueryRowContext(ctx, `SELECT `+merchantColumns+`
		FROM pgw_merchants m JOIN pgw_contracts c ON c.mid = m.mid WHERE m.mid = $1`, mid))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, newError(CodeNotFound, "no such merchant")
	}
	return m, err
}

// Merchants lists every merchant, by MID.
func (p *PG) Merchants(ctx context.Context) ([]Merchant, error) {
	rows, err := p.db.QueryContext(ctx, `SELECT `+merchantColumns+`
		FROM pgw_merchants m JOIN pgw_contracts c ON c.mid = m.mid ORDER BY m.mid`)
	if err != nil {
		return nil, fmt.Errorf("pg: list merchants: %w", err)
	}
	defer rows.Close()
	var out []Merchant
	for rows.Next() {
		m, err := scanMerchant(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pg: list merchants: %w", err)
	}
	return out, nil
}

type scanner interface{ Scan(dest ...any) error }

func scanMerchant(s scanner) (*Merchant, error) {
	var m Merchant
	var status, bins string
	if err := s.Scan(&m.MID, &m.Name, &status, &m.APIKeyHint, sqlstore.ScanTime(&m.CreatedAt),
		sqlstore.ScanTime(&m.UpdatedAt), &bins, &m.Contract.FeeBPS, &m.Contract.MaxAmount,
		&m.Contract.DailyLimit); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, err
		}
		return nil, fmt.Errorf("pg: read merchant: %w", err)
	}
	m.Status = MerchantStatus(status)
	if bins != "" {
		m.Contract.BINPrefixes = strings.Split(bins, ",")
	}
	return &m, nil
}

// Authenticate returns the merchant an API key belongs to. Unknown keys
// are CodeUnauthorized; the key of a merchant that is not active is
// accepted here (a suspended merchant may still cancel and inquire) and
// each operation checks the status it needs.
func (p *PG) Authenticate(ctx context.Context, apiKey string) (*Merchant, error) {
	if apiKey == "" {
		return nil, newError(CodeUnauthorized, "the X-PG-Key header is required")
	}
	var mid string
	err := p.db.QueryRowContext(ctx, `SELECT mid FROM pgw_merchants WHERE api_key_hash = $1`, apiKeyHash(apiKey)).Scan(&mid)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, newError(CodeUnauthorized, "unknown API key")
	}
	if err != nil {
		return nil, fmt.Errorf("pg: authenticate: %w", err)
	}
	return p.Merchant(ctx, mid)
}

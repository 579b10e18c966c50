package issuer

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Settle is the settlement job: every approval whose cut-off is at or
// before now and that no batch holds yet (cancelled ones aside) joins a
// new settlement batch, and those still "approved" become "settled" (at
// their cut-off instant). It returns what it settled; running it again
// settles nothing twice. Approvals past their cut-off already behave as
// settled before the job runs (no cancel, refunds allowed).
func (i *Issuer) Settle(ctx context.Context, now time.Time) (*Settlement, error) {
	s := &Settlement{RunAt: now.UTC()}
	err := i.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		s.BatchID, s.Count, s.Totals = "", 0, map[string]int64{}
		id, err := newID(i.rand, "stl")
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO issuer_settlement_batches (id, run_at, approval_count)
			VALUES ($1, $2, 0)`, id, i.t(now)); err != nil {
			return fmt.Errorf("issuer: settle: %w", err)
		}
		res, err := tx.ExecContext(ctx, `UPDATE issuer_approvals SET batch_id = $1,
			status = CASE WHEN status = 'approved' THEN 'settled' ELSE status END,
			settled_at = COALESCE(settled_at, cutoff_at)
			WHERE batch_id IS NULL AND status <> 'cancelled' AND cutoff_at <= $2`, id, i.t(now))
		if err != nil {
			return fmt.Errorf("issuer: settle: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("issuer: settle: %w", err)
		}
		if n == 0 {
			_, err := tx.ExecContext(ctx, `DELETE FROM issuer_settlement_batches WHERE id = $1`, id)
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE issuer_settlement_batches SET approval_count = $1 WHERE id = $2`,
			n, id); err != nil {
			return fmt.Errorf("issuer: settle: %w", err)
		}
		rows, err := tx.QueryContext(ctx, `SELECT currency, CAST(SUM(amount) AS BIGINT) FROM issuer_approvals
			WHERE batch_id = $1 GROUP BY currency`, id)
		if err != nil {
			return fmt.Errorf("issuer: settle: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var cur string
			var sum int64
			if err := rows.Scan(&cur, &sum); err != nil {
				return fmt.Errorf("issuer: settle: %w", err)
			}
			s.Totals[cur] = sum
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("issuer: settle: %w", err)
		}
		s.BatchID, s.Count = id, int(n)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if s.Count > 0 {
		i.log.InfoContext(ctx, "settlement batch", "batch", s.BatchID, "approvals", s.Count, "totals", s.Totals)
	}
	return s, nil
}

// Run settles, delivers pending SMS and prunes expired authentication
// values and virtual numbers (Prune) every interval until ctx ends, for a process that hosts the issuer; it
// returns ctx's error.
func (i *Issuer) Run(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		interval = time.Minute
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			if _, err := i.Settle(ctx, i.now()); err != nil && ctx.Err() == nil {
				i.log.ErrorContext(ctx, "settlement failed", "err", err)
			}
			if _, err := i.DeliverNotifications(ctx); err != nil && ctx.Err() == nil {
				i.log.ErrorContext(ctx, "sms delivery run failed", "err", err)
			}
			if _, err := i.Prune(ctx); err != nil && ctx.Err() == nil {
				i.log.ErrorContext(ctx, "pruning failed", "err", err)
			}
		}
	}
}

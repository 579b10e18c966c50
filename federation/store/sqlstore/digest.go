package sqlstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"strings"

	sqldb "github.com/kecis/kecis/connectors/sqlstore"
)

// replayDigest is the key of a replay record (migration 0005, KECIS §7.2,
// §12.3): SHA-256 over the issuer, a NUL and the message ID, so that a
// record costs 32 bytes of key whatever the length of the issuer's
// entityID and of the ID, in the table and in its indexes. Neither part
// holds a NUL (checkReplay refuses one; PostgreSQL's text cannot), so two
// different pairs never make the same input; PostgreSQL computes the same
// digest in SQL as sha256(convert_to(issuer, 'UTF8') || '\x00'::bytea ||
// convert_to(message_id, 'UTF8')) (migrations/postgres/0005).
func replayDigest(issuer, id string) []byte {
	h := sha256.New()
	h.Write([]byte(issuer))
	h.Write([]byte{0})
	h.Write([]byte(id))
	return h.Sum(nil)
}

// hasNUL reports whether s holds a NUL, which no key part may.
func hasNUL(s string) bool { return strings.IndexByte(s, 0) >= 0 }

// convertLegacyReplay finishes SQLite's migration 0005: the replay records
// it set aside in hub_replay_v4 (issuer and message ID in clear; SQLite has
// no SHA-256 in SQL) are rewritten keyed by their digest, in one write
// transaction, and the old table dropped. Migrate runs it after every
// migration, before the store is used: until it has run, a message
// remembered before the upgrade would not be found. It does nothing once
// the old table is gone, so a restart or a second process finds nothing
// to do; a crash before its commit leaves the old table whole for the next
// start.
func convertLegacyReplay(ctx context.Context, db *sqldb.DB) error {
	if db.Dialect != sqldb.SQLite {
		return nil // PostgreSQL's migration converts the rows itself
	}
	return db.WriteTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx,
			`SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table' AND name = 'hub_replay_v4'`).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		type row struct {
			issuer, id string
			expires    int64
		}
		var rows []row
		err := queryEach(ctx, tx, `SELECT issuer, message_id, expires FROM hub_replay_v4`, nil, func(r *sql.Rows) error {
			var x row
			if err := r.Scan(&x.issuer, &x.id, &x.expires); err != nil {
				return err
			}
			rows = append(rows, x)
			return nil
		})
		if err != nil {
			return fmt.Errorf("store: migrate the replay cache: %w", err)
		}
		for _, x := range rows {
			if _, err := tx.ExecContext(ctx, `INSERT INTO hub_replay (digest, expires) VALUES ($1, $2)
				ON CONFLICT (digest) DO UPDATE SET expires = MAX(hub_replay.expires, excluded.expires)`,
				replayDigest(x.issuer, x.id), x.expires); err != nil {
				return fmt.Errorf("store: migrate the replay cache: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, `DROP TABLE hub_replay_v4`); err != nil {
			return fmt.Errorf("store: migrate the replay cache: %w", err)
		}
		return nil
	})
}

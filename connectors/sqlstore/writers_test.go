package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/kecis/kecis/connectors/sqlstore"
)

// TestSQLiteWritersQueue: on SQLite a process's write transactions queue
// for the one writer's place instead of meeting SQLITE_BUSY — with
// busy_timeout 0, so that a writer that found the lock taken would fail at
// once, 8 concurrent writers of 25 transactions each all commit and no two
// transactions overlap; a writer whose context ends while it waits gives
// up with the context's error, and reads never wait for writers.
func TestSQLiteWritersQueue(t *testing.T) {
	ctx := ctxFor(t)
	db, err := sqlstore.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "w.db")+"?_busy_timeout=0")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE TABLE n (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO n (id, v) VALUES (1, 0)`); err != nil {
		t.Fatal(err)
	}
	const writers, each = 8, 25
	var inside, overlaps atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for range writers {
		wg.Go(func() {
			for range each {
				errs <- db.WriteTx(ctx, func(tx *sql.Tx) error {
					if inside.Add(1) > 1 {
						overlaps.Add(1)
					}
					defer inside.Add(-1)
					var v int
					if err := tx.QueryRowContext(ctx, `SELECT v FROM n WHERE id = 1`).Scan(&v); err != nil {
						return err
					}
					_, err := tx.ExecContext(ctx, `UPDATE n SET v = $1 WHERE id = 1`, v+1)
					return err
				})
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	var v int
	if err := db.QueryRowContext(ctx, `SELECT v FROM n WHERE id = 1`).Scan(&v); err != nil || v != writers*each || overlaps.Load() != 0 {
		t.Fatalf("counter %d (%v), want %d; %d overlapping transactions", v, err, writers*each, overlaps.Load())
	}

	// A writer holds the place; a reader goes on, a second writer whose
	// context ends gives up without having begun.
	hold, held := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- db.WriteTx(ctx, func(*sql.Tx) error {
			close(held)
			<-hold
			return nil
		})
	}()
	<-held
	if err := db.ReadTx(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `SELECT v FROM n WHERE id = 1`).Scan(&v)
	}); err != nil {
		t.Fatalf("a read while a write is open: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	ran := false
	err = db.WriteTx(cctx, func(*sql.Tx) error { ran = true; return nil })
	if !errors.Is(err, context.Canceled) || ran {
		t.Fatalf("a queued writer whose context ended: %v (ran %v)", err, ran)
	}
	close(hold)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

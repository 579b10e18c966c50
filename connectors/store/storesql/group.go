package storesql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/kecis/kecis/connectors/sqlstore"
)

// maxGroup bounds how many requests' writes share one commit.
const maxGroup = 64

// group commits the writes of concurrent requests together on SQLite
// (group commit): one writer goroutine takes every write waiting when it
// is free and runs them in one transaction, each under a savepoint of its
// own, so that one request's refusal or failure rolls back its writes
// only; every caller returns after the commit (synchronous=FULL), with its
// own result. What one request writes stays atomic and durable before it
// is answered, as with a transaction of its own, and the Store's promises
// to replicas (two Stores on one database never both win a replay, a key
// or an object) still rest on the database's lock and constraints; only
// the fsync is shared. A single request waits for nothing: the writer takes
// it at once, and the next group forms while the commit syncs. SQLite
// serialises writers anyway, and a queue in the process replaces its busy
// handler's sleeps. PostgreSQL needs no group: its own group commit
// (commit_delay) and row locks serve concurrent transactions.
type group struct {
	db      *sqlstore.DB
	waiting atomic.Int64 // writes waiting for the writer to take them (tests)
	running atomic.Int64 // writes in the group the writer runs (tests)
	reqs    chan *groupWrite
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

type groupWrite struct {
	ctx context.Context
	fn  func(ctx context.Context, tx *sql.Tx) error
	err chan error
}

// errClosed answers a write after Close.
var errClosed = errors.New("adapter store: closed")

func newGroup(db *sqlstore.DB) *group {
	g := &group{db: db, reqs: make(chan *groupWrite), stop: make(chan struct{}), done: make(chan struct{})}
	go g.loop()
	return g
}

// write runs fn in the next group's transaction and returns its result
// once that transaction committed (or fn's own error, its writes rolled
// back). Like sqlstore.DB.WriteTx, fn may run more than once. fn gets ctx
// without its cancellation: an interrupted statement would roll back the
// whole group's transaction (SQLite), so a request that gives up while
// its write runs only stops waiting before the group takes it.
func (g *group) write(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	w := &groupWrite{ctx: ctx, fn: fn, err: make(chan error, 1)}
	g.waiting.Add(1)
	select {
	case g.reqs <- w:
		g.waiting.Add(-1)
	case <-ctx.Done():
		g.waiting.Add(-1)
		return ctx.Err()
	case <-g.stop:
		g.waiting.Add(-1)
		return errClosed
	}
	// Taken: its outcome is decided by the group's commit, whatever ctx
	// does now.
	return <-w.err
}

// close stops the writer once the writes it took are answered.
func (g *group) close() {
	g.once.Do(func() { close(g.stop) })
	<-g.done
}

func (g *group) loop() {
	defer close(g.done)
	for {
		var batch []*groupWrite
		select {
		case w := <-g.reqs:
			batch = append(batch, w)
		case <-g.stop:
			return
		}
	drain:
		for len(batch) < maxGroup {
			select {
			case w := <-g.reqs:
				batch = append(batch, w)
			default:
				break drain
			}
		}
		g.running.Store(int64(len(batch)))
		errs := g.run(batch)
		g.running.Store(0)
		for i, w := range batch {
			w.err <- errs[i]
		}
	}
}

// run commits batch in one transaction and returns each write's result.
// A transient conflict (another process's lock, SQLITE_BUSY) reruns the
// whole group, as WriteTx reruns a transaction.
func (g *group) run(batch []*groupWrite) []error {
	errs := make([]error, len(batch))
	err := sqlstore.Retry(context.Background(), func() error {
		clear(errs)
		tx, err := g.db.BeginTx(context.Background(), nil) // BEGIN IMMEDIATE (connectors/sqlstore)
		if err != nil {
			return fmt.Errorf("adapter store: begin: %w", err)
		}
		alone := len(batch) == 1
		for i, w := range batch {
			if err := w.ctx.Err(); err != nil {
				errs[i] = err
				continue
			}
			if !alone {
				if _, err := tx.ExecContext(context.Background(), `SAVEPOINT adapter_write`); err != nil {
					_ = tx.Rollback()
					return err
				}
			}
			err := w.fn(context.WithoutCancel(w.ctx), tx)
			if err != nil && sqlstore.IsRetryable(err) {
				_ = tx.Rollback()
				return err
			}
			errs[i] = err
			if alone {
				if err != nil {
					_ = tx.Rollback()
					return nil
				}
				continue
			}
			if err != nil {
				if _, err := tx.ExecContext(context.Background(), `ROLLBACK TO adapter_write`); err != nil {
					_ = tx.Rollback()
					return err
				}
			}
			if _, err := tx.ExecContext(context.Background(), `RELEASE adapter_write`); err != nil {
				_ = tx.Rollback()
				return err
			}
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("adapter store: commit: %w", err)
		}
		return nil
	})
	if err != nil {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
	}
	return errs
}

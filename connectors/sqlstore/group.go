package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"
)

// MaxGroup bounds how many writes share one commit of a Group.
const MaxGroup = 64

// Group commits the writes of concurrent callers together on SQLite (group
// commit): one writer goroutine takes every write waiting when it is free
// and runs them in one transaction, each under a savepoint of its own, so
// that one caller's refusal or failure rolls back its writes only; every
// caller returns after the commit (synchronous=FULL), with its own result.
// What one caller writes stays atomic and durable before it returns, as
// with a transaction of its own, and what several processes (or replicas)
// on one database promise each other still rests on the database's lock
// and constraints; only the fsync, and the pages the writes share, are
// written once. A single write waits for nothing: the writer takes it at
// once, and the next group forms while the commit syncs. The group's
// transaction holds the DB's place of this process's one writer (WriteTx),
// so it queues with the DB's other write transactions.
//
// SQLite serialises writers anyway: a queue in the process replaces its
// busy handler's sleeps, and under load the commits of waiting writers
// merge instead of each syncing on its own. PostgreSQL needs no group: its
// own group commit (commit_delay) and row locks serve concurrent
// transactions, so there a Group starts no writer and Write is WriteTx —
// a program writes through its Group whatever the dialect.
type Group struct {
	db      *DB
	name    string
	waiting atomic.Int64 // writes waiting for the writer to take them
	running atomic.Int64 // writes in the group the writer runs
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

// NewGroup starts the writer of db's group on SQLite (on PostgreSQL none:
// each Write is a transaction of its own); name (e.g. "adapter store")
// begins its errors. Close stops it.
func NewGroup(db *DB, name string) *Group {
	g := &Group{db: db, name: name, stop: make(chan struct{}), done: make(chan struct{})}
	if db.Dialect != SQLite {
		close(g.done)
		return g
	}
	g.reqs = make(chan *groupWrite)
	go g.loop()
	return g
}

// Write runs fn in the next group's transaction and returns its result
// once that transaction committed (or fn's own error, its writes rolled
// back). Like WriteTx, fn may run more than once. fn gets ctx without its
// cancellation, and must use that context for its statements: an
// interrupted statement would roll back the whole group's transaction
// (SQLite), so a caller that gives up while its write runs only stops
// waiting before the group takes it.
//
// Without a writer (PostgreSQL) fn runs in a transaction of its own
// (DB.WriteTx) with ctx as it is.
func (g *Group) Write(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	if g.reqs == nil {
		select {
		case <-g.stop:
			return fmt.Errorf("%s: closed", g.name)
		default:
		}
		return g.db.WriteTx(ctx, func(tx *sql.Tx) error { return fn(ctx, tx) })
	}
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
		return fmt.Errorf("%s: closed", g.name)
	}
	// Taken: its outcome is decided by the group's commit, whatever ctx
	// does now.
	return <-w.err
}

// Queued reports the writes waiting for the writer and those in the group
// it runs (for tests that line writes up).
func (g *Group) Queued() (waiting, running int64) { return g.waiting.Load(), g.running.Load() }

// Close stops the writer once the writes it took are answered; later
// writes fail.
func (g *Group) Close() {
	g.once.Do(func() { close(g.stop) })
	<-g.done
}

func (g *Group) loop() {
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
		for len(batch) < MaxGroup {
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
func (g *Group) run(batch []*groupWrite) []error {
	errs := make([]error, len(batch))
	err := Retry(context.Background(), func() error {
		clear(errs)
		if g.db.writers != nil {
			g.db.writers <- struct{}{}
			defer func() { <-g.db.writers }()
		}
		tx, err := g.db.BeginTx(context.Background(), nil) // BEGIN IMMEDIATE
		if err != nil {
			return fmt.Errorf("%s: begin: %w", g.name, err)
		}
		alone := len(batch) == 1
		for i, w := range batch {
			if err := w.ctx.Err(); err != nil {
				errs[i] = err
				continue
			}
			if !alone {
				if _, err := tx.ExecContext(context.Background(), `SAVEPOINT group_write`); err != nil {
					_ = tx.Rollback()
					return err
				}
			}
			err := w.fn(context.WithoutCancel(w.ctx), tx)
			if err != nil && IsRetryable(err) {
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
				if _, err := tx.ExecContext(context.Background(), `ROLLBACK TO group_write`); err != nil {
					_ = tx.Rollback()
					return err
				}
			}
			// RELEASE also fails when SQLite ended the transaction itself
			// (SQLITE_FULL, an I/O error): the group then fails whole.
			if _, err := tx.ExecContext(context.Background(), `RELEASE group_write`); err != nil {
				_ = tx.Rollback()
				return err
			}
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("%s: commit: %w", g.name, err)
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

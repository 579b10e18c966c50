package sqlprobe

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
)

// Statement is one statement as Trace saw it.
type Statement struct {
	Query string
	Args  []any
}

// Record collects every statement from now on until the returned stop is
// called, which returns them in order (it replaces any Trace).
func (p *Probe) Record() (stop func() []Statement) {
	var mu sync.Mutex
	var out []Statement
	p.Trace(func(q string, args []any) {
		mu.Lock()
		out = append(out, Statement{Query: q, Args: args})
		mu.Unlock()
	})
	return func() []Statement {
		p.Trace(nil)
		mu.Lock()
		defer mu.Unlock()
		return out
	}
}

// Scan is a step of a statement's query plan that reads a table (or an
// index) whole: SQLite's "SCAN t", "SCAN t USING INDEX i" or "… USING
// COVERING INDEX i", as opposed to "SEARCH t USING … (a=?)". Its cost grows
// with the table.
type Scan struct {
	Query  string
	Detail string // the plan line, e.g. "SCAN pgw_transactions"
}

// Scans runs EXPLAIN QUERY PLAN on db for each statement (with its
// arguments) and returns the steps that scan a table whole; a table an
// alias names appears under the alias. Constant rows, and statements that
// are not queries or data changes (BEGIN, PRAGMA, COMMIT…), are skipped.
func Scans(ctx context.Context, db *sql.DB, stmts []Statement) ([]Scan, error) {
	var out []Scan
	seen := map[string]bool{}
	for _, s := range stmts {
		q := strings.TrimSpace(s.Query)
		if seen[q] || !planned(q) {
			continue
		}
		seen[q] = true
		rows, err := db.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q, s.Args...)
		if err != nil {
			return nil, fmt.Errorf("sqlprobe: explain %q: %w", q, err)
		}
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				rows.Close()
				return nil, err
			}
			if strings.HasPrefix(detail, "SCAN ") && !strings.HasPrefix(detail, "SCAN CONSTANT ROW") {
				out = append(out, Scan{Query: q, Detail: detail})
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// planned reports whether EXPLAIN QUERY PLAN applies to q.
func planned(q string) bool {
	i := strings.IndexFunc(q, func(r rune) bool { return r == ' ' || r == '\n' || r == '\t' || r == '(' })
	if i < 0 {
		i = len(q)
	}
	switch strings.ToUpper(q[:i]) {
	case "SELECT", "INSERT", "UPDATE", "DELETE", "REPLACE", "WITH":
		return true
	}
	return false
}

// Cost is what a piece of work cost the database: the write transactions
// and writing statements (Counts) and every statement it ran.
type Cost struct {
	Counts
	Statements int
}

// Measure runs f and returns what it cost the database, and its statements
// in order (the tests that require a request's cost not to grow with the
// history compare two of these).
func (p *Probe) Measure(f func()) (Cost, []Statement) {
	before := p.Counts()
	stop := p.Record()
	f()
	stmts := stop()
	return Cost{Counts: p.Counts().Sub(before), Statements: len(stmts)}, stmts
}

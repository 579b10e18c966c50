package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/kecis/kecis/conformance/loadtest"
	"github.com/kecis/kecis/connectors/sqlstore"
	_ "github.com/kecis/kecis/connectors/sqlstore/postgres" // the replicas' database
)

// defaultPostgres is the PostgreSQL server the replica runs use unless
// -postgres or KECIS_TEST_POSTGRES_DSN names another: the local test
// server (connectors/sqlstore/sqltest's default, trust authentication).
const defaultPostgres = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// replicas measures throughput against hub replicas (KECIS §12.8: several
// `kecis serve` on one PostgreSQL): kecis-demo with its hub on PostgreSQL
// (--postgres, in a schema of the report's own, dropped at the end), then
// beside the demo's hub as many more replicas as the largest count asks,
// each `kecis serve --config DIR/hub/hub.yaml` on free addresses
// (docs/demo.md), and, in interleaved rounds, a closed-loop load test
// against the first 1, 2, 3… of them (kecis loadtest --target URL,…:
// request n to replica n mod k).
func (m *measurer) replicas(ctx context.Context) {
	if len(m.p.Replicas) == 0 {
		m.d.ReplicasSkipped = "not asked for (-replicas \"\")"
		return
	}
	base := m.p.Postgres
	version, err := postgresVersion(ctx, base)
	if err != nil {
		msg := fmt.Sprintf("PostgreSQL at %s does not answer (%v)", sqlstore.RedactDSN(base), err)
		if os.Getenv("CI") == "true" {
			m.problem("replicas: %s", msg)
			return
		}
		m.d.ReplicasSkipped = msg + ": give one with -postgres DSN (scripts/bench-report.sh: POSTGRES=DSN)"
		m.log("replicas: %s", m.d.ReplicasSkipped)
		return
	}
	m.d.ReplicaDB = version
	dsn, drop, err := benchSchema(ctx, base)
	if err != nil {
		m.problem("replicas: %v", err)
		return
	}
	defer func() {
		if err := drop(); err != nil {
			m.problem("replicas: %v", err)
		}
	}()
	d, err := m.startDemo(ctx, "demo-pg", "--postgres", dsn)
	if err != nil {
		m.problem("replicas: %v", err)
		return
	}
	defer d.stop()
	t, err := loadtest.ReadDemo(d.dir)
	if err != nil {
		m.problem("replicas: %v", err)
		return
	}
	d.hubs = []string{t.HubURL}
	for i := 2; i <= slices.Max(m.p.Replicas); i++ {
		hub, err := m.startReplica(ctx, d, i)
		if err != nil {
			m.problem("replicas: replica %d: %v", i, err)
			return
		}
		d.hubs = append(d.hubs, hub)
	}
	m.log("replicas: %d hubs on %s (schema of this run), %s", len(d.hubs), version, strings.Join(d.hubs, " "))
	// Each replica's connections, metadata and caches, unmeasured.
	if _, err := m.loadtest(ctx, d, LoadPoint{Phase: "warmup", Replicas: len(d.hubs)}, 4, 0, 20*len(d.hubs), 0); err != nil {
		m.problem("replicas: warm-up load test: %v", firstLine(err.Error()))
	}
	record := m.recorder(ctx, d)
	for r := 1; r <= m.p.LoadRounds; r++ {
		for _, n := range m.p.Replicas {
			m.log("replicas round %d/%d: %d replica(s), concurrency %d, %s", r, m.p.LoadRounds, n, m.p.ReplicaConc, m.p.RunDur)
			record(LoadPoint{Phase: "replicas", Kind: "closed", Round: r, Replicas: n}, m.p.ReplicaConc, 0, 0, m.p.RunDur)
		}
	}
}

// postgresVersion is the server's version ("PostgreSQL 15.20"), or why it
// does not answer.
func postgresVersion(ctx context.Context, dsn string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	db, err := sqlstore.Open(ctx, dsn)
	if err != nil {
		return "", err
	}
	defer db.Close()
	var v string
	if err := db.QueryRowContext(ctx, `SHOW server_version`).Scan(&v); err != nil {
		return "", err
	}
	if f := strings.Fields(v); len(f) > 0 {
		v = f[0]
	}
	return "PostgreSQL " + v, nil
}

// benchSchema creates a schema of the run's own in the database base names
// and returns the DSN whose search_path is it (kecis-demo --postgres puts
// the hub's tables there), and a function that drops it with everything in
// it.
func benchSchema(ctx context.Context, base string) (dsn string, drop func() error, err error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", nil, fmt.Errorf("-postgres: want a postgres:// DSN, got %s", sqlstore.RedactDSN(base))
	}
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		return "", nil, err
	}
	schema := "kecis_bench_" + hex.EncodeToString(b)
	db, err := sqlstore.Open(ctx, base)
	if err != nil {
		return "", nil, err
	}
	if _, err := db.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		db.Close()
		return "", nil, fmt.Errorf("create schema %s: %w", schema, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), func() error {
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := db.ExecContext(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			return fmt.Errorf("drop schema %s: %w", schema, err)
		}
		return nil
	}, nil
}

// startReplica starts replica i of d's hub — `kecis serve --config
// DIR/hub/hub.yaml` with KECIS_LISTEN and KECIS_OPS_LISTEN on free loopback
// addresses, as docs/demo.md says, its output in the work directory — and
// waits until its /readyz answers 200; it returns the replica's base URL.
func (m *measurer) startReplica(ctx context.Context, d *demo, i int) (string, error) {
	listen, err := freeAddr()
	if err != nil {
		return "", err
	}
	ops, err := freeAddr()
	if err != nil {
		return "", err
	}
	logf, err := os.Create(filepath.Join(m.p.Work, fmt.Sprintf("replica-%d.out", i)))
	if err != nil {
		return "", err
	}
	defer logf.Close()
	cmd := exec.Command(m.p.Kecis, "serve", "--config", filepath.Join(d.dir, "hub", "hub.yaml"))
	cmd.Stdout, cmd.Stderr = logf, logf
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KECIS_") { // nothing of the caller's overrides hub.yaml
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "KECIS_LISTEN="+listen, "KECIS_OPS_LISTEN="+ops)
	p, err := startChild(cmd)
	if err != nil {
		return "", err
	}
	d.replicas = append(d.replicas, p)
	ready := "http://" + ops + "/readyz"
	deadline := time.Now().Add(time.Minute)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ready, nil)
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				m.log("replica %d up (pid %d): https://%s", i, cmd.Process.Pid, listen)
				return "https://" + listen, nil
			}
		}
		select {
		case err := <-p.done:
			p.done <- err // stop waits for it too
			return "", fmt.Errorf("kecis serve exited before it was ready (%v); see %s", err, logf.Name())
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return "", errors.New("kecis serve: /readyz not 200 after a minute")
		}
	}
}

// freeAddr is a loopback address whose port was free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

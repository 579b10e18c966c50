package faulttest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/kecis/kecis/connectors/callapi"
	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
	"github.com/kecis/kecis/examples/demo"
	"github.com/kecis/kecis/federation/server"
	"github.com/kecis/kecis/internal/devpki"
	"github.com/kecis/kecis/saml"
)

// kecisBin is the `kecis` binary the replicas run, built once by TestMain.
var kecisBin string

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	if spec := os.Getenv(aaChildEnv); spec != "" {
		return aaChild(spec) // a child of TestAmountAuthCrashMatrix
	}
	if spec := os.Getenv(twCrashChildEnv); spec != "" {
		return twChild(spec) // a child of TestTwoWayCrashMatrix
	}
	dir, err := os.MkdirTemp("", "kecis-faulttest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "faulttest:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	goTool, err := exec.LookPath("go")
	if err != nil {
		fmt.Fprintln(os.Stderr, "faulttest: the go command builds the kecis binary the replicas run:", err)
		return 1
	}
	kecisBin = filepath.Join(dir, "kecis")
	cmd := exec.Command(goTool, "build", "-o", kecisBin, "github.com/kecis/kecis/cmd/kecis")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "faulttest: go build ./cmd/kecis: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// testTimeout bounds each fault test: its load gives up past it.
const testTimeout = time.Minute

// bounded is a context that ends testTimeout after the test started, or
// with the test.
func bounded(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// testPostgresBase is the test PostgreSQL server's DSN (sqltest's).
func testPostgresBase() string {
	if s := os.Getenv(sqltest.EnvTestPostgresDSN); s != "" {
		return s
	}
	return sqltest.DefaultTestPostgresDSN
}

// randomName is prefix and 12 random hex digits.
func randomName(t *testing.T, prefix string) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return prefix + hex.EncodeToString(b[:])
}

// newDatabase creates a database of the test's own on the test PostgreSQL
// server (skipped, or failed under CI=true, when it is unreachable) and
// returns its DSN; the database is dropped when the test ends, whoever is
// still connected.
func newDatabase(t *testing.T) (dsn string, admin *sql.DB) {
	t.Helper()
	sqltest.RequirePostgres(t)
	base := testPostgresBase()
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	name := randomName(t, "kecis_replica_")
	if _, err := admin.Exec(`CREATE DATABASE ` + name); err != nil {
		admin.Close()
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		defer admin.Close()
		if _, err := admin.Exec(`DROP DATABASE IF EXISTS ` + name + ` WITH (FORCE)`); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String(), admin
}

// fed is the demo federation, its hub on the database the test chose,
// with `kecis serve` replicas beside the demo's own hub. The demo's hub
// serves the PG's leg (its sidecar calls the hub's public URL); the
// merchants' requests go to the replicas, round robin, as behind a load
// balancer.
type fed struct {
	t        *testing.T
	d        *demo.Demo
	dir      string
	hubTLS   *x509.Certificate
	client   *http.Client // pinned to the hub's TLS certificate
	operator tls.Certificate
	opSHA    string
	replicas []*replica
}

type fedOptions struct {
	// postgres is the hub's database (a postgres:// DSN); "" SQLite.
	postgres     string
	relayTimeout time.Duration
}

// startFed starts the demo on o's database, closed when the test ends.
func startFed(t *testing.T, o fedOptions) *fed {
	t.Helper()
	if o.relayTimeout == 0 {
		o.relayTimeout = 3 * time.Second
	}
	dir := t.TempDir()
	logf, err := os.Create(filepath.Join(dir, "demo-test.log"))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	d, err := demo.Start(context.Background(), demo.Config{Dir: dir, Postgres: o.postgres, RelayTimeout: o.relayTimeout,
		AllowClearCard: true, Log: slog.New(slog.NewJSONHandler(logf, nil))})
	if err != nil {
		logf.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close(); logf.Close() })
	t.Logf("demo up in %v", time.Since(start).Round(time.Millisecond))
	pemBytes, err := os.ReadFile(d.HubTLSCert)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := saml.ParseCertificatesPEM(pemBytes)
	if err != nil || len(certs) == 0 {
		t.Fatalf("the hub's TLS certificate: %v", err)
	}
	keyPEM, certPEM, err := devpki.Generate(devpki.TLSClient, "faulttest operator", nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	op, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	opCert, err := x509.ParseCertificate(op.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	f := &fed{t: t, d: d, dir: dir, hubTLS: certs[0], operator: op, opSHA: saml.Fingerprint(opCert)}
	f.client = f.httpClient(tls.Certificate{})
	return f
}

// httpClient is a client pinned to the hub's TLS certificate, presenting
// cert when it has one.
func (f *fed) httpClient(cert tls.Certificate) *http.Client {
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: saml.PinnedTLS(cert, []*x509.Certificate{f.hubTLS}),
		MaxIdleConnsPerHost: 32}}
}

// freeAddr is a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// replica is one `kecis serve` process on the demo hub's configuration:
// its keys, database and API keys, its own addresses, and the test's
// operator.
type replica struct {
	name, config, url, ops, logPath string
	env                             []string
	// rebinds counts the starts that found their port taken (freeAddr's
	// port is free only "a moment ago": another process may take it).
	rebinds int

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// addReplica writes a replica's configuration — the demo hub's hub.yaml
// with its own addresses, absolute paths and the test's operator — and
// starts it; it is stopped when the test ends. env adds KECIS_* variables.
func (f *fed) addReplica(name string, env ...string) *replica {
	t := f.t
	t.Helper()
	cfg, err := server.LoadConfig(filepath.Join(f.dir, "hub", "hub.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen, cfg.OpsListen = freeAddr(t), freeAddr(t)
	for _, p := range []*string{&cfg.TLS.Cert, &cfg.TLS.Key, &cfg.Signing.Cert, &cfg.Signing.Key, &cfg.TLS.ClientCert, &cfg.TLS.ClientKey} {
		if *p != "" {
			*p = cfg.Path(*p)
		}
	}
	cfg.Database.DSN = cfg.SQLiteDSN()
	cfg.Operators = append(cfg.Operators, server.Operator{Name: "faulttest", CertSHA256: f.opSHA})
	b, err := yaml.MarshalWithOptions(cfg, yaml.OmitZero())
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(f.dir, "replica-"+name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	r := &replica{name: name, config: filepath.Join(dir, "hub.yaml"), url: "https://" + cfg.Listen, ops: "http://" + cfg.OpsListen,
		logPath: filepath.Join(dir, "kecis.log"), env: env}
	if err := os.WriteFile(r.config, b, 0o600); err != nil {
		t.Fatal(err)
	}
	f.replicas = append(f.replicas, r)
	r.start(t)
	t.Cleanup(r.stop)
	return r
}

// addDemoReplica starts a replica as docs/demo.md says: `kecis serve
// --config DIR/hub/hub.yaml`, the demo hub's own file, with KECIS_LISTEN
// and KECIS_OPS_LISTEN set to addresses of its own (no operator).
func (f *fed) addDemoReplica(name string) *replica {
	t := f.t
	t.Helper()
	listen, ops := freeAddr(t), freeAddr(t)
	dir := filepath.Join(f.dir, "replica-"+name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	r := &replica{name: name, config: filepath.Join(f.dir, "hub", "hub.yaml"), url: "https://" + listen, ops: "http://" + ops,
		logPath: filepath.Join(dir, "kecis.log"), env: []string{"KECIS_LISTEN=" + listen, "KECIS_OPS_LISTEN=" + ops}}
	f.replicas = append(f.replicas, r)
	r.start(t)
	t.Cleanup(r.stop)
	return r
}

// start runs the process (again, after a kill).
func (r *replica) start(t *testing.T) {
	t.Helper()
	logf, err := os.OpenFile(r.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(kecisBin, "serve", "--config", r.config)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = procAttr()
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KECIS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, r.env...)
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}()
	r.mu.Lock()
	r.cmd, r.done = cmd, done
	r.mu.Unlock()
}

func (r *replica) running() (*exec.Cmd, chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cmd, r.done
}

// kill sends SIGKILL and waits for the process to be gone.
func (r *replica) kill() {
	cmd, done := r.running()
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// stop ends the process gracefully (SIGTERM), killing it after 10s.
func (r *replica) stop() {
	cmd, done := r.running()
	if cmd == nil {
		return
	}
	select {
	case <-done:
		return
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		r.kill()
	}
}

// exited reports whether the process has ended.
func (r *replica) exited() bool {
	_, done := r.running()
	select {
	case <-done:
		return true
	default:
		return false
	}
}

// logTail is the end of the replica's log, for a failure's message.
func (r *replica) logTail() string {
	b, _ := os.ReadFile(r.logPath)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// readyz is /readyz's status code and body (0 when the replica does not
// answer).
func (r *replica) readyz() (int, string) {
	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(r.ops + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitReadyz waits until /readyz answers want, at most within.
func (r *replica) waitReadyz(t *testing.T, want int, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		code, body := r.readyz()
		if code == want {
			return time.Since(start)
		}
		if r.exited() {
			if log := r.logTail(); r.rebinds < 3 && strings.Count(log, "address already in use") > r.rebinds {
				r.rebind(t)
				r.start(t)
				continue
			}
			t.Fatalf("replica %s exited while waiting for /readyz %d:\n%s", r.name, want, r.logTail())
		}
		if time.Since(start) > within {
			t.Fatalf("replica %s: /readyz %d %q after %v, want %d\n%s", r.name, code, body, within, want, r.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// rebind gives the replica new addresses (KECIS_LISTEN and
// KECIS_OPS_LISTEN override its configuration's) after another process
// took its port between freeAddr and the bind.
func (r *replica) rebind(t *testing.T) {
	t.Helper()
	r.rebinds++
	listen, ops := freeAddr(t), freeAddr(t)
	env := []string{"KECIS_LISTEN=" + listen, "KECIS_OPS_LISTEN=" + ops}
	for _, kv := range r.env {
		if !strings.HasPrefix(kv, "KECIS_LISTEN=") && !strings.HasPrefix(kv, "KECIS_OPS_LISTEN=") {
			env = append(env, kv)
		}
	}
	r.env, r.url, r.ops = env, "https://"+listen, "http://"+ops
	t.Logf("replica %s: its port was taken; again on %s", r.name, listen)
}

// answer is what the facade answered one call.
type answer struct {
	status  int
	resp    callapi.CallResponse
	problem string // the problem document's type, when the answer is one
	err     error  // no answer (connection refused, reset, timeout)
	// retryAfter is the Retry-After header, "" when none.
	retryAfter string
}

func (a answer) String() string {
	if a.err != nil {
		return "no answer: " + a.err.Error()
	}
	if a.problem != "" {
		return fmt.Sprintf("%d problem %s", a.status, a.problem)
	}
	return fmt.Sprintf("%d %s %s %s", a.status, a.resp.Outcome, a.resp.Status, a.resp.SubStatus)
}

// final reports whether the answer is the request's outcome — the
// provider's verified answer, neither Pending nor InFlight — rather than
// one a client retries with the same Idempotency-Key: no answer, Pending
// (the hub's or the provider's, HTTP 202), unavailable, in flight (the
// hub's problem or the provider's InFlight, HTTP 409), rate limited, an
// internal error.
func (a answer) final() bool {
	return a.err == nil && a.problem == "" && a.resp.Outcome == callapi.OutcomeAnswered &&
		a.status != http.StatusAccepted && a.status != http.StatusConflict && a.resp.SubStatus != "Pending" && a.resp.SubStatus != "InFlight"
}

// refused reports whether the answer is the hub's refusal to take the
// request now: a problem document with a 5xx status, or the outcome
// unavailable (503) — nothing delivered, the key retryable.
func (a answer) refused() bool {
	return a.err == nil && a.status >= 500 && (a.problem != "" || a.resp.Outcome == callapi.OutcomeUnavailable)
}

// hubUnavailable reports whether the answer is the hub's "my database
// cannot take this now" (KECIS §12.8): 503 with Retry-After, the problem
// unavailable or the outcome unavailable with the sub-status
// HubUnavailable — never 500 internal, nor ProviderUnavailable.
func (a answer) hubUnavailable() bool {
	return a.err == nil && a.status == http.StatusServiceUnavailable && a.retryAfter != "" &&
		(a.problem == "urn:kecis:problem:unavailable" || (a.problem == "" && a.resp.Outcome == callapi.OutcomeUnavailable && a.resp.SubStatus == "HubUnavailable"))
}

// approvalCode is the issuer's approval number of an approved answer.
func (a answer) approvalCode() string {
	if a.final() && a.resp.Status == "Success" {
		return a.resp.Fields["Ecom_Transaction_ApprovalCode"]
	}
	return ""
}

// call posts one facade request as merchant m to base (a replica's URL).
func (f *fed) call(ctx context.Context, base, service string, m *demo.Merchant, key string, fields map[string]string) answer {
	body, err := json.Marshal(callapi.CallRequest{Fields: fields})
	if err != nil {
		return answer{err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/card/"+service, bytes.NewReader(body))
	if err != nil {
		return answer{err: err}
	}
	req.Header.Set("Authorization", "Bearer "+m.APIKey)
	req.Header.Set("Idempotency-Key", key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := f.client.Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{status: resp.StatusCode, err: err}
	}
	a := answer{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
		var p struct {
			Type string `json:"type"`
		}
		_ = json.Unmarshal(b, &p)
		a.problem = p.Type
		if a.problem == "" {
			a.problem = "(untyped)"
		}
		return a
	}
	if err := json.Unmarshal(b, &a.resp); err != nil {
		a.err = fmt.Errorf("HTTP %d, not a call response: %.200q", resp.StatusCode, b)
	}
	return a
}

// approveFields are an approval's fields with the demo's approving card.
func (f *fed) approveFields(order string, amount int64) map[string]string {
	return f.cardFields(f.d.Cards[0], order, amount)
}

// cardFields are an approval's fields with card c.
func (f *fed) cardFields(c demo.TestCard, order string, amount int64) map[string]string {
	return map[string]string{
		"Ecom_ConsumerOrderID": order, "Ecom_Transaction_Amount": fmt.Sprint(amount),
		"Ecom_Transaction_CurrencyCode": "KRW", "Ecom_Transaction_Type": "credit",
		"Ecom_Payment_Card_Number":        c.PAN.Reveal(),
		"Ecom_Payment_Card_ExpDate_Month": fmt.Sprintf("%02d", c.ExpMonth), "Ecom_Payment_Card_ExpDate_Year": fmt.Sprint(c.ExpYear),
	}
}

// issuerDelay makes the issuer decide on the demo's timeout card after d
// and returns the card.
func (f *fed) issuerDelay(d time.Duration) *demo.TestCard {
	t := f.t
	t.Helper()
	for i := range f.d.Cards {
		if c := &f.d.Cards[i]; c.Result == demo.CardIssuerTimeout {
			ic, err := f.d.Issuer.FindCard(context.Background(), c.PAN)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.d.Issuer.SetCardResponseDelay(context.Background(), ic.ID, d); err != nil {
				t.Fatal(err)
			}
			return c
		}
	}
	t.Fatal("the demo has no issuer_timeout card")
	return nil
}

// request is one logical approval the driver makes: its Idempotency-Key
// (also the order), the merchant and an amount no other request of the
// test has — the issuer's ledger is reconciled by amount.
type request struct {
	key      string
	merchant *demo.Merchant
	amount   int64
	// card is the test card paid with; nil: the approving one.
	card *demo.TestCard
}

// fields are the request's approval fields.
func (f *fed) fields(rq request) map[string]string {
	if rq.card != nil {
		return f.cardFields(*rq.card, rq.key, rq.amount)
	}
	return f.approveFields(rq.key, rq.amount)
}

// outcome is what became of a request: its final answer after attempts
// calls, or the last answer when the driver gave up.
type outcome struct {
	request
	last     answer
	attempts int
	gaveUp   bool
	// pending: the provider kept answering Pending for driver.pendingFor
	// (it could not tell whether the issuer approved; the PG inquires
	// until its pending grace, 10 minutes, has passed).
	pending bool
	// seen counts the non-final answers by kind (status/problem).
	seen map[string]int
	// took is from the first call to the last answer, at end.
	took time.Duration
	end  time.Time
}

// driver sends requests round robin over targets(), retrying each with
// the same Idempotency-Key on any answer that is not final — at another
// target when the last one failed it — until retryFor has passed.
type driver struct {
	f        *fed
	targets  func() []string
	retryFor time.Duration
	// pendingFor, when set, ends a request the provider has answered
	// Pending for that long as pending.
	pendingFor time.Duration
	backoff    time.Duration
	rr         atomic.Uint64
	calls      atomic.Int64
	retried    atomic.Int64 // answers that were not final
	// onAnswer, when set, sees every answer (the tests' own checks).
	onAnswer func(target string, a answer)
}

func (dr *driver) do(ctx context.Context, rq request) (o outcome) {
	o = outcome{request: rq, seen: map[string]int{}}
	start := time.Now()
	defer func() { o.end = time.Now(); o.took = o.end.Sub(start) }()
	deadline := start.Add(dr.retryFor)
	var firstPending time.Time
	// avoid holds the targets that failed this request (no answer, 5xx,
	// Pending): its retries go elsewhere while another target is left, as
	// a balancer retries on another replica.
	avoid := map[string]bool{}
	for {
		target := dr.pick(avoid)
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		a := dr.f.call(cctx, target, "approve", rq.merchant, rq.key, dr.f.fields(rq))
		cancel()
		dr.calls.Add(1)
		o.attempts++
		o.last = a
		if dr.onAnswer != nil {
			dr.onAnswer(target, a)
		}
		if a.final() {
			return o
		}
		dr.retried.Add(1)
		if a.err != nil || a.status >= 500 || a.status == http.StatusAccepted {
			avoid[target] = true
		}
		if a.err == nil && a.problem == "" && a.resp.Outcome == callapi.OutcomeAnswered && a.resp.SubStatus == "Pending" && dr.pendingFor > 0 {
			if firstPending.IsZero() {
				firstPending = time.Now()
			} else if time.Since(firstPending) > dr.pendingFor {
				o.pending = true
				return o
			}
		}
		switch {
		case a.err != nil:
			o.seen["no answer"]++
		case a.problem != "":
			o.seen[fmt.Sprintf("%d %s", a.status, a.problem[strings.LastIndexAny(a.problem, "/:")+1:])]++
		default:
			o.seen[fmt.Sprintf("%d %s %s", a.status, a.resp.Outcome, a.resp.SubStatus)]++
		}
		if a.problem != "" && a.status < 500 && a.status != http.StatusConflict && a.status != http.StatusTooManyRequests {
			o.gaveUp = true // a refusal a retry cannot change
			return o
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			o.gaveUp = true
			return o
		}
		// The pause doubles from backoff (25ms) up to 16 times it.
		backoff := dr.backoff
		if backoff == 0 {
			backoff = 25 * time.Millisecond
		}
		time.Sleep(backoff << min(o.attempts-1, 4))
	}
}

// pick is the next target round robin, skipping those in avoid unless
// every target is.
func (dr *driver) pick(avoid map[string]bool) string {
	ts := dr.targets()
	n := dr.rr.Add(1)
	for i := range ts {
		if t := ts[int((n+uint64(i))%uint64(len(ts)))]; !avoid[t] {
			return t
		}
	}
	return ts[int(n%uint64(len(ts)))]
}

// run sends rqs with conc workers and returns their outcomes in order.
func (dr *driver) run(ctx context.Context, rqs []request, conc int) []outcome {
	out := make([]outcome, len(rqs))
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(rqs) {
					return
				}
				out[i] = dr.do(ctx, rqs[i])
			}
		}()
	}
	wg.Wait()
	return out
}

// requests are n approvals keyed prefix-i, alternating merchants (the
// demo's two when none is named), with the amounts from, from+1, …
func (f *fed) requests(prefix string, n int, from int64, ms ...*demo.Merchant) []request {
	if len(ms) == 0 {
		ms = f.d.Merchants
	}
	rqs := make([]request, n)
	for i := range rqs {
		rqs[i] = request{key: fmt.Sprintf("%s-%d", prefix, i), merchant: ms[i%len(ms)], amount: from + int64(i)}
	}
	return rqs
}

// reconciliation is the issuer's ledger against what the merchants were
// told, for the amounts of the test's requests.
type reconciliation struct {
	Acknowledged, InLedger, Lost, Doubled, Unacknowledged, Declined int
	// Pending requests ended Pending (outcome.pending); of them, PendingApproved
	// are approved at the issuer (once), the others not at all.
	Pending, PendingApproved int
}

// reconcile checks the issuer's ledger against the outcomes: every
// approval a merchant was told of is in the ledger under its approval
// number (none lost), no amount is approved twice (none doubled), and no
// approval is in the ledger that its merchant was not told of (every
// request ended with its outcome). Amounts in [from, to) are the test's.
func (f *fed) reconcile(outs []outcome, from, to int64) reconciliation {
	t := f.t
	t.Helper()
	ledger, err := f.d.Issuer.RecentApprovals(context.Background(), 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	byAmount := map[int64][]string{}
	for _, a := range ledger {
		if a.Amount.Minor >= from && a.Amount.Minor < to {
			byAmount[a.Amount.Minor] = append(byAmount[a.Amount.Minor], a.Number)
		}
	}
	var r reconciliation
	told := map[int64]bool{}
	for _, o := range outs {
		if o.gaveUp {
			t.Errorf("request %s (%s) got no outcome after %d attempts: last %v, seen %v", o.key, o.merchant.EntityID, o.attempts, o.last, o.seen)
			continue
		}
		if o.pending {
			r.Pending++
			told[o.amount] = true // the merchant knows to inquire
			switch n := len(byAmount[o.amount]); {
			case n == 1:
				r.PendingApproved++
			case n > 1:
				r.Doubled++
				t.Errorf("request %s (pending): approved %d times at the issuer: %v", o.key, n, byAmount[o.amount])
			}
			continue
		}
		code := o.last.approvalCode()
		if code == "" {
			r.Declined++
			continue
		}
		r.Acknowledged++
		told[o.amount] = true
		nums := byAmount[o.amount]
		switch {
		case len(nums) == 0 || (len(nums) == 1 && nums[0] != code):
			r.Lost++
			t.Errorf("request %s: approval %s acknowledged, not in the issuer's ledger (%v)", o.key, code, nums)
		case len(nums) > 1:
			r.Doubled++
			t.Errorf("request %s: approved %d times at the issuer: %v", o.key, len(nums), nums)
		default:
			r.InLedger++
		}
	}
	for amount, nums := range byAmount {
		if !told[amount] {
			r.Unacknowledged++
			t.Errorf("the issuer approved %d KRW (%v), and no merchant was told", amount, nums)
		}
	}
	t.Logf("reconciliation: acknowledged %d, in the ledger %d, lost %d, doubled %d, unacknowledged %d, declined %d, pending %d (approved at the issuer %d)",
		r.Acknowledged, r.InLedger, r.Lost, r.Doubled, r.Unacknowledged, r.Declined, r.Pending, r.PendingApproved)
	return r
}

// urls are the replicas' public URLs.
func urls(rs ...*replica) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.url)
	}
	return out
}

// summarize logs how the outcomes went: attempts and the non-final
// answers met on the way.
func summarize(t *testing.T, what string, outs []outcome, took time.Duration) {
	t.Helper()
	attempts := 0
	var longest time.Duration
	seen := map[string]int{}
	for _, o := range outs {
		attempts += o.attempts
		longest = max(longest, o.took)
		for k, v := range o.seen {
			seen[k] += v
		}
	}
	rate := ""
	if took > 0 {
		rate = fmt.Sprintf(" in %v (%.0f requests/s)", took.Round(time.Millisecond), float64(len(outs))/took.Seconds())
	}
	t.Logf("%s: %d requests, %d calls%s, the longest request %v; retried on %v", what, len(outs), attempts,
		rate, longest.Round(time.Millisecond), seen)
}

// waitFor polls cond every 50ms until it holds, at most within, and
// returns how long it took.
func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

// askAgain sends every request once more with its Idempotency-Key, to the
// next of targets in turn: each answer must be the outcome the request
// ended with (one outcome per key, whichever replica is asked).
func (f *fed) askAgain(outs []outcome, targets []string) {
	t := f.t
	t.Helper()
	for i, o := range outs {
		if o.gaveUp || o.pending {
			continue
		}
		a := f.call(context.Background(), targets[i%len(targets)], "approve", o.merchant, o.key, f.fields(o.request))
		if !a.final() || a.resp.Status != o.last.resp.Status || a.approvalCode() != o.last.approvalCode() {
			t.Errorf("request %s asked again: %v (approval %q), first %v (approval %q)", o.key, a, a.approvalCode(), o.last, o.last.approvalCode())
		}
	}
}

// checkHubRecords checks the hub's database (PostgreSQL or SQLite) against
// the outcomes: every request that ended with its outcome has its
// idempotency record done — none left in flight — and is in the audit log
// under its key. No record is half-written.
func (f *fed) checkHubRecords(outs []outcome) {
	t := f.t
	t.Helper()
	driver, source := "pgx", f.d.Hub.Config.Database.DSN
	if path, ok := strings.CutPrefix(f.d.Hub.Config.SQLiteDSN(), "sqlite:"); ok {
		driver, source = "sqlite", path
	}
	db, err := sql.Open(driver, source)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	checked := 0
	for _, o := range outs {
		if o.gaveUp || o.pending {
			continue
		}
		var states []string
		rows, err := db.Query(`SELECT state FROM hub_idempotency WHERE idem_key = $1 AND scope LIKE '%|' || $2`, o.key, o.merchant.EntityID)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			states = append(states, s)
		}
		rows.Close()
		var audited int
		if err := db.QueryRow(`SELECT count(*) FROM hub_audit WHERE idempotency_key = $1`, o.key).Scan(&audited); err != nil {
			t.Fatal(err)
		}
		if len(states) != 1 || states[0] != "done" || audited == 0 {
			t.Errorf("request %s (%v): idempotency records %v, %d audit records; want one done and some", o.key, o.last, states, audited)
		}
		checked++
	}
	var inFlight int
	if err := db.QueryRow(`SELECT count(*) FROM hub_idempotency WHERE state = 'in_flight'`).Scan(&inFlight); err != nil {
		t.Fatal(err)
	}
	t.Logf("the hub's records: %d requests each with one done idempotency record and its audit; %d claims in flight (Pending, not retried; any caller's)", checked, inFlight)
}

// Command kecis-demo runs a whole KECIS federation on this machine — the
// hub, a simulated card issuer, payment gateway and mobile carrier, two
// merchants — what `make run` starts (docs/demo.md). It is a binary of its
// own so that the production `kecis` links none of the simulated companies.
//
// Exit status: 0 when the federation stopped on Ctrl-C or SIGTERM, or the
// walkthrough finished; 1 when the federation could not start (a port in
// use, a --dir that cannot be written) or the walkthrough failed; 2 on a
// usage error (an unknown flag, an argument).
package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/kecis/kecis/connectors/sqlstore"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// Exit statuses (the package documentation).
const (
	exitFailed = 1
	exitUsage  = 2
)

// usageError is a command line kecis-demo does not understand.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }

// run executes kecis-demo with args and returns its exit status; tests
// drive it in process.
func run(args []string, stdout, stderr io.Writer) int {
	cmd := newCmd()
	cmd.SetArgs(args)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	err := cmd.Execute()
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "kecis-demo: %v\nRun 'kecis-demo --help' for usage.\n", err)
		return exitUsage
	default:
		fmt.Fprintln(stderr, "kecis-demo:", err)
		return exitFailed
	}
}

func newCmd() *cobra.Command {
	var (
		dir         string
		walkthrough bool
		settle      bool
		conform     bool
		kecisBin    string
		pprofAddr   string
		addrs       demoAddrs
		opts        demoOptions
	)
	cmd := &cobra.Command{
		Use:   "kecis-demo",
		Short: "Run a whole KECIS federation on this machine (what `make run` starts)",
		Long: `Starts, on loopback, the KECIS hub, a simulated card issuer behind its KECIS
adapter (with its own native API and admin page), a simulated mobile carrier
whose phones receive the issuer's approval texts, a payment gateway behind the
KECIS sidecar, two demo merchants and the first one's checkout, which pays with
amount authentication — with a development PKI generated on
first run into --dir, every participant registered and approved, on SQLite (the
hub on PostgreSQL with --postgres DSN: in the DSN's search_path, else in a schema
of --dir's own, kecis_demo_<16 hex digits>, created on first run). It
prints what to open, a curl line that approves a card payment through the
hub's JSON facade and the steps of a purchase with amount authentication (the
card company texts a small random approval to the holder's phone, whose amount
the buyer types on the PG's page), then runs until Ctrl-C.

Once the federation is up it writes DIR/demo.json (0600): the hub's URL and CA,
each merchant's API key and TLS client certificate, the test cards, every
participant's keys and the addresses actually bound — what scripts read
(docs/demo.md). Every address flag accepts port 0 (a free port), so several
demos run side by side in different directories.

The demo hub enables the facade's clear-card development mode (card numbers in
clear over TLS, encrypted by the hub at once); a production hub refuses them.

It registers the conformance suite's tester (and its second identity) and
writes a test profile per plan into DIR/conformance/ (--tester=false does not):
in another shell, ` + "`make conformance`" + ` — kecis-demo --conformance — runs every
plan against it with kecis conformance run (docs/conformance.md, "Against the
demo").

--walkthrough instead walks one message through the envelope layer and exits.
--conformance runs every conformance plan against the demo already running in
--dir with the kecis binary (--kecis; default: the one beside kecis-demo, else
on the PATH), writes each plan's reports to DIR/conformance-report/<plan>/,
prints a verdict line per plan and exits 1 unless every plan passed.
--settle ends the issuer's business day in the demo already running in --dir:
its clock moves to the 23:00 KST cut-off and every approval made so far is
settled, so that it can be refunded (docs/demo.md).

Exit status: 0 when stopped by Ctrl-C or SIGTERM (or the walkthrough, the
settlement or every conformance plan finished well), 1 when the federation
could not start, the walkthrough or the settlement failed, a conformance plan
did not pass or no demo runs in --dir, 2 on a usage error.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError{fmt.Errorf("unexpected argument %q: kecis-demo takes flags only", args[0])}
			}
			return nil
		},
		PreRunE: func(*cobra.Command, []string) error {
			if opts.aaMethod != "amount" && opts.aaMethod != "descriptor" {
				return usageError{fmt.Errorf("--aa-method %q: amount or descriptor", opts.aaMethod)}
			}
			return nil
		},
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if settle {
				return runSettle(cmd.OutOrStdout(), dir)
			}
			if conform {
				ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
				defer stop()
				return runConformance(ctx, cmd.OutOrStdout(), dir, kecisBin)
			}
			if walkthrough {
				return runWalkthrough(cmd.Context(), cmd.OutOrStdout(), filepath.Join(dir, "walkthrough"), time.Now)
			}
			if pprofAddr != "" {
				bound, stopPProf, err := startPProf(pprofAddr, slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil)))
				if err != nil {
					return err
				}
				defer stopPProf()
				fmt.Fprintf(cmd.ErrOrStderr(), "profiles: http://%s/debug/pprof/\n", bound)
			}
			// One more P per SQLite database the demo writes, at most
			// twice the CPUs (sqlstore.RaiseProcs; GOMAXPROCS overrides).
			if was, n := runtime.GOMAXPROCS(0), sqlstore.RaiseProcs(sqliteWriters(opts)); n != was {
				fmt.Fprintf(cmd.ErrOrStderr(), "GOMAXPROCS %d, raised from %d for the demo's SQLite writers (set GOMAXPROCS to choose)\n", n, was)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runFederationDemo(ctx, cmd.OutOrStdout(), dir, addrs, opts, nil)
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	cmd.Flags().StringVar(&dir, "dir", ".kecis-dev", "directory for the development keys and databases")
	cmd.Flags().BoolVar(&walkthrough, "walkthrough", false, "walk one card approval through the envelope layer and exit")
	cmd.Flags().BoolVar(&settle, "settle", false, "end the issuer's business day in the demo running in --dir (settle its approvals, so they can be refunded) and exit")
	cmd.Flags().BoolVar(&conform, "conformance", false, "run every conformance plan against the demo running in --dir (make conformance) and exit")
	cmd.Flags().StringVar(&kecisBin, "kecis", "", "with --conformance: the kecis binary (default: the kecis beside kecis-demo, else on the PATH)")
	cmd.Flags().BoolVar(&opts.tester, "tester", true, "register the conformance suite's tester and write its test profiles (test mode)")
	cmd.Flags().DurationVar(&opts.relayTimeout, "relay-timeout", 10*time.Second, "how long the hub waits for a provider before it answers Pending")
	cmd.Flags().StringVar(&opts.postgres, "postgres", "", "the hub's database: a postgres:// DSN (its schema: the DSN's search_path, else kecis_demo_<hash of --dir>, created on first run); default SQLite in --dir")
	cmd.Flags().StringVar(&pprofAddr, "pprof", "", "serve the Go runtime's profiles of the whole demo (net/http/pprof) on this loopback host:port; off by default")
	cmd.Flags().StringVar(&addrs.hub, "hub", "127.0.0.1:8443", "the hub's HTTPS address")
	cmd.Flags().StringVar(&addrs.ops, "hub-ops", "127.0.0.1:9090", "the hub's /healthz, /readyz, /metrics")
	cmd.Flags().StringVar(&addrs.issuer, "issuer", "127.0.0.1:8444", "the issuer's KECIS endpoint")
	cmd.Flags().StringVar(&addrs.native, "issuer-api", "127.0.0.1:8081", "the issuer's own API and admin page")
	cmd.Flags().StringVar(&addrs.telecom, "telecom", "127.0.0.1:8082", "the carrier's SMS gateway and phone pages")
	cmd.Flags().StringVar(&addrs.pgNative, "pg-api", "127.0.0.1:8083", "the PG's own API")
	cmd.Flags().StringVar(&addrs.pgKECIS, "pg-kecis", "127.0.0.1:8445", "the PG sidecar's KECIS endpoint")
	cmd.Flags().StringVar(&addrs.pgCall, "pg-call", "127.0.0.1:8446", "the PG sidecar's local calling endpoint")
	cmd.Flags().StringVar(&addrs.pgPage, "pg-page", "127.0.0.1:8447", "the PG's amount-authentication page (the cardholder types the texted amount there)")
	cmd.Flags().StringVar(&addrs.shop, "shop", "127.0.0.1:8084", "the demo shop's checkout (a purchase with amount authentication)")
	cmd.Flags().StringVar(&addrs.issuerPage, "issuer-page", "127.0.0.1:8448", "the issuer's cardholder-authentication page (HTTPS)")
	cmd.Flags().StringVar(&addrs.issuerCert, "issuer-cert", "127.0.0.1:8449", "the issuer's mutual-TLS endpoint where the browser presents the cardholder's client certificate")
	cmd.Flags().StringVar(&addrs.telecomKECIS, "telecom-kecis", "127.0.0.1:8452", "the carrier's KECIS endpoint (phone holder checks for banks)")
	cmd.Flags().StringVar(&addrs.bankA, "bank-a", "127.0.0.1:8085", "bank A's own API and pages (its customers' login; the 2-WAY transfer)")
	cmd.Flags().StringVar(&addrs.bankAKECIS, "bank-a-kecis", "127.0.0.1:8450", "bank A's KECIS endpoint")
	cmd.Flags().StringVar(&addrs.bankB, "bank-b", "127.0.0.1:8086", "bank B's own API and pages")
	cmd.Flags().StringVar(&addrs.bankBKECIS, "bank-b-kecis", "127.0.0.1:8451", "bank B's KECIS endpoint")
	cmd.Flags().StringVar(&opts.aaMethod, "aa-method", "amount", "what the cardholder types on the PG's page: amount (of the card company's text) or descriptor (the code after the shop's name in it)")
	return cmd
}

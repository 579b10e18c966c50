package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	sqldb "github.com/kecis/kecis/connectors/sqlstore"
	"github.com/kecis/kecis/federation/server"
	"github.com/kecis/kecis/federation/store/sqlstore"
	"github.com/kecis/kecis/internal/devpki"
)

func init() { registerCommand(newServeCmd) }

func newServeCmd() *cobra.Command {
	var (
		cfgPath string
		devKeys bool
	)
	cmd := &cobra.Command{
		Use:   "serve --config hub.yaml",
		Short: "Run the KECIS hub",
		Long: `Runs one hub replica: the participant-facing HTTPS endpoints (metadata,
registration, the operator API) and the operations endpoints (/healthz, /readyz,
/metrics). The configuration is YAML (examples/hub/hub.yaml documents every
key), overridden by KECIS_* environment variables. SIGINT or SIGTERM shut it down
gracefully: requests in flight get limits.shutdown_timeout to finish.

Several replicas share one PostgreSQL database (database.dsn: postgres://…).`,
		Example: `  kecis serve --config examples/hub/hub.yaml --dev-keys
  KECIS_DATABASE_DSN=postgres://kecis@db/kecis kecis serve --config /etc/kecis/hub.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return serveHub(ctx, cfgPath, devKeys, nil, nil)
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "hub.yaml", "the hub's YAML configuration")
	cmd.Flags().BoolVar(&devKeys, "dev-keys", false, "generate missing signing and TLS keys (development only)")
	return cmd
}

// serveHub runs the hub until ctx ends. Tests pass listeners.
func serveHub(ctx context.Context, cfgPath string, devKeys bool, public, ops net.Listener) error {
	if ctx == nil {
		ctx = context.Background()
	}
	cfg, err := server.LoadConfig(cfgPath, os.Environ())
	if err != nil {
		return err
	}
	log := server.NewLogger(cfg.Log)
	if devKeys {
		now := time.Now()
		for _, k := range []struct {
			path string
			kind devpki.Kind
			cn   string
		}{
			{filepath.Dir(cfg.Path(cfg.Signing.Key)), devpki.Signing, "KECIS hub signing (development)"},
			{filepath.Dir(cfg.Path(cfg.TLS.Key)), devpki.TLSServer, "KECIS hub TLS (development)"},
		} {
			made, err := devpki.Ensure(k.path, k.kind, k.cn, devpki.LoopbackHosts, now)
			if err != nil {
				return err
			}
			if made {
				log.Warn("generated a development key; never use it in production", "dir", k.path)
			}
		}
	}
	st, err := sqlstore.Open(ctx, cfg.SQLiteDSN())
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	defer st.Close()
	if dsn, err := sqldb.ParseDSN(cfg.SQLiteDSN()); err == nil && dsn.Dialect == sqldb.SQLite && !dsn.Memory && public == nil {
		// The hub's group-commit writer blocks a thread, with its P, in
		// fsync: one more P (sqldb.RaiseProcs; GOMAXPROCS overrides).
		// Not for tests (public set): the runtime is the test binary's.
		if was, n := runtime.GOMAXPROCS(0), sqldb.RaiseProcs(1); n != was {
			log.Info("GOMAXPROCS raised for the SQLite store's writer", "gomaxprocs", n, "was", was)
		}
	}
	srv, err := server.New(cfg, st, nil, server.Describe, log)
	if err != nil {
		return err
	}
	srv.Publisher = srv.DefaultPublisher()
	if public != nil {
		return srv.Serve(ctx, public, ops)
	}
	return srv.Run(ctx)
}

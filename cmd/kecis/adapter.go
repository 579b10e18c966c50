package main

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/kecis/kecis/connectors/sidecar"
	"github.com/kecis/kecis/federation/server"
)

func init() { registerCommand(newAdapterCmd) }

func newAdapterCmd() *cobra.Command {
	var cfgPath string
	var check bool
	cmd := &cobra.Command{
		Use:   "adapter --config adapter.yaml",
		Short: "Run the KECIS sidecar beside a provider's own HTTP API",
		Long: `Terminates KECIS for a provider that is not written in Go: the same receive
pipeline, idempotency authority and signed, encrypted answers as the Go SDK, and
a mapping file that turns each KECIS service into a call of the provider's native
JSON or form API (ECML fields ↔ native fields, amount units, date formats,
enumerations, native result codes → KECIS statuses). The provider's backend calls
other participants through the local endpoint (call_listen): POST
/v1/{group}/{operation} with flat ECML fields, as on the hub's JSON facade.

A mistake in the mapping file is reported at start-up with the file, line and
field. --check only checks the file.`,
		Example: `  kecis adapter --config adapter.yaml
  kecis adapter --config adapter.yaml --check`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := sidecar.Load(cfgPath)
			if err != nil {
				return err
			}
			if check {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %d services mapped, no problem found\n", cfgPath, len(cfg.Services))
				return nil
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			log := server.NewLogger(server.LogConfig{Level: "info", Format: "json"})
			sc, err := sidecar.New(ctx, cfg, log)
			if err != nil {
				return err
			}
			kl, err := net.Listen("tcp", cfg.Listen)
			if err != nil {
				return err
			}
			var cl net.Listener
			if cfg.CallListen != "" {
				if cl, err = net.Listen("tcp", cfg.CallListen); err != nil {
					kl.Close()
					return err
				}
			}
			return sc.Serve(ctx, kl, cl)
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "adapter.yaml", "the sidecar's configuration and mapping file")
	cmd.Flags().BoolVar(&check, "check", false, "check the mapping file and exit")
	return cmd
}

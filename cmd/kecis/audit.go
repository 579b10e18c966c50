package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/kecis/kecis/federation/evidence"
	"github.com/kecis/kecis/federation/server"
	"github.com/kecis/kecis/federation/store/sqlstore"
	"github.com/kecis/kecis/saml"
)

func init() { registerCommand(newAuditCmd) }

func newAuditCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Work with the hub's audit log (run on the hub's host, with its configuration)",
	}
	var cfgPath, tx, out string
	export := &cobra.Command{
		Use:   "export --config hub.yaml --tx ID --out DIR",
		Short: "Write the evidence bundle of one transaction, checkable with xmlsec1 alone",
		Long: `Writes every signed message of a transaction exactly as the hub received or sent
it, the hub-signed metadata of each signer in force at the time, for JSON-facade
transactions the hub's record of how it authenticated the merchant, and
VERIFY.sh, which checks all signatures with xmlsec1 without the hub's software.

--tx is the transaction ID of the audit log: "<issuer entityID>|<idempotency key>"
(for facade requests the issuer is the hub), or a message ID.`,
		Example: `  kecis audit export --config hub.yaml --tx 'https://shop.example/kecis|order-1001' --out evidence-1001
  sh evidence-1001/VERIFY.sh`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := server.LoadConfig(cfgPath, os.Environ())
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Minute)
			defer cancel()
			st, err := sqlstore.Open(ctx, cfg.SQLiteDSN())
			if err != nil {
				return err
			}
			defer st.Close()
			certs, err := saml.LoadCertificates(cfg.Path(cfg.Signing.Cert))
			if err != nil {
				return err
			}
			m, err := evidence.Export(ctx, st, cfg.EntityID, certs[0], tx, out, time.Now())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %d signed messages and %d metadata snapshots to %s; run sh %s/VERIFY.sh\n", len(m.Items), len(m.Snapshots), out, out)
			return nil
		},
	}
	export.Flags().StringVar(&cfgPath, "config", "hub.yaml", "the hub's configuration (for its database and certificate)")
	export.Flags().StringVar(&tx, "tx", "", "transaction ID or message ID")
	export.Flags().StringVar(&out, "out", "", "directory to write the bundle into")
	_ = export.MarkFlagRequired("tx")
	_ = export.MarkFlagRequired("out")
	cmd.AddCommand(export)
	return cmd
}

package main

import (
	"context"
	"errors"
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

--tx names the transaction, either way:
  - the ID of its request: the request_id of the facade's answer for a
    payment through the JSON facade, the ServiceRequest's ID for a request
    relayed between participants;
  - "<issuer entityID>|<idempotency key>", the audit log's transaction ID.
    For a payment through the JSON facade the issuer is the hub (its
    entity_id), not the merchant, and the key is the Idempotency-Key header.
The demo's hub (make run) keeps its configuration in .kecis-dev/hub/hub.yaml.`,
		Example: `  kecis audit export --config .kecis-dev/hub/hub.yaml --tx _6f1d0c4be2a9487391a05d7e3c2b8f14 --out evidence-order-1001
  kecis audit export --config .kecis-dev/hub/hub.yaml --tx 'https://hub.kecis.test/kecis|order-1001' --out evidence-1001
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
			if errors.Is(err, evidence.ErrNoRecords) {
				return fmt.Errorf("%w %q: give the request's ID (request_id in the facade's answer) or \"<issuer>|<idempotency key>\", where the facade's issuer is the hub: %q", err, tx, cfg.EntityID+"|<Idempotency-Key>")
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %d signed messages and %d metadata snapshots to %s; run sh %s/VERIFY.sh\n", len(m.Items), len(m.Snapshots), out, out)
			return nil
		},
	}
	export.Flags().StringVar(&cfgPath, "config", "hub.yaml", "the hub's configuration (for its database and certificate)")
	export.Flags().StringVar(&tx, "tx", "", "the request's ID (the facade's request_id) or ISSUER|IDEMPOTENCY-KEY")
	export.Flags().StringVar(&out, "out", "", "directory to write the bundle into")
	_ = export.MarkFlagRequired("tx")
	_ = export.MarkFlagRequired("out")
	cmd.AddCommand(export)
	return cmd
}

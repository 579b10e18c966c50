package main

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kecis/kecis/federation/registry"
	"github.com/kecis/kecis/saml"
)

func init() { registerCommand(newFederationCmd) }

// hubClientFlags are the connection flags every federation command shares.
type hubClientFlags struct {
	hub, clientCert, clientKey, hubTLSCert string
	timeout                                time.Duration
}

func (f *hubClientFlags) register(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&f.hub, "hub", "https://127.0.0.1:8443", "the hub's base URL")
	cmd.PersistentFlags().StringVar(&f.clientCert, "client-cert", "", "your TLS client certificate (PEM): a participant's, or an operator's for operator commands")
	cmd.PersistentFlags().StringVar(&f.clientKey, "client-key", "", "its private key (PEM)")
	cmd.PersistentFlags().StringVar(&f.hubTLSCert, "hub-tls-cert", "", "pin the hub's TLS server certificate (PEM) instead of trusting the system roots")
	cmd.PersistentFlags().DurationVar(&f.timeout, "timeout", 30*time.Second, "request timeout")
}

// client builds an HTTP client with the TLS client certificate and, when
// given, the hub's pinned server certificate.
func (f *hubClientFlags) client() (*http.Client, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if f.clientCert != "" || f.clientKey != "" {
		kp, err := tls.LoadX509KeyPair(f.clientCert, f.clientKey)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{kp}
	}
	if f.hubTLSCert != "" {
		pins, err := saml.LoadCertificates(f.hubTLSCert)
		if err != nil {
			return nil, fmt.Errorf("--hub-tls-cert: %w", err)
		}
		tc = saml.PinnedTLS(certOrEmpty(tc), pins)
	}
	return &http.Client{Timeout: f.timeout, Transport: &http.Transport{TLSClientConfig: tc}}, nil
}

func certOrEmpty(tc *tls.Config) tls.Certificate {
	if len(tc.Certificates) > 0 {
		return tc.Certificates[0]
	}
	return tls.Certificate{}
}

// call sends a request to the hub and decodes a JSON answer or an RFC 9457
// problem into an error.
func (f *hubClientFlags) call(method, path string, body []byte, contentType string, out any) error {
	_, err := f.callStatus(method, path, body, contentType, out)
	return err
}

// callStatus is call, with the HTTP status of a successful answer.
func (f *hubClientFlags) callStatus(method, path string, body []byte, contentType string, out any) (int, error) {
	hc, err := f.client()
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequest(method, strings.TrimSuffix(f.hub, "/")+path, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return 0, err
	}
	if resp.StatusCode >= 300 {
		var p struct{ Title, Detail string }
		if json.Unmarshal(b, &p) == nil && p.Title != "" {
			if p.Detail != "" {
				return resp.StatusCode, fmt.Errorf("hub: %s (%s)", p.Title, p.Detail)
			}
			return resp.StatusCode, fmt.Errorf("hub: %s", p.Title)
		}
		return resp.StatusCode, fmt.Errorf("hub: HTTP %d", resp.StatusCode)
	}
	if out != nil {
		return resp.StatusCode, json.Unmarshal(b, out)
	}
	return resp.StatusCode, nil
}

type participantJSON struct {
	EntityID    string    `json:"entity_id"`
	DisplayName string    `json:"display_name"`
	Roles       []string  `json:"roles"`
	Status      string    `json:"status"`
	Version     int64     `json:"version"`
	UpdatedAt   time.Time `json:"updated_at"`
	Keys        []struct {
		Use      string    `json:"use"`
		SHA256   string    `json:"sha256"`
		NotAfter time.Time `json:"not_after"`
	} `json:"keys"`
	Endpoints []struct {
		Service, Binding, URL string
		Priority              int
	} `json:"endpoints"`
	Services []struct {
		Service    string   `json:"service"`
		Currencies []string `json:"currencies"`
		BINRanges  []string `json:"bin_ranges"`
		BankCodes  []string `json:"bank_codes"`
	} `json:"services"`
	// PendingChange is a change awaiting an operator's decision (KECIS
	// §12.6): its ID and, where shown whole, the diff.
	PendingChange *struct {
		ID          string    `json:"id"`
		RequestedAt time.Time `json:"requested_at"`
		Diff        []string  `json:"diff"`
	} `json:"pending_change"`
	// Of an update: the diff applied, a pending change it withdrew or
	// replaced, the hub's message.
	Diff            []string `json:"diff"`
	WithdrawnChange string   `json:"withdrawn_change"`
	ReplacedChange  string   `json:"replaced_change"`
	Message         string   `json:"message"`
}

// printDiff writes diff lines indented.
func printDiff(w io.Writer, lines []string) {
	for _, l := range lines {
		fmt.Fprintf(w, "    %s\n", l)
	}
}

func newFederationCmd() *cobra.Command {
	f := &hubClientFlags{}
	cmd := &cobra.Command{
		Use:   "federation",
		Short: "Register with a hub, and operate its participant registry",
		Long: `Participants register their metadata with a hub (kecis federation register);
operators list, inspect and move participants through their lifecycle:
pending → active (approve) → suspended (suspend) → active (reinstate), or removed.

A participant changes on its own only its keys, endpoints, name, organization
and contacts (kecis federation update applies them at once). A change of its
roles, offered services, BIN ranges, bank codes, currencies, amount limits or
callers waits as a pending change until an operator approves it
(approve-change) or rejects it (reject-change); show displays it as a diff.
Approvals refuse a BIN or bank code claim that overlaps an active issuer's or
bank's unless the operator allows it by name (--allow-overlap, with --reason).

Every call is authenticated by a TLS client certificate: a participant's must be
one its metadata publishes; an operator's must be listed in the hub's
configuration (operators: cert_sha256).`,
	}
	f.register(cmd)
	cmd.AddCommand(newFederationRegisterCmd(f), newFederationUpdateCmd(f), newFederationListCmd(f), newFederationShowCmd(f))
	for _, action := range registry.Actions {
		cmd.AddCommand(newFederationActionCmd(f, action))
	}
	cmd.AddCommand(newFederationConformanceCmd(f))
	return cmd
}

func newFederationRegisterCmd(f *hubClientFlags) *cobra.Command {
	var mdFile string
	reg := &cobra.Command{
		Use:   "register --hub URL --metadata FILE --client-cert C --client-key K",
		Short: "Submit your metadata to a hub; you start as pending until an operator approves",
		Example: `  kecis federation register --hub https://hub.example --hub-tls-cert hub-tls.pem \
    --metadata pg-metadata.xml --client-cert tls/client.pem --client-key tls/client.key`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			md, err := os.ReadFile(mdFile)
			if err != nil {
				return err
			}
			var p participantJSON
			if err := f.call(http.MethodPost, "/kecis/federation/participants", md, "application/samlmetadata+xml", &p); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "registered %s as %s (version %d); an operator must approve it\n", p.EntityID, p.Status, p.Version)
			return nil
		},
	}
	reg.Flags().StringVar(&mdFile, "metadata", "", "your md:EntityDescriptor (kecis metadata generate)")
	_ = reg.MarkFlagRequired("metadata")
	return reg
}

func newFederationUpdateCmd(f *hubClientFlags) *cobra.Command {
	var mdFile, entity string
	upd := &cobra.Command{
		Use:   "update --hub URL --entity-id ID --metadata FILE --client-cert C --client-key K",
		Short: "Replace your registered metadata: keys and endpoints at once, other changes after an operator's approval",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			md, err := os.ReadFile(mdFile)
			if err != nil {
				return err
			}
			var p participantJSON
			code, err := f.callStatus(http.MethodPut, "/kecis/federation/participants?entity_id="+url.QueryEscape(entity), md, "application/samlmetadata+xml", &p)
			if err != nil {
				return err
			}
			printUpdate(cmd.OutOrStdout(), code, &p)
			return nil
		},
	}
	upd.Flags().StringVar(&mdFile, "metadata", "", "the new md:EntityDescriptor")
	upd.Flags().StringVar(&entity, "entity-id", "", "your entityID")
	_ = upd.MarkFlagRequired("metadata")
	_ = upd.MarkFlagRequired("entity-id")
	return upd
}

// printUpdate tells the participant what the hub did with its update: a
// change awaiting an operator (202), or the diff applied at once.
func printUpdate(w io.Writer, code int, p *participantJSON) {
	if code == http.StatusAccepted && p.PendingChange != nil {
		fmt.Fprintf(w, "change %s of %s awaits an operator's approval; your active version stays in force:\n", p.PendingChange.ID, p.EntityID)
		printDiff(w, p.PendingChange.Diff)
		if p.ReplacedChange != "" {
			fmt.Fprintf(w, "it replaces the pending change %s\n", p.ReplacedChange)
		}
		return
	}
	fmt.Fprintf(w, "updated %s (version %d, %s)\n", p.EntityID, p.Version, p.Status)
	printDiff(w, p.Diff)
	if p.WithdrawnChange != "" {
		fmt.Fprintf(w, "the pending change %s is withdrawn (this metadata does not ask for it)\n", p.WithdrawnChange)
	}
}

func newFederationListCmd(f *hubClientFlags) *cobra.Command {
	var status string
	list := &cobra.Command{
		Use:     "list [--status pending|active|suspended|removed]",
		Short:   "List participants (operator)",
		Example: `  kecis federation list --hub https://hub.example --client-cert operator.pem --client-key operator.key --status pending`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out struct{ Participants []participantJSON }
			path := "/kecis/admin/participants"
			if status != "" {
				path += "?status=" + url.QueryEscape(status)
			}
			if err := f.call(http.MethodGet, path, nil, "", &out); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ENTITY ID\tSTATUS\tROLES\tKEYS\tCHANGE\tUPDATED")
			for _, p := range out.Participants {
				change := "-"
				if p.PendingChange != nil {
					change = "pending"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", p.EntityID, p.Status, strings.Join(p.Roles, ","), len(p.Keys), change, p.UpdatedAt.Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	list.Flags().StringVar(&status, "status", "", "only participants in this state")
	return list
}

func newFederationShowCmd(f *hubClientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "show ENTITY_ID",
		Short: "Show one participant with its keys, endpoints, services and pending change (operator)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var p participantJSON
			if err := f.call(http.MethodGet, "/kecis/admin/participant?entity_id="+url.QueryEscape(args[0]), nil, "", &p); err != nil {
				return err
			}
			printParticipant(cmd.OutOrStdout(), &p)
			return nil
		},
	}
}

// printParticipant writes one participant as show displays it.
func printParticipant(w io.Writer, p *participantJSON) {
	fmt.Fprintf(w, "entity id:  %s\nname:       %s\nstatus:     %s (version %d)\nroles:      %s\n", p.EntityID, p.DisplayName, p.Status, p.Version, strings.Join(p.Roles, ", "))
	for _, k := range p.Keys {
		fmt.Fprintf(w, "key:        %-10s sha256 %s  until %s\n", k.Use, k.SHA256, k.NotAfter.Format(time.DateOnly))
	}
	for _, e := range p.Endpoints {
		fmt.Fprintf(w, "endpoint:   %s  %s  %s\n", e.Service, e.Binding, e.URL)
	}
	for _, sv := range p.Services {
		line := sv.Service
		if len(sv.BINRanges) > 0 {
			line += "  BINs " + strings.Join(sv.BINRanges, " ")
		}
		if len(sv.BankCodes) > 0 {
			line += "  bank codes " + strings.Join(sv.BankCodes, " ")
		}
		if len(sv.Currencies) > 0 {
			line += "  " + strings.Join(sv.Currencies, " ")
		}
		fmt.Fprintf(w, "service:    %s\n", line)
	}
	if c := p.PendingChange; c != nil {
		fmt.Fprintf(w, "pending change %s, requested %s (not in force):\n", c.ID, c.RequestedAt.Format(time.RFC3339))
		printDiff(w, c.Diff)
		fmt.Fprintf(w, "decide: kecis federation approve-change %s --change %s --reason …  |  reject-change %s --reason …\n", p.EntityID, c.ID, p.EntityID)
	}
}

// federationActionShort is the one-line help of each lifecycle action.
var federationActionShort = map[string]string{
	registry.ActionApprove:       "Activate a pending participant (operator)",
	registry.ActionSuspend:       "Suspend an active participant: the hub stops serving its metadata (operator)",
	registry.ActionReinstate:     "Reactivate a suspended participant (operator)",
	registry.ActionRemove:        "Remove a participant for good (operator)",
	registry.ActionApproveChange: "Put a participant's pending metadata change in force (operator)",
	registry.ActionRejectChange:  "Reject a participant's pending metadata change, with a reason (operator)",
}

// newFederationActionCmd is the operator command of one lifecycle action
// (registry.Actions): approve, suspend, reinstate, remove, approve-change,
// reject-change.
func newFederationActionCmd(f *hubClientFlags, action string) *cobra.Command {
	var (
		reason, change string
		allowOverlap   []string
	)
	use := action + " ENTITY_ID [--reason TEXT]"
	claims := action == registry.ActionApprove || action == registry.ActionReinstate || action == registry.ActionApproveChange
	changes := action == registry.ActionApproveChange || action == registry.ActionRejectChange
	if claims {
		use += " [--allow-overlap OTHER_ENTITY_ID]…"
	}
	if changes {
		use += " [--change ID]"
	}
	c := &cobra.Command{
		Use:   use,
		Short: federationActionShort[action],
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body, _ := json.Marshal(map[string]any{"entity_id": args[0], "reason": reason, "allow_overlap": allowOverlap, "change": change})
			var p participantJSON
			if err := f.call(http.MethodPost, "/kecis/admin/participants/"+action, body, "application/json", &p); err != nil {
				return err
			}
			switch action {
			case registry.ActionApproveChange:
				fmt.Fprintf(cmd.OutOrStdout(), "the change of %s is in force (version %d, %s)\n", p.EntityID, p.Version, p.Status)
			case registry.ActionRejectChange:
				fmt.Fprintf(cmd.OutOrStdout(), "the change of %s is rejected; its active version stays (%s)\n", p.EntityID, p.Status)
			default:
				fmt.Fprintf(cmd.OutOrStdout(), "%s is now %s\n", p.EntityID, p.Status)
			}
			return nil
		},
	}
	c.Flags().StringVar(&reason, "reason", "", "why (kept in the audit log)")
	if claims {
		c.Flags().StringSliceVar(&allowOverlap, "allow-overlap", nil, "accept that the participant's BIN or bank code claims overlap this active participant's (repeatable; needs --reason)")
	}
	if changes {
		c.Flags().StringVar(&change, "change", "", "decide only this pending change (its ID, as show lists it)")
	}
	if action == registry.ActionRejectChange {
		_ = c.MarkFlagRequired("reason")
	}
	return c
}

func newFederationConformanceCmd(f *hubClientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "conformance ENTITY_ID REPORT_JSON",
		Short: "Record a participant's conformance report (operator): the registration gate opens on a passing one",
		Long: `Record the report.json of a conformance run (kecis conformance run) with a
participant's registration. The hub keeps the report in its audit log. When the
hub requires conformance (conformance.required), approve succeeds only after a
passing report of the participant's plan, made with the keys it registered.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			body, err := os.ReadFile(args[1])
			if err != nil {
				return err
			}
			var out struct {
				Plan    string         `json:"plan"`
				Summary map[string]int `json:"summary"`
				RunID   string         `json:"run_id"`
			}
			if err := f.call(http.MethodPost, "/kecis/admin/participants/conformance?entity_id="+url.QueryEscape(args[0]), body, "application/json", &out); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "recorded run %s of the %s plan for %s (%v): the registration gate is open\n", out.RunID, out.Plan, args[0], out.Summary)
			return nil
		},
	}
}

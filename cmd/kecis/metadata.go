package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

func init() { registerCommand(newMetadataCmd) }

func newMetadataCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "metadata",
		Short: "Generate, fetch and verify KECIS federation metadata",
		Long: `KECIS metadata is one md:EntityDescriptor per participant with a KECIS role
descriptor: roles, signing and encryption keys (several during a rollover),
the TLS client and server certificates the hub pins, endpoints per service
and binding, and offered services with their limits. The hub signs each
descriptor on its own (GET /kecis/metadata/entities/{id}, the Metadata Query
protocol) and an md:EntitiesDescriptor aggregate (GET /kecis/metadata).`,
	}
	cmd.AddCommand(newMetadataGenerateCmd(), newMetadataVerifyCmd(), newMetadataExportCmd(), newMetadataValidateCmd())
	return cmd
}

// generateFlags are the flags of kecis metadata generate.
type generateFlags struct {
	entityID, displayName, out                string
	roles                                     []string
	signing, encryption, tlsClient, tlsServer []string
	endpoints, services                       []string
}

func newMetadataGenerateCmd() *cobra.Command {
	var o generateFlags
	cmd := &cobra.Command{
		Use:   "generate --entity-id URI --roles ROLE,... --signing-cert FILE --endpoint SPEC... [flags]",
		Short: "Write a participant's (unsigned) md:EntityDescriptor from its keys, endpoints and services",
		Long: `Builds the descriptor a participant registers with the hub and prints it
(indented, deterministic). Nothing is signed: the hub signs what it publishes.

Roles: merchant, pg, issuer, bank, telecom, tester (comma-separated).

Certificates are PEM files; each flag may be repeated, and every certificate
in a file is published (publish the old and the new key during a rollover).
Signing keys must be RSA of at least 2048 bits or ECDSA P-256.

--endpoint 'SERVICE|BINDING|URL[|PRIORITY]'
    SERVICE  a service URI, a short name such as card:approve, or * (every
             service without an endpoint of its own)
    BINDING  soap, post, or a binding URI
    PRIORITY lower first (default 0); failover moves between a participant's
             endpoints in this order

--service 'SERVICE[;CUR:MIN-MAX]...[;bins=B,B-B][;banks=CODE,CODE][;callers=ROLE,ROLE][;caller-entities=ID,ID]'
    CUR:MIN-MAX      an amount limit in ECML form: KRW:100-10000000, USD:0.50-5000.00
    bins             BIN prefixes (1 to 8 digits) and ranges: 404143,411111-411199
    banks            3-digit bank codes: 004,088
    callers          the roles that may call the service: merchant,tester. A service
                     without callers admits nobody (KECIS §13.2)
    caller-entities  narrows callers to these participants (your contracts)`,
		Example: `  kecis metadata generate --entity-id https://pg.example/kecis --display-name "Example PG" \
    --roles pg --signing-cert keys/signing/cert.pem --encryption-cert keys/encryption/cert.pem \
    --tls-client-cert tls/client.pem --tls-server-cert tls/server.pem \
    --endpoint '*|soap|https://pg.example/kecis/soap' \
    --endpoint '*|soap|https://dr.pg.example/kecis/soap|10' \
    --endpoint 'card:approve|post|https://pg.example/kecis/post' \
    --service 'card:approve;KRW:100-10000000;USD:0.50-5000.00;bins=404143,411111-411199;callers=merchant' \
    --service 'card:cancel;callers=merchant' --out pg-metadata.xml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ed, err := o.descriptor()
			if err != nil {
				return err
			}
			data, err := metadata.Marshal(ed)
			if err != nil {
				return err
			}
			return writeOutput(cmd, o.out, data)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.entityID, "entity-id", "", "the participant's entityID (an absolute URI)")
	f.StringVar(&o.displayName, "display-name", "", "the name the hub shows")
	f.StringSliceVar(&o.roles, "roles", nil, "roles, comma-separated: merchant, pg, issuer, bank, telecom, tester")
	f.StringArrayVar(&o.signing, "signing-cert", nil, "PEM certificate of a signing key (repeatable)")
	f.StringArrayVar(&o.encryption, "encryption-cert", nil, "PEM certificate of an encryption key (repeatable)")
	f.StringArrayVar(&o.tlsClient, "tls-client-cert", nil, "PEM TLS client certificate the participant connects with (repeatable)")
	f.StringArrayVar(&o.tlsServer, "tls-server-cert", nil, "PEM TLS server certificate the hub pins (repeatable)")
	f.StringArrayVar(&o.endpoints, "endpoint", nil, "SERVICE|BINDING|URL[|PRIORITY] (repeatable)")
	f.StringArrayVar(&o.services, "service", nil, "SERVICE[;CUR:MIN-MAX][;bins=...][;banks=...][;callers=...][;caller-entities=...] (repeatable)")
	f.StringVar(&o.out, "out", "", "write to FILE instead of stdout")
	_ = cmd.MarkFlagRequired("entity-id")
	_ = cmd.MarkFlagRequired("roles")
	_ = cmd.MarkFlagRequired("signing-cert")
	return cmd
}

// descriptor builds the participant's descriptor from the flags.
func (o *generateFlags) descriptor() (*metadata.EntityDescriptor, error) {
	ed := &metadata.EntityDescriptor{EntityID: o.entityID, DisplayName: o.displayName}
	for _, r := range o.roles {
		for _, part := range strings.Split(r, ",") {
			if part = strings.TrimSpace(part); part != "" {
				ed.Roles = append(ed.Roles, metadata.Role(part))
			}
		}
	}
	for _, k := range []struct {
		files []string
		use   metadata.KeyUse
		dst   *[]metadata.KeyDescriptor
	}{
		{o.signing, metadata.UseSigning, &ed.Keys},
		{o.encryption, metadata.UseEncryption, &ed.Keys},
		{o.tlsClient, metadata.UseTLSClient, &ed.TLSKeys},
		{o.tlsServer, metadata.UseTLSServer, &ed.TLSKeys},
	} {
		for _, f := range k.files {
			certs, err := saml.LoadCertificates(f)
			if err != nil {
				return nil, err
			}
			for _, c := range certs {
				*k.dst = append(*k.dst, metadata.KeyDescriptor{Use: k.use, Certificate: c})
			}
		}
	}
	for _, spec := range o.endpoints {
		e, err := parseEndpointSpec(spec)
		if err != nil {
			return nil, err
		}
		ed.Endpoints = append(ed.Endpoints, e)
	}
	for _, spec := range o.services {
		s, err := parseServiceSpec(spec)
		if err != nil {
			return nil, err
		}
		ed.Services = append(ed.Services, s)
	}
	return ed, nil
}

// serviceName expands a short service name (card:approve) to its URI.
func serviceName(s string) string {
	if s == metadata.AnyService || strings.HasPrefix(s, "urn:") {
		return s
	}
	return saml.ServicePrefix + s
}

func bindingName(s string) string {
	switch strings.ToLower(s) {
	case "soap":
		return saml.BindingSOAP
	case "post", "http-post":
		return saml.BindingHTTPPOST
	}
	return s
}

func parseEndpointSpec(spec string) (metadata.Endpoint, error) {
	parts := strings.Split(spec, "|")
	if len(parts) < 3 || len(parts) > 4 {
		return metadata.Endpoint{}, usagef("--endpoint %q: want SERVICE|BINDING|URL[|PRIORITY]", spec)
	}
	e := metadata.Endpoint{Service: serviceName(strings.TrimSpace(parts[0])), Binding: bindingName(strings.TrimSpace(parts[1])), Location: strings.TrimSpace(parts[2])}
	if len(parts) == 4 {
		p, err := strconv.Atoi(strings.TrimSpace(parts[3]))
		if err != nil {
			return e, usagef("--endpoint %q: priority %q is not a number", spec, parts[3])
		}
		e.Priority = p
	}
	return e, nil
}

func parseServiceSpec(spec string) (metadata.OfferedService, error) {
	parts := strings.Split(spec, ";")
	s := metadata.OfferedService{Service: serviceName(strings.TrimSpace(parts[0]))}
	for _, p := range parts[1:] {
		p = strings.TrimSpace(p)
		switch {
		case p == "":
		case strings.HasPrefix(p, "bins="):
			l, err := metadata.ParseBINList(strings.TrimPrefix(p, "bins="))
			if err != nil {
				return s, usagef("--service %q: %w", spec, err)
			}
			s.BINs = append(s.BINs, l...)
		case strings.HasPrefix(p, "callers="):
			for _, r := range strings.Split(strings.TrimPrefix(p, "callers="), ",") {
				if r = strings.TrimSpace(r); r != "" {
					s.Callers = append(s.Callers, metadata.Role(r))
				}
			}
		case strings.HasPrefix(p, "caller-entities="):
			for _, e := range strings.Split(strings.TrimPrefix(p, "caller-entities="), ",") {
				if e = strings.TrimSpace(e); e != "" {
					s.CallerEntities = append(s.CallerEntities, e)
				}
			}
		case strings.HasPrefix(p, "banks="):
			for _, b := range strings.Split(strings.TrimPrefix(p, "banks="), ",") {
				if b = strings.TrimSpace(b); b != "" {
					s.BankCodes = append(s.BankCodes, b)
				}
			}
		default:
			cur, rng, ok := strings.Cut(p, ":")
			lo, hi, ok2 := strings.Cut(rng, "-")
			if !ok || !ok2 {
				return s, usagef("--service %q: %q is neither CUR:MIN-MAX, bins=, banks=, callers= nor caller-entities=", spec, p)
			}
			min, err := ecml.ParseAmount(lo, cur)
			if err != nil {
				return s, usagef("--service %q: minimum: %w", spec, err)
			}
			max, err := ecml.ParseAmount(hi, cur)
			if err != nil {
				return s, usagef("--service %q: maximum: %w", spec, err)
			}
			s.Limits = append(s.Limits, metadata.Limit{Currency: cur, Min: min.Minor, Max: max.Minor})
		}
	}
	return s, nil
}

// readMetadataInput is readInput with the aggregate's size cap (an
// aggregate of a few thousand participants exceeds the tools' 16 MiB).
func readMetadataInput(cmd *cobra.Command, args []string) ([]byte, error) {
	var r io.Reader = cmd.InOrStdin()
	if len(args) > 0 && args[0] != "-" {
		f, err := os.Open(args[0])
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	return io.ReadAll(io.LimitReader(r, metadata.MaxAggregateBytes+1))
}

func writeOutput(cmd *cobra.Command, path string, data []byte) error {
	if path == "" || path == "-" {
		_, err := cmd.OutOrStdout().Write(data)
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

func parseNow(s string) (time.Time, error) {
	if s == "" {
		return time.Now().UTC(), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, usagef("--now: %v", err)
	}
	return t.UTC(), nil
}

// rootName returns the local name of the document's first element.
func rootName(data []byte) string {
	d := xml.NewDecoder(bytes.NewReader(data))
	for {
		tok, err := d.RawToken()
		if err != nil {
			return ""
		}
		if se, ok := tok.(xml.StartElement); ok {
			return se.Name.Local
		}
	}
}

// verifyMetadata verifies a signed EntityDescriptor or EntitiesDescriptor.
func verifyMetadata(data []byte, trusted []*x509.Certificate, now time.Time) (*metadata.Aggregate, bool, error) {
	if rootName(data) == "EntitiesDescriptor" {
		a, err := metadata.VerifyAggregate(data, trusted, now)
		return a, true, err
	}
	ed, err := metadata.VerifyEntity(data, trusted, now)
	if err != nil {
		return nil, false, err
	}
	return &metadata.Aggregate{ID: ed.ID, ValidUntil: ed.ValidUntil, CacheDuration: ed.CacheDuration, Entities: []*metadata.EntityDescriptor{ed}}, false, nil
}

func newMetadataVerifyCmd() *cobra.Command {
	var (
		trust   []string
		nowFlag string
	)
	cmd := &cobra.Command{
		Use:   "verify --trust HUBCERT [--now RFC3339] [FILE]",
		Short: "Verify hub-signed metadata and print a summary of its participants and keys",
		Long: `Verifies a hub-signed md:EntityDescriptor (as the Metadata Query endpoint
serves it) or md:EntitiesDescriptor aggregate against the hub's certificate:
the signature profile of KECIS §4, validUntil (required, after --now), then
every descriptor strictly. Prints each participant with its roles, endpoints
and services, and every certificate with its use, SHA-256 fingerprint, key
and expiry. Exits 1 when the document does not verify.`,
		Example: `  kecis metadata verify --trust hub-cert.pem pg.xml
  kecis metadata verify --trust hub-old.pem --trust hub-new.pem --now 2026-11-22T10:00:00Z federation.xml`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			certs, err := saml.LoadCertificates(trust...)
			if err != nil {
				return err
			}
			now, err := parseNow(nowFlag)
			if err != nil {
				return err
			}
			data, err := readMetadataInput(cmd, args)
			if err != nil {
				return err
			}
			a, isAggregate, err := verifyMetadata(data, certs, now)
			if err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), "refused:", err)
				return fail(1, nil)
			}
			printSummary(cmd.OutOrStdout(), a, isAggregate, now)
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&trust, "trust", nil, "the hub's PEM certificate (repeat during the hub's key rollover)")
	cmd.Flags().StringVar(&nowFlag, "now", "", "the clock, RFC 3339 (default: now)")
	_ = cmd.MarkFlagRequired("trust")
	return cmd
}

func printSummary(w io.Writer, a *metadata.Aggregate, isAggregate bool, now time.Time) {
	kind := "md:EntityDescriptor"
	if isAggregate {
		kind = "md:EntitiesDescriptor"
	}
	fmt.Fprintf(w, "verified %s ID=%s", kind, a.ID)
	if a.Name != "" {
		fmt.Fprintf(w, " Name=%s", a.Name)
	}
	fmt.Fprintf(w, ", valid until %s (%s left)", a.ValidUntil.UTC().Format(time.RFC3339), a.ValidUntil.Sub(now).Round(time.Second))
	if a.CacheDuration > 0 {
		fmt.Fprintf(w, ", cacheDuration %s", metadata.FormatDuration(a.CacheDuration))
	}
	fmt.Fprintf(w, "\nentities: %d\n", len(a.Entities))
	for _, id := range a.Expired {
		fmt.Fprintf(w, "expired (left out): %s\n", id)
	}
	for _, ed := range a.Entities {
		roles := make([]string, len(ed.Roles))
		for i, r := range ed.Roles {
			roles[i] = string(r)
		}
		fmt.Fprintf(w, "\n%s", ed.EntityID)
		if ed.DisplayName != "" {
			fmt.Fprintf(w, " %q", ed.DisplayName)
		}
		fmt.Fprintf(w, "\n  roles: %s; %d endpoints; services: %d\n", strings.Join(roles, " "), len(ed.Endpoints), len(ed.Services))
		for _, k := range append(append([]metadata.KeyDescriptor{}, ed.Keys...), ed.TLSKeys...) {
			use := string(k.Use)
			if k.Use == metadata.UseTLSClient || k.Use == metadata.UseTLSServer {
				use = "tls-" + use
			}
			c := k.Certificate
			note := ""
			switch {
			case now.After(c.NotAfter):
				note = " EXPIRED"
			case now.Before(c.NotBefore):
				note = " NOT YET VALID"
			case c.NotAfter.Sub(now) < 30*24*time.Hour:
				note = " expires within 30 days"
			}
			fmt.Fprintf(w, "  %-10s %s %-10s expires %s%s\n", use, saml.Fingerprint(c), keyDesc(c), c.NotAfter.UTC().Format(time.DateOnly), note)
		}
	}
}

func keyDesc(c *x509.Certificate) string {
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA-%d", k.N.BitLen())
	case *ecdsa.PublicKey:
		return "EC-" + k.Curve.Params().Name
	}
	return fmt.Sprintf("%T", c.PublicKey)
}

// exportFlags are the flags of kecis metadata export.
type exportFlags struct {
	hubURL, entity, out, nowFlag, hubTLS string
	trust                                []string
	timeout                              time.Duration
}

func newMetadataExportCmd() *cobra.Command {
	var o exportFlags
	cmd := &cobra.Command{
		Use:   "export --hub URL --trust HUBCERT [--entity ID] [--out FILE]",
		Short: "Fetch hub-signed metadata, verify it and write it as received",
		Long: `Fetches one participant's descriptor (--entity, through the Metadata Query
endpoint GET /kecis/metadata/entities/{id}) or the whole aggregate (GET
/kecis/metadata), verifies it against the hub's certificate like
'kecis metadata verify', and writes the signed document exactly as received,
so that it can be verified again later (evidence, offline use). A summary
goes to stderr. Nothing is written when verification fails.`,
		Example: `  kecis metadata export --hub https://hub.example --trust hub-cert.pem --out federation.xml
  kecis metadata export --hub https://hub.example --trust hub-cert.pem --entity https://pg.example/kecis --out pg.xml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd) },
	}
	f := cmd.Flags()
	f.StringVar(&o.hubURL, "hub", "", "the hub's base URL")
	f.StringArrayVar(&o.trust, "trust", nil, "the hub's PEM certificate (repeat during the hub's key rollover)")
	f.StringVar(&o.entity, "entity", "", "one participant's entityID (default: the aggregate)")
	f.StringVar(&o.out, "out", "", "write to FILE instead of stdout")
	f.StringVar(&o.nowFlag, "now", "", "the clock, RFC 3339 (default: now)")
	f.DurationVar(&o.timeout, "timeout", 30*time.Second, "HTTP timeout")
	f.StringVar(&o.hubTLS, "hub-tls-cert", "", "pin the hub's TLS server certificate (PEM) instead of trusting the system roots")
	_ = cmd.MarkFlagRequired("hub")
	_ = cmd.MarkFlagRequired("trust")
	return cmd
}

// run fetches and verifies the descriptor or the aggregate through
// metadata.Client, the one fetch-and-verify path of the federation's
// participants (KECIS §11.2: the pinned hub certificates, validUntil, the
// descriptor of the entity asked for), and writes the document exactly as
// the hub sent it, which the Client's transport keeps (keepBody): the
// Client hands out what it parsed, the evidence is the bytes.
func (o *exportFlags) run(cmd *cobra.Command) error {
	certs, err := saml.LoadCertificates(o.trust...)
	if err != nil {
		return err
	}
	now, err := parseNow(o.nowFlag)
	if err != nil {
		return err
	}
	hc := &http.Client{Timeout: o.timeout}
	if o.hubTLS != "" {
		if hc, err = (&hubClientFlags{hubTLSCert: o.hubTLS, timeout: o.timeout}).client(); err != nil {
			return err
		}
	}
	kept := &keepBody{base: hc.Transport}
	hc.Transport = kept
	mc := &metadata.Client{HubURL: o.hubURL, HubCerts: certs, HTTP: hc, Now: func() time.Time { return now }}
	ctx, cancel := context.WithTimeout(cmd.Context(), o.timeout)
	defer cancel()
	var (
		entities   int
		validUntil time.Time
	)
	if o.entity != "" {
		var ed *metadata.EntityDescriptor
		if ed, err = mc.Lookup(ctx, o.entity); err == nil {
			entities, validUntil = 1, ed.ValidUntil
		}
	} else {
		var a *metadata.Aggregate
		if a, err = mc.Aggregate(ctx); err == nil {
			entities, validUntil = len(a.Entities), a.ValidUntil
		}
	}
	switch {
	case errors.Is(err, saml.ErrUnknownEntity):
		return fmt.Errorf("%s is not an active participant of the hub (HTTP 404)", o.entity)
	case err != nil && kept.status == http.StatusOK:
		// The hub answered and the answer does not verify.
		fmt.Fprintln(cmd.ErrOrStderr(), "refused:", err)
		return fail(exitFailed, nil)
	case err != nil:
		return err
	}
	if err := writeOutput(cmd, o.out, kept.body.Bytes()); err != nil {
		return err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "exported %d entities (%d bytes), verified, valid until %s\n", entities, kept.body.Len(), validUntil.UTC().Format(time.RFC3339))
	return nil
}

// keepBody is an http.RoundTripper that keeps the status and the body of
// the one response metadata.Client reads, as the Client reads it.
type keepBody struct {
	base   http.RoundTripper
	status int
	body   bytes.Buffer
}

func (k *keepBody) RoundTrip(req *http.Request) (*http.Response, error) {
	base := k.base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	k.status = resp.StatusCode
	k.body.Reset()
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.TeeReader(resp.Body, &k.body), resp.Body}
	return resp, nil
}

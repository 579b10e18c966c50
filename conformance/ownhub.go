package conformance

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kecis/kecis/internal/devpki"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// OwnHubEntityID is the entityID of the hub the suite runs itself.
const OwnHubEntityID = "https://conformance-hub.kecis.test/kecis"

// OwnHub is a test federation's hub the suite runs itself — `kecis serve`
// as a process — for a participant that has no sandbox hub. The suite
// treats it as the black box it is: it writes its configuration, runs the
// binary, and registers the run's participants through the hub's API as
// their registrant and its operator (Start), never through its store. Its
// keys, configuration, database and log live in Dir; the keys are kept
// between runs, so that the participant under test is configured once to
// trust the hub's two certificates (SigningCert, TLSCert).
type OwnHub struct {
	Dir string
	// Exe is the kecis binary (default: this program).
	Exe string
	// Now is the clock of the keys' validity (default time.Now).
	Now func() time.Time

	cmd  *exec.Cmd
	log  *os.File
	wait chan error
	ops  string
	once sync.Once
}

// SigningCert and TLSCert are the paths of the hub's certificates.
func (h *OwnHub) SigningCert() string { return filepath.Join(h.Dir, "signing", "cert.pem") }

// TLSCert is the hub's TLS certificate (server, and client when it calls
// the participant).
func (h *OwnHub) TLSCert() string { return filepath.Join(h.Dir, "tls", "cert.pem") }

// EnsureKeys creates the hub's keys unless they exist.
func (h *OwnHub) EnsureKeys() error {
	now := time.Now()
	if h.Now != nil {
		now = h.Now()
	}
	if _, err := devpki.Ensure(filepath.Join(h.Dir, "signing"), devpki.Signing, "KECIS conformance hub signing", nil, now); err != nil {
		return fmt.Errorf("own hub: %w", err)
	}
	if _, err := devpki.Ensure(filepath.Join(h.Dir, "tls"), devpki.TLSServer, "KECIS conformance hub", devpki.LoopbackHosts, now); err != nil {
		return fmt.Errorf("own hub: %w", err)
	}
	return nil
}

// TesterMetadata is the tester's descriptor, role tester, from its keys.
func TesterMetadata(t *Tester) ([]byte, error) {
	if len(t.TLS.Certificate) == 0 {
		return nil, errors.New("the tester has no TLS client certificate")
	}
	tlsCert, err := x509.ParseCertificate(t.TLS.Certificate[0])
	if err != nil {
		return nil, err
	}
	return metadata.Marshal(&metadata.EntityDescriptor{EntityID: t.EntityID, DisplayName: "KECIS conformance suite",
		Roles: []metadata.Role{metadata.RoleTester},
		Keys: []metadata.KeyDescriptor{{Use: metadata.UseSigning, Certificate: t.Signer.Cert},
			{Use: metadata.UseEncryption, Certificate: t.EncCert}},
		TLSKeys: []metadata.KeyDescriptor{{Use: metadata.UseTLSClient, Certificate: tlsCert}},
	})
}

// IdentitiesMetadata are the descriptors of the profile's other
// identities — the second (role tester) and the outsider (its roles in the
// profile; left out without them) — for a hub the suite runs itself to
// register beside the tester, so that a participant verifying through it
// knows them.
func (p *Profile) IdentitiesMetadata() ([][]byte, error) {
	var out [][]byte
	for _, name := range []string{"second", "outsider"} {
		id, err := p.LoadIdentity(name)
		if err != nil || id == nil {
			if err != nil {
				return nil, err
			}
			continue
		}
		roles := []metadata.Role{metadata.RoleTester}
		if name == "outsider" {
			if len(p.Outsider.Roles) == 0 {
				continue
			}
			roles = roles[:0]
			for _, r := range p.Outsider.Roles {
				roles = append(roles, metadata.Role(r))
			}
		}
		ed := &metadata.EntityDescriptor{EntityID: id.EntityID, DisplayName: "KECIS conformance suite (" + name + ")", Roles: roles,
			Keys: []metadata.KeyDescriptor{{Use: metadata.UseSigning, Certificate: id.Signer.Cert}}}
		if id.EncCert != nil {
			ed.Keys = append(ed.Keys, metadata.KeyDescriptor{Use: metadata.UseEncryption, Certificate: id.EncCert})
		}
		md, err := metadata.Marshal(ed)
		if err != nil {
			return nil, fmt.Errorf("the %s identity's metadata: %w", name, err)
		}
		out = append(out, md)
	}
	return out, nil
}

// Start writes the hub's configuration (loopback ports chosen now, an
// empty database, open registration, the suite as its operator), starts
// `kecis serve`, waits until it is ready, and registers and activates the
// participants (their metadata) through the hub's own API, as participants
// and an operator would (KECIS §12.6; see enrol). creds are the TLS client
// certificates the suite holds (the tester's): a participant whose metadata
// publishes one registers over it. Close stops the hub.
//
// Each run starts from an empty database: the participants are registered
// afresh, so that what the hub publishes is what this run was given. Only
// the keys are kept between runs.
func (h *OwnHub) Start(ctx context.Context, creds []tls.Certificate, participants ...[]byte) (*HubConfig, error) {
	if err := h.freshDatabase(); err != nil {
		return nil, err
	}
	if err := h.EnsureKeys(); err != nil {
		return nil, err
	}
	signing, err := saml.LoadCertificates(h.SigningCert())
	if err != nil {
		return nil, err
	}
	tlsCerts, err := saml.LoadCertificates(h.TLSCert())
	if err != nil {
		return nil, err
	}
	// The operator is the suite, for this run only: its key stays in
	// memory and the configuration names its fingerprint.
	operator, err := h.clientCert("KECIS conformance suite (operator)")
	if err != nil {
		return nil, err
	}
	listen, err := freeAddr()
	if err != nil {
		return nil, err
	}
	ops, err := freeAddr()
	if err != nil {
		return nil, err
	}
	h.ops = "http://" + ops
	cfg := fmt.Sprintf(ownHubHeader+`
entity_id: %s
listen: %s
ops_listen: %s
public_url: https://%[2]s
tls: {cert: tls/cert.pem, key: tls/key.pem}
signing: {cert: signing/cert.pem, key: signing/key.pem}
database: {dsn: "sqlite:hub.db"}
log: {level: info, format: json}
open_registration: true
operators: [{name: "kecis conformance run", cert_sha256: "%[4]s"}]
`, OwnHubEntityID, listen, ops, saml.Fingerprint(operator.Leaf))
	cfgPath := filepath.Join(h.Dir, "hub.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	exe := h.Exe
	if exe == "" {
		if exe, err = os.Executable(); err != nil {
			return nil, err
		}
	}
	if h.log, err = os.OpenFile(filepath.Join(h.Dir, "hub.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err != nil {
		return nil, err
	}
	h.cmd = exec.Command(exe, "serve", "--config", cfgPath)
	h.cmd.Stdout, h.cmd.Stderr = h.log, h.log
	// The configuration written above is the whole of it: KECIS_*
	// overrides of the caller's shell (a database, a listen address)
	// must not reach this hub.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KECIS_") {
			h.cmd.Env = append(h.cmd.Env, kv)
		}
	}
	h.cmd.SysProcAttr = dieWithParent()
	if err := h.cmd.Start(); err != nil {
		h.log.Close()
		return nil, fmt.Errorf("own hub: start %s serve: %w", exe, err)
	}
	h.wait = make(chan error, 1)
	go func() { h.wait <- h.cmd.Wait() }()
	if err := h.ready(ctx, 30*time.Second); err != nil {
		name := h.log.Name()
		h.Close()
		return nil, fmt.Errorf("own hub: %w (its log: %s)", err, name)
	}
	hub := &HubConfig{URL: "https://" + listen, EntityID: OwnHubEntityID, SigningCerts: signing, TLSCerts: tlsCerts}
	for _, md := range participants {
		if err := h.enrol(ctx, hub, operator, creds, md); err != nil {
			h.Close()
			return nil, fmt.Errorf("own hub: %w", err)
		}
	}
	return hub, nil
}

// ownHubHeader opens the configuration the suite writes; a Dir whose
// hub.yaml lacks it is not the suite's.
const ownHubHeader = "# Written by kecis conformance run --own-hub: the suite's own hub."

// freshDatabase removes the database of an earlier run, refusing a
// directory the suite did not make: one whose hub.yaml it did not write,
// or a database without a hub.yaml of the suite's beside it (a real hub's
// directory given by mistake).
func (h *OwnHub) freshDatabase() error {
	db := filepath.Join(h.Dir, "hub.db")
	cfg, err := os.ReadFile(filepath.Join(h.Dir, "hub.yaml"))
	switch {
	case err == nil && !bytes.HasPrefix(cfg, []byte(ownHubHeader)):
		return fmt.Errorf("own hub: %s holds a hub.yaml the suite did not write; give --own-hub a directory of its own", h.Dir)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("own hub: %w", err)
	case err != nil:
		if _, serr := os.Stat(db); serr == nil {
			return fmt.Errorf("own hub: %s holds a hub.db the suite did not make; give --own-hub a directory of its own", h.Dir)
		}
	}
	for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
		if err := os.Remove(db + suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("own hub: a fresh database: %w", err)
		}
	}
	return nil
}

// enrol registers a participant's metadata through the hub's API and has
// the operator approve it (KECIS §12.6). Registration must come over a TLS
// client certificate the metadata publishes. When the suite holds one
// (creds: the tester's), the participant registers over it, as it would
// itself. Otherwise — the participant under test, whose key the suite does
// not hold, and the profile's other identities, which have none — the suite
// registers the descriptor with a registration certificate of its own added
// (made now, used once) and, over that certificate, replaces the pending
// registration with the metadata as given (an update of a participant
// still pending replaces its registration): the operator approves, and the
// hub publishes, exactly the participant's document, which names no key of
// the suite's.
func (h *OwnHub) enrol(ctx context.Context, hub *HubConfig, operator tls.Certificate, creds []tls.Certificate, md []byte) error {
	ed, err := metadata.Parse(md)
	if err != nil {
		return fmt.Errorf("register a participant: its metadata: %w", err)
	}
	const path = "/kecis/federation/participants"
	var own *tls.Certificate
	for i, c := range creds {
		if len(c.Certificate) > 0 && slices.ContainsFunc(ed.TLSClientCertificates(), func(p *x509.Certificate) bool {
			return bytes.Equal(p.Raw, c.Certificate[0])
		}) {
			own = &creds[i]
			break
		}
	}
	if own != nil {
		if err := h.call(ctx, hub, *own, http.MethodPost, path, metadata.MediaType, md, http.StatusCreated); err != nil {
			return fmt.Errorf("register %s: %w", ed.EntityID, err)
		}
	} else {
		reg, err := h.clientCert("KECIS conformance suite (registration of " + ed.EntityID + ")")
		if err != nil {
			return err
		}
		withReg := *ed
		withReg.TLSKeys = append(slices.Clone(ed.TLSKeys), metadata.KeyDescriptor{Use: metadata.UseTLSClient, Certificate: reg.Leaf})
		first, err := metadata.Marshal(&withReg)
		if err != nil {
			return fmt.Errorf("register %s: %w", ed.EntityID, err)
		}
		if err := h.call(ctx, hub, reg, http.MethodPost, path, metadata.MediaType, first, http.StatusCreated); err != nil {
			return fmt.Errorf("register %s: %w", ed.EntityID, err)
		}
		if err := h.call(ctx, hub, reg, http.MethodPut, path+"?entity_id="+url.QueryEscape(ed.EntityID), metadata.MediaType, md, http.StatusOK); err != nil {
			return fmt.Errorf("register %s: its metadata as given: %w", ed.EntityID, err)
		}
	}
	body, err := json.Marshal(map[string]string{"entity_id": ed.EntityID, "reason": "kecis conformance run --own-hub: a participant of the run"})
	if err != nil {
		return err
	}
	if err := h.call(ctx, hub, operator, http.MethodPost, "/kecis/admin/participants/approve", "application/json", body, http.StatusOK); err != nil {
		return fmt.Errorf("approve %s: %w", ed.EntityID, err)
	}
	return nil
}

// clientCert makes a TLS client certificate of the suite's, kept in
// memory.
func (h *OwnHub) clientCert(name string) (tls.Certificate, error) {
	now := time.Now()
	if h.Now != nil {
		now = h.Now()
	}
	keyPEM, certPEM, err := devpki.Generate(devpki.TLSClient, name, nil, now)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("own hub: %w", err)
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err == nil {
		c.Leaf, err = x509.ParseCertificate(c.Certificate[0])
	}
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("own hub: %w", err)
	}
	return c, nil
}

// call sends a request to the hub's API over cert, pinning the hub's TLS
// certificate, and wants the status want; another answer is an error with
// the hub's problem (its title and detail).
func (h *OwnHub) call(ctx context.Context, hub *HubConfig, cert tls.Certificate, method, path, contentType string, body []byte, want int) error {
	req, err := http.NewRequestWithContext(ctx, method, hub.URL+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", contentType)
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: saml.PinnedTLS(cert, hub.TLSCerts), DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode == want {
		return nil
	}
	var p struct{ Title, Detail string }
	if json.Unmarshal(b, &p) == nil && p.Title != "" {
		if p.Detail != "" {
			return fmt.Errorf("the hub answered %d: %s (%s)", resp.StatusCode, p.Title, p.Detail)
		}
		return fmt.Errorf("the hub answered %d: %s", resp.StatusCode, p.Title)
	}
	return fmt.Errorf("the hub answered %d, not %d: %s", resp.StatusCode, want, firstLineOf(b))
}

// ready polls /readyz until the hub answers 200, it exits, or the time is
// up.
func (h *OwnHub) ready(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	c := &http.Client{Timeout: 2 * time.Second}
	var last string
	for time.Now().Before(deadline) {
		select {
		case err := <-h.wait:
			h.wait <- err
			return fmt.Errorf("kecis serve exited: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		resp, err := c.Get(h.ops + "/readyz")
		if err != nil {
			last = err.Error()
			continue
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return nil
		}
		last = strings.TrimSpace(string(bytes.ToValidUTF8(b, nil)))
	}
	return fmt.Errorf("not ready after %s: %s", limit, last)
}

// Close stops the hub (SIGINT: a graceful shutdown; killed after 10 s).
func (h *OwnHub) Close() error {
	var err error
	h.once.Do(func() {
		if h.cmd == nil || h.cmd.Process == nil {
			return
		}
		_ = h.cmd.Process.Signal(os.Interrupt)
		select {
		case err = <-h.wait:
		case <-time.After(10 * time.Second):
			_ = h.cmd.Process.Kill()
			err = <-h.wait
		}
		h.log.Close()
		var ee *exec.ExitError
		if errors.As(err, &ee) && !ee.Exited() {
			err = nil // ended by the signal
		}
	})
	return err
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

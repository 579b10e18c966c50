package conformance

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/kecis/kecis/federation/server"
	"github.com/kecis/kecis/federation/store/sqlstore"
	"github.com/kecis/kecis/internal/devpki"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// OwnHubEntityID is the entityID of the hub the suite runs itself.
const OwnHubEntityID = "https://conformance-hub.kecis.test/kecis"

// OwnHub is a test federation's hub the suite runs itself — `kecis serve`
// as a process — for a participant that has no sandbox hub (issue 9,
// item 3). Its keys, configuration, database and log live in Dir and are
// kept between runs, so that the participant under test is configured
// once to trust the hub's two certificates (SigningCert, TLSCert).
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

// Start writes the hub's configuration (loopback ports chosen now),
// registers the participants (their metadata) as active in its database,
// starts `kecis serve` and waits until it is ready. Close stops it.
func (h *OwnHub) Start(ctx context.Context, participants ...[]byte) (*HubConfig, error) {
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
	dbPath := filepath.Join(h.Dir, "hub.db")
	st, err := sqlstore.Open(ctx, "sqlite:"+dbPath)
	if err != nil {
		return nil, fmt.Errorf("own hub: %w", err)
	}
	for _, md := range participants {
		if err := server.SeedActive(ctx, st, md, time.Now()); err != nil {
			st.Close()
			return nil, fmt.Errorf("own hub: register a participant: %w", err)
		}
	}
	if err := st.Close(); err != nil {
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
	cfg := fmt.Sprintf(`# Written by kecis conformance run --own-hub: the suite's own hub.
entity_id: %s
listen: %s
ops_listen: %s
public_url: https://%[2]s
tls: {cert: tls/cert.pem, key: tls/key.pem}
signing: {cert: signing/cert.pem, key: signing/key.pem}
database: {dsn: "sqlite:hub.db"}
log: {level: info, format: json}
`, OwnHubEntityID, listen, ops)
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
	return &HubConfig{URL: "https://" + listen, EntityID: OwnHubEntityID, SigningCerts: signing, TLSCerts: tlsCerts}, nil
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

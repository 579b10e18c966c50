package demo

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kecis/kecis/connectors/httpserver"
	"github.com/kecis/kecis/federation/server"
	"github.com/kecis/kecis/internal/devpki"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// What the start steps share: the participants' keys and secrets under
// Config.Dir, listeners, servers and background loops that Close undoes,
// and registration at the hub.

// path is a path under Config.Dir.
func (d *Demo) path(parts ...string) string {
	return filepath.Join(append([]string{d.cfg.Dir}, parts...)...)
}

// onClose hands Close what undoes something just started.
func (d *Demo) onClose(f func()) { d.closers = append(d.closers, f) }

type keyset struct {
	dir  string
	tls  tls.Certificate
	cert *x509.Certificate
}

// load reads the key pair in dir (cert.pem, key.pem).
func load(dir string) (keyset, error) {
	kp, err := tls.LoadX509KeyPair(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	if err != nil {
		return keyset{}, err
	}
	c, err := x509.ParseCertificate(kp.Certificate[0])
	return keyset{dir: dir, tls: kp, cert: c}, err
}

func (k keyset) signer() (*saml.Signer, error) {
	return saml.NewSigner(k.tls.PrivateKey.(crypto.Signer), k.cert)
}

func (k keyset) decryption() []saml.DecryptionKey {
	return []saml.DecryptionKey{{Cert: k.cert, Key: k.tls.PrivateKey.(crypto.Decrypter)}}
}

// party is a participant's keys: signing, encryption (none for the hub)
// and TLS (a server's or a client's).
type party struct{ signing, encryption, tls keyset }

// keys are the participant's keys under Config.Dir/dir — signing/,
// encryption/ when it decrypts, tls/ of tlsKind — generated on first run.
func (d *Demo) keys(dir string, encryption bool, tlsKind devpki.Kind) (party, error) {
	var p party
	for _, k := range []struct {
		sub  string
		kind devpki.Kind
		ks   *keyset
		want bool
	}{{"signing", devpki.Signing, &p.signing, true}, {"encryption", devpki.Encryption, &p.encryption, encryption}, {"tls", tlsKind, &p.tls, true}} {
		if !k.want {
			continue
		}
		kd := d.path(dir, k.sub)
		if _, err := devpki.Ensure(kd, k.kind, "KECIS demo "+dir+"/"+k.sub, devpki.LoopbackHosts, time.Now()); err != nil {
			return party{}, err
		}
		var err error
		if *k.ks, err = load(kd); err != nil {
			return party{}, err
		}
	}
	return p, nil
}

// client is the descriptor of a participant that only calls: a merchant or
// a tester, with its signing and encryption keys and its TLS client
// certificate.
func (p party) client(entityID, name string, role metadata.Role) *metadata.EntityDescriptor {
	return &metadata.EntityDescriptor{EntityID: entityID, DisplayName: name, Roles: []metadata.Role{role},
		Keys:    []metadata.KeyDescriptor{{Use: metadata.UseSigning, Certificate: p.signing.cert}, {Use: metadata.UseEncryption, Certificate: p.encryption.cert}},
		TLSKeys: []metadata.KeyDescriptor{{Use: metadata.UseTLSClient, Certificate: p.tls.cert}},
	}
}

// secret reads a random secret kept in the state directory, making it on
// first run.
func secret(path string, n int) ([]byte, error) {
	if b, err := os.ReadFile(path); err == nil && len(b) == 2*n {
		return hex.DecodeString(string(b))
	}
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	return b, os.WriteFile(path, []byte(hex.EncodeToString(b)), 0o600)
}

// listen binds addr ("" picks a free loopback port) and sets *url to the
// scheme and the address actually bound: the hub's public URL, every
// participant's metadata and every configuration carry it (port 0 picks a
// free port, so that several demos run side by side).
func (d *Demo) listen(what, addr, scheme string, url *string) (net.Listener, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	d.onClose(func() { l.Close() })
	*url = scheme + "://" + reachable(l.Addr())
	return l, nil
}

// reachable is the host:port a client dials for a bound listener: a
// wildcard address (":0", "0.0.0.0:8443") is reached on loopback, which the
// demo's TLS certificates name.
func reachable(a net.Addr) string {
	t, ok := a.(*net.TCPAddr)
	if !ok || !t.IP.IsUnspecified() {
		return a.String()
	}
	ip := net.IPv6loopback
	if t.IP.To4() != nil {
		ip = net.IPv4(127, 0, 0, 1)
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(t.Port))
}

// serve runs an HTTP(S) server on l until Close, under the limits of a
// SOAP endpoint: the issuer's KECIS endpoint is one, and they also cover
// the native APIs (the PG's calls the issuer for up to its gateway timeout)
// and the phone pages.
func (d *Demo) serve(l net.Listener, h http.Handler, tc *tls.Config) {
	srv := httpserver.New(h, httpserver.Limits{WriteTimeout: httpserver.SOAPWriteTimeout, MaxBodyBytes: httpserver.SOAPMaxBodyBytes}, nil)
	srv.TLSConfig = tc
	go func() {
		if tc != nil {
			_ = srv.ServeTLS(l, "", "")
		} else {
			_ = srv.Serve(l)
		}
	}()
	d.onClose(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
}

// background runs loop until Close, which cancels its context and waits
// for it to return.
func (d *Demo) background(loop func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = loop(ctx)
	}()
	d.onClose(func() { cancel(); <-done })
}

// register stores a participant as active (the operator's approval is
// implied in the demo), or updates it when its metadata changed, and has
// the hub publish it.
func (d *Demo) register(ctx context.Context, ed *metadata.EntityDescriptor) error {
	md, err := metadata.Marshal(ed)
	if err != nil {
		return err
	}
	if err := server.SeedActive(ctx, d.HubStore, md, time.Now()); err != nil {
		return err
	}
	d.Hub.RegistryChanged()
	return nil
}

// alreadyThere reports an error of a simulated company's API saying that
// what the demo creates on every run exists from an earlier one.
func alreadyThere(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "exists") || strings.Contains(err.Error(), "already"))
}

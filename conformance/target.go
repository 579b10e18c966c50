package conformance

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// Target is the participant under test, as its metadata describes it.
type Target struct {
	// Source is the file or URL the metadata came from.
	Source string
	// Raw is the document as read.
	Raw []byte
	// Descriptor is the parsed descriptor; nil when it could not be read
	// (the metadata module reports why).
	Descriptor *metadata.EntityDescriptor
	// Signed reports a hub signature that verified; SignErr why it did
	// not (or that there was none).
	Signed  bool
	SignErr error
	// ParseErr is why the descriptor could not be read.
	ParseErr error
}

// EntityID is the participant's entityID (empty when unreadable).
func (t *Target) EntityID() string {
	if t.Descriptor == nil {
		return ""
	}
	return t.Descriptor.EntityID
}

// LoadTarget reads a participant's metadata from a file or an http(s) URL
// (the hub's Metadata Query URL, typically). A document signed by the hub
// is verified against hubCerts; an unsigned one is read as is (the
// metadata module warns). A URL is fetched with hc (nil: a client pinning
// nothing is not used — pass the hub-pinned client). It fails only when
// the document cannot be obtained at all; a document that does not parse
// is returned with ParseErr set, so that the metadata module reports it.
func LoadTarget(ctx context.Context, src string, hubCerts []*x509.Certificate, hc *http.Client, now time.Time) (*Target, error) {
	t := &Target{Source: src}
	var err error
	if strings.HasPrefix(src, "https://") || strings.HasPrefix(src, "http://") {
		t.Raw, err = fetch(ctx, src, hc)
	} else {
		t.Raw, err = os.ReadFile(src)
	}
	if err != nil {
		return nil, fmt.Errorf("target metadata: %w", err)
	}
	t.read(hubCerts, now)
	return t, nil
}

// TargetFromBytes reads metadata already in memory (tests).
func TargetFromBytes(src string, data []byte, hubCerts []*x509.Certificate, now time.Time) *Target {
	t := &Target{Source: src, Raw: data}
	t.read(hubCerts, now)
	return t
}

func (t *Target) read(hubCerts []*x509.Certificate, now time.Time) {
	if bytes.Contains(t.Raw, []byte(metadata.NSDSig)) && bytes.Contains(t.Raw, []byte("Signature")) {
		if len(hubCerts) == 0 {
			t.SignErr = fmt.Errorf("the metadata is signed, but no hub signing certificate is configured to verify it")
			t.ParseErr = t.SignErr
			return
		}
		ed, err := metadata.VerifyEntity(t.Raw, hubCerts, now)
		if err != nil {
			t.SignErr, t.ParseErr = err, err
			return
		}
		t.Descriptor, t.Signed = ed, true
		return
	}
	t.SignErr = fmt.Errorf("the metadata carries no signature")
	ed, err := metadata.Parse(t.Raw)
	if err != nil {
		t.ParseErr = err
		return
	}
	t.Descriptor = ed
}

func fetch(ctx context.Context, url string, hc *http.Client) ([]byte, error) {
	if hc == nil {
		hc = &http.Client{Timeout: 20 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", metadata.MediaType)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, metadata.MaxEntityBytes+1))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: HTTP %d", url, resp.StatusCode)
	}
	return b, nil
}

// HubMetadataClient is an HTTP client that pins the hub's TLS certificate,
// for fetching metadata from it.
func HubMetadataClient(h *HubConfig) *http.Client {
	if h == nil {
		return nil
	}
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: saml.PinnedTLS(emptyTLS, h.TLSCerts)}}
}

// MDQURL is the hub's Metadata Query URL for entityID.
func MDQURL(hubURL, entityID string) string {
	return strings.TrimRight(hubURL, "/") + metadata.EntitiesPath + metadata.EncodeMDQ(entityID)
}

package server

import (
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kecis/kecis/federation/registry"
	"github.com/kecis/kecis/federation/store"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// MetadataPublisher is the Publisher over saml/metadata: it re-reads
// each participant's registered descriptor, bounds it (validUntil,
// cacheDuration) and signs it with the hub's key.
type MetadataPublisher struct {
	Signer *saml.Signer
	// Name is the aggregate's md:EntitiesDescriptor/@Name.
	Name string
	// Hub is the hub's own descriptor, first in the aggregate and served by
	// MDQ like any participant's.
	Hub *metadata.EntityDescriptor
}

var _ Publisher = (*MetadataPublisher)(nil)

// Entity implements Publisher.
func (m *MetadataPublisher) Entity(p *store.Participant, validUntil time.Time, cacheDuration time.Duration) ([]byte, error) {
	ed, err := metadata.Parse(p.Metadata)
	if err != nil {
		return nil, fmt.Errorf("stored metadata of %s: %w", p.EntityID, err)
	}
	ed.ID, ed.ValidUntil, ed.CacheDuration = "", validUntil, cacheDuration
	return metadata.SignEntity(ed, m.Signer)
}

// Aggregate implements Publisher.
func (m *MetadataPublisher) Aggregate(ps []*store.Participant, validUntil time.Time, cacheDuration time.Duration) ([]byte, error) {
	eds := make([]*metadata.EntityDescriptor, 0, len(ps)+1)
	if m.Hub != nil {
		h := *m.Hub
		eds = append(eds, &h)
	}
	for _, p := range ps {
		ed, err := metadata.Parse(p.Metadata)
		if err != nil {
			return nil, fmt.Errorf("stored metadata of %s: %w", p.EntityID, err)
		}
		ed.ID, ed.ValidUntil, ed.CacheDuration = "", time.Time{}, 0
		eds = append(eds, ed)
	}
	id, err := saml.IDSource{}.NewID()
	if err != nil {
		return nil, err
	}
	return metadata.BuildAggregate(eds, m.Name, id, validUntil, cacheDuration, m.Signer)
}

// DecodeID implements Publisher: a percent-encoded entityID, or the
// {sha1} transformed identifier matched against the candidates.
func (m *MetadataPublisher) DecodeID(segment string, candidates func() ([]string, error)) (string, error) {
	id, transformed, err := metadata.DecodeMDQ(segment)
	if err != nil {
		return "", err
	}
	if !transformed {
		return id, nil
	}
	ids, err := candidates()
	if err != nil {
		return "", err
	}
	for _, c := range ids {
		if metadata.MatchesMDQ(id, c) {
			return c, nil
		}
	}
	return "", errors.New("no participant with that identifier")
}

// Describe turns submitted metadata into the registry's record
// (registry.DescribeMetadata); it is what New's callers inject.
func Describe(md []byte) (*store.Participant, error) { return registry.DescribeMetadata(md) }

// HubDescriptor is the hub's own metadata: its signing certificate, its
// TLS server and client certificates, and its router endpoint.
func HubDescriptor(entityID, publicURL string, signing, tlsServer, tlsClient *x509.Certificate) *metadata.EntityDescriptor {
	ed := &metadata.EntityDescriptor{
		EntityID: entityID, DisplayName: "KECIS hub", Roles: []metadata.Role{metadata.RoleHub},
		Keys:      []metadata.KeyDescriptor{{Use: metadata.UseSigning, Certificate: signing}},
		TLSKeys:   []metadata.KeyDescriptor{{Use: metadata.UseTLSServer, Certificate: tlsServer}},
		Endpoints: []metadata.Endpoint{{Service: metadata.AnyService, Binding: saml.BindingSOAP, Location: strings.TrimSuffix(publicURL, "/") + "/kecis/soap"}},
	}
	if tlsClient != nil {
		ed.TLSKeys = append(ed.TLSKeys, metadata.KeyDescriptor{Use: metadata.UseTLSClient, Certificate: tlsClient})
	}
	return ed
}

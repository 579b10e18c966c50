package metadata

import (
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/beevik/etree"

	"github.com/kecis/kecis/saml"
)

// Errors of verification beyond the signature itself.
var (
	// ErrExpired: the document's validUntil has passed.
	ErrExpired = errors.New("metadata: validUntil has passed")
	// ErrNoValidUntil: a signed document without validUntil. The hub always
	// bounds what it signs: without a bound, a descriptor signed before a
	// key was removed could be replayed forever.
	ErrNoValidUntil = errors.New("metadata: signed metadata without validUntil")
)

// SignEntity returns ed signed by the hub on its own (what the Metadata
// Query endpoint serves): compact, with the enveloped signature as the
// first child. The ID is ed.ID, or a fresh random one when empty; validUntil
// and cacheDuration are ed's, and validUntil is required. ed is not
// modified.
func SignEntity(ed *EntityDescriptor, signer *saml.Signer) ([]byte, error) {
	if ed.ValidUntil.IsZero() {
		return nil, ErrNoValidUntil
	}
	c := *ed
	if c.ID == "" {
		id, err := saml.IDSource{}.NewID()
		if err != nil {
			return nil, err
		}
		c.ID = id
	}
	el, err := c.ToElement()
	if err != nil {
		return nil, err
	}
	return signer.SignToBytes(el)
}

// VerifyEntity reads a hub-signed md:EntityDescriptor: size cap, DOCTYPE
// refusal, strict parse (saml.ParseDocument), the signature against the
// hub's certificates (saml.VerifyElement: exactly one signature, a child
// of the root, referencing its ID), then the strict descriptor parse of the
// verified tree, and validUntil, which must be present and after now.
func VerifyEntity(data []byte, hubCerts []*x509.Certificate, now time.Time) (*EntityDescriptor, error) {
	root, err := parseDocument(data, MaxEntityBytes)
	if err != nil {
		return nil, err
	}
	p := &parser{}
	if !p.is(root, NSMD, "EntityDescriptor") {
		return nil, p.fail(root, fmt.Errorf("%s is not an md:EntityDescriptor", p.name(root)))
	}
	if _, _, err := saml.VerifyElement(root, hubCerts, now); err != nil {
		return nil, documentError(err)
	}
	ed, err := FromElement(root)
	if err != nil {
		return nil, err
	}
	if err := checkValidUntil(ed.ValidUntil, now); err != nil {
		return nil, fmt.Errorf("%w (%s)", err, ed.EntityID)
	}
	return ed, nil
}

func checkValidUntil(validUntil, now time.Time) error {
	if validUntil.IsZero() {
		return ErrNoValidUntil
	}
	if !now.Before(validUntil) {
		return fmt.Errorf("%w: %s, now %s", ErrExpired, validUntil.Format(saml.TimeLayout), now.UTC().Format(saml.TimeLayout))
	}
	return nil
}

// Aggregate is an md:EntitiesDescriptor: every participant's descriptor in
// one document signed once by the hub.
type Aggregate struct {
	Name          string // optional Name attribute (e.g. the federation's URI)
	ID            string // set by Sign when empty
	ValidUntil    time.Time
	CacheDuration time.Duration
	Entities      []*EntityDescriptor
	// Expired lists the entityIDs of children whose own validUntil had
	// passed; VerifyAggregate leaves them out of Entities.
	Expired []string
}

// BuildAggregate signs an md:EntitiesDescriptor of entities with the hub's
// signer (see Aggregate.Sign).
func BuildAggregate(entities []*EntityDescriptor, name, id string, validUntil time.Time, cacheDuration time.Duration, signer *saml.Signer) ([]byte, error) {
	a := &Aggregate{Name: name, ID: id, ValidUntil: validUntil, CacheDuration: cacheDuration, Entities: entities}
	return a.Sign(signer)
}

// Sign writes and signs the aggregate: compact, the children unsigned and
// without their own IDs (only the aggregate's signature stands; the
// namespaces are declared once, on the aggregate), the signature first.
// validUntil is required and entityIDs must be unique.
func (a *Aggregate) Sign(signer *saml.Signer) ([]byte, error) {
	root, err := a.toElement()
	if err != nil {
		return nil, err
	}
	return signer.SignToBytes(root)
}

func (a *Aggregate) toElement() (*etree.Element, error) {
	if a.ValidUntil.IsZero() {
		return nil, ErrNoValidUntil
	}
	if a.CacheDuration < 0 {
		return nil, errors.New("metadata: negative cacheDuration")
	}
	id := a.ID
	if id == "" {
		var err error
		if id, err = (saml.IDSource{}).NewID(); err != nil {
			return nil, err
		}
	} else if !isNCName(id) {
		return nil, fmt.Errorf("metadata: aggregate ID %q is not an xs:ID", id)
	}
	if a.Name != "" {
		if err := checkString("Name", a.Name); err != nil {
			return nil, fmt.Errorf("metadata: aggregate: %w", err)
		}
	}
	if len(a.Entities) == 0 {
		return nil, errors.New("metadata: an aggregate needs at least one entity")
	}
	root := etree.NewElement(pMD + ":EntitiesDescriptor")
	declareNamespaces(root)
	root.CreateAttr("ID", id)
	if a.Name != "" {
		root.CreateAttr("Name", a.Name)
	}
	root.CreateAttr("validUntil", a.ValidUntil.UTC().Format(saml.TimeLayout))
	if a.CacheDuration > 0 {
		root.CreateAttr("cacheDuration", FormatDuration(a.CacheDuration))
	}
	seen := make(map[string]bool, len(a.Entities))
	for _, ed := range a.Entities {
		if seen[ed.EntityID] {
			return nil, fmt.Errorf("metadata: %s appears twice in the aggregate", ed.EntityID)
		}
		seen[ed.EntityID] = true
		c := *ed
		c.ID = ""
		el, err := c.ToElement()
		if err != nil {
			return nil, err
		}
		// The aggregate declares the same namespaces once.
		kept := el.Attr[:0]
		for _, at := range el.Attr {
			if at.Space != "xmlns" {
				kept = append(kept, at)
			}
		}
		el.Attr = kept
		root.AddChild(el)
	}
	return root, nil
}

// VerifyAggregate reads a hub-signed md:EntitiesDescriptor: the signature
// against the hub's certificates, validUntil (required, after now), then
// every child md:EntityDescriptor strictly (FromElement). Children whose
// own validUntil has passed are left out and listed in Expired; nested
// md:EntitiesDescriptors, md:Extensions and duplicate entityIDs are
// refused.
func VerifyAggregate(data []byte, hubCerts []*x509.Certificate, now time.Time) (*Aggregate, error) {
	root, err := parseDocument(data, MaxAggregateBytes)
	if err != nil {
		return nil, err
	}
	p := &parser{}
	if !p.is(root, NSMD, "EntitiesDescriptor") {
		return nil, p.fail(root, fmt.Errorf("%s is not an md:EntitiesDescriptor", p.name(root)))
	}
	if _, _, err := saml.VerifyElement(root, hubCerts, now); err != nil {
		return nil, documentError(err)
	}
	a := &Aggregate{}
	ar := p.attrs(root)
	a.ID, _ = ar.get("ID") // VerifyElement required it
	a.Name, _ = ar.get("Name")
	if v, ok := ar.get("validUntil"); ok {
		if a.ValidUntil, err = saml.ParseTime(v); err != nil {
			return nil, p.attrErr(root, "validUntil", err)
		}
	}
	if v, ok := ar.get("cacheDuration"); ok {
		if a.CacheDuration, err = ParseDuration(v); err != nil {
			return nil, p.attrErr(root, "cacheDuration", err)
		}
	}
	if err := ar.done(); err != nil {
		return nil, err
	}
	if err := checkValidUntil(a.ValidUntil, now); err != nil {
		return nil, err
	}
	kids := p.children(root)
	if p.err != nil {
		return nil, p.err
	}
	seen := make(map[string]bool, len(kids))
	a.Entities = make([]*EntityDescriptor, 0, len(kids))
	for _, k := range kids {
		if !p.is(k, NSMD, "EntityDescriptor") {
			return nil, p.fail(k, fmt.Errorf("%s is not allowed in a KECIS aggregate (md:EntityDescriptor+)", p.name(k)))
		}
		ed, err := FromElement(k)
		if err != nil {
			return nil, err
		}
		if seen[ed.EntityID] {
			return nil, p.fail(k, fmt.Errorf("%s appears twice", ed.EntityID))
		}
		seen[ed.EntityID] = true
		if !ed.ValidUntil.IsZero() && !now.Before(ed.ValidUntil) {
			a.Expired = append(a.Expired, ed.EntityID)
			continue
		}
		a.Entities = append(a.Entities, ed)
	}
	if len(kids) == 0 {
		return nil, p.fail(root, errors.New("no md:EntityDescriptor"))
	}
	return a, nil
}

// Entity returns the aggregate's descriptor of entityID.
func (a *Aggregate) Entity(entityID string) (*EntityDescriptor, bool) {
	for _, ed := range a.Entities {
		if ed.EntityID == entityID {
			return ed, true
		}
	}
	return nil, false
}

package metadata

import (
	"bytes"
	"encoding/xml"
	"fmt"

	"github.com/beevik/etree"
	crewjam "github.com/crewjam/saml"
)

// md:Organization is read and written with crewjam/saml's Organization
// through encoding/xml. That is lossless for every md:Organization the
// strict shape check below admits (organization_test.go proves it both
// ways): names, display names and URLs, each with its xml:lang, in schema
// order, text only. What crewjam's type cannot hold — md:Extensions,
// foreign attributes, child elements inside a name — is refused before
// encoding/xml sees the element, never silently dropped.

// decodeOrganization reads an md:Organization element.
func (p *parser) decodeOrganization(el *etree.Element) (*crewjam.Organization, error) {
	if err := p.noAttrs(el); err != nil {
		return nil, err
	}
	order := []string{"OrganizationName", "OrganizationDisplayName", "OrganizationURL"}
	stage := 0
	counts := make([]int, len(order))
	for _, c := range p.children(el) {
		if p.err != nil {
			return nil, p.err
		}
		for stage < len(order) && !p.is(c, NSMD, order[stage]) {
			stage++
		}
		if stage == len(order) {
			return nil, p.fail(c, fmt.Errorf("unexpected element in md:Organization (allowed, in this order: md:OrganizationName+, md:OrganizationDisplayName+, md:OrganizationURL+)"))
		}
		counts[stage]++
		ar := p.attrs(c)
		lang, ok := ar.lang()
		if !ok {
			return nil, p.fail(c, fmt.Errorf("xml:lang is required"))
		}
		if err := ar.done(); err != nil {
			return nil, err
		}
		text, err := p.text(c)
		if err != nil {
			return nil, err
		}
		if err := checkLocalized(lang, text); err != nil {
			return nil, p.fail(c, err)
		}
	}
	if p.err != nil {
		return nil, p.err
	}
	for i, n := range counts {
		if n == 0 {
			return nil, p.fail(el, fmt.Errorf("md:%s is required", order[i]))
		}
	}
	data, err := serialize(detachWithNamespaces(el), false)
	if err != nil {
		return nil, p.fail(el, err)
	}
	var o crewjam.Organization
	if err := xml.Unmarshal(data, &o); err != nil {
		return nil, p.fail(el, err)
	}
	if err := checkOrganization(&o); err != nil {
		return nil, p.fail(el, err)
	}
	return &o, nil
}

// encodeOrganization writes o as an md:Organization element with encoding/xml
// and moves it into the md prefix.
func encodeOrganization(o *crewjam.Organization) (*etree.Element, error) {
	var buf bytes.Buffer
	enc := xml.NewEncoder(&buf)
	if err := enc.EncodeElement(o, xml.StartElement{Name: xml.Name{Space: NSMD, Local: "Organization"}}); err != nil {
		return nil, fmt.Errorf("metadata: organization: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("metadata: organization: %w", err)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(buf.Bytes()); err != nil {
		return nil, fmt.Errorf("metadata: organization: %w", err)
	}
	root := doc.Root()
	var bad error
	var walk func(*etree.Element)
	walk = func(e *etree.Element) {
		if e.Space != "" {
			bad = fmt.Errorf("unexpected prefix %q", e.Space)
		}
		e.Space = pMD
		kept := e.Attr[:0]
		for _, a := range e.Attr {
			switch {
			case a.Space == "" && a.Key == "xmlns":
				if a.Value != NSMD {
					bad = fmt.Errorf("default namespace %q", a.Value)
				}
			case a.Space == "xml" && a.Key == "lang":
				kept = append(kept, a)
			default:
				bad = fmt.Errorf("unexpected attribute %s", a.FullKey())
			}
		}
		e.Attr = kept
		for _, c := range e.ChildElements() {
			walk(c)
		}
	}
	walk(root)
	if bad != nil {
		return nil, fmt.Errorf("metadata: organization: encoding/xml wrote something unexpected: %w", bad)
	}
	doc.RemoveChild(root)
	return root, nil
}

// detachWithNamespaces returns a copy of el declaring, on itself, the
// namespaces of every prefix used in el's subtree that el inherits.
func detachWithNamespaces(el *etree.Element) *etree.Element {
	c := el.Copy()
	declared := map[string]bool{"xml": true}
	for _, a := range c.Attr {
		if a.Space == "xmlns" {
			declared[a.Key] = true
		} else if a.Space == "" && a.Key == "xmlns" {
			declared[""] = true
		}
	}
	var walk func(e *etree.Element)
	walk = func(e *etree.Element) {
		prefixes := []string{e.Space}
		for _, a := range e.Attr {
			if a.Space != "" && a.Space != "xmlns" {
				prefixes = append(prefixes, a.Space)
			}
		}
		for _, p := range prefixes {
			if declared[p] {
				continue
			}
			declared[p] = true
			ns, ok := lookupPrefix(el, p)
			switch {
			case !ok || ns == "":
			case p == "":
				c.CreateAttr("xmlns", ns)
			default:
				c.CreateAttr("xmlns:"+p, ns)
			}
		}
		for _, k := range e.ChildElements() {
			walk(k)
		}
	}
	walk(c)
	return c
}

package metadata

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"github.com/beevik/etree"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

// Prefixes KECIS metadata is written with; readers never depend on them.
const (
	pMD    = "md"
	pKECIS = "kecis"
	pDS    = "ds"
	pXSI   = "xsi"
)

// ToElement writes ed as a standalone md:EntityDescriptor element that
// declares every namespace it uses (so that it can be signed on its own or
// placed in an aggregate). The output is deterministic: the same
// descriptor always gives the same bytes.
func (ed *EntityDescriptor) ToElement() (*etree.Element, error) {
	if err := ed.Validate(); err != nil {
		return nil, fmt.Errorf("metadata: %s: %w", ed.EntityID, err)
	}
	root := etree.NewElement(pMD + ":EntityDescriptor")
	declareNamespaces(root)
	root.CreateAttr("entityID", ed.EntityID)
	if ed.ID != "" {
		root.CreateAttr("ID", ed.ID)
	}
	if !ed.ValidUntil.IsZero() {
		root.CreateAttr("validUntil", ed.ValidUntil.UTC().Format(saml.TimeLayout))
	}
	if ed.CacheDuration > 0 {
		root.CreateAttr("cacheDuration", FormatDuration(ed.CacheDuration))
	}
	if ed.DisplayName != "" {
		root.CreateElement(pMD+":Extensions").CreateElement(pKECIS+":ParticipantInfo").CreateAttr("DisplayName", ed.DisplayName)
	}

	rd := root.CreateElement(pMD + ":RoleDescriptor")
	rd.CreateAttr(pXSI+":type", pKECIS+":"+ParticipantDescriptorType)
	rd.CreateAttr("protocolSupportEnumeration", ProtocolKECIS)
	rd.CreateAttr("Roles", joinRoles(ed.Roles))
	for _, k := range ed.Keys {
		writeKey(rd.CreateElement(pMD+":KeyDescriptor"), k)
	}
	for _, k := range ed.TLSKeys {
		writeKey(rd.CreateElement(pKECIS+":TLSKeyDescriptor"), k)
	}
	for _, e := range ed.Endpoints {
		el := rd.CreateElement(pKECIS + ":Endpoint")
		el.CreateAttr("Service", e.Service)
		el.CreateAttr("Binding", e.Binding)
		el.CreateAttr("Location", e.Location)
		el.CreateAttr("Priority", strconv.Itoa(e.Priority))
	}
	for _, s := range ed.Services {
		el := rd.CreateElement(pKECIS + ":OfferedService")
		el.CreateAttr("Service", s.Service)
		if len(s.BINs) > 0 {
			el.CreateAttr("BINs", s.BINs.String())
		}
		if len(s.BankCodes) > 0 {
			el.CreateAttr("BankCodes", strings.Join(s.BankCodes, " "))
		}
		if len(s.Callers) > 0 {
			rs := make([]string, len(s.Callers))
			for i, r := range s.Callers {
				rs[i] = string(r)
			}
			el.CreateAttr("Callers", strings.Join(rs, " "))
		}
		if len(s.CallerEntities) > 0 {
			el.CreateAttr("CallerEntities", strings.Join(s.CallerEntities, " "))
		}
		for _, l := range s.Limits {
			lo, err := ecml.FormatAmount(l.MinMoney())
			if err != nil {
				return nil, fmt.Errorf("metadata: %s: %w", s.Service, err)
			}
			hi, err := ecml.FormatAmount(l.MaxMoney())
			if err != nil {
				return nil, fmt.Errorf("metadata: %s: %w", s.Service, err)
			}
			le := el.CreateElement(pKECIS + ":Limit")
			le.CreateAttr("Currency", l.Currency)
			le.CreateAttr("Min", lo)
			le.CreateAttr("Max", hi)
		}
	}
	if ed.Organization != nil {
		org, err := encodeOrganization(ed.Organization)
		if err != nil {
			return nil, err
		}
		root.AddChild(org)
	}
	for _, c := range ed.ContactPersons {
		writeContact(root.CreateElement(pMD+":ContactPerson"), c)
	}
	return root, nil
}

func declareNamespaces(el *etree.Element) {
	el.CreateAttr("xmlns:"+pMD, NSMD)
	el.CreateAttr("xmlns:"+pDS, NSDSig)
	el.CreateAttr("xmlns:"+pKECIS, NSKECIS)
	el.CreateAttr("xmlns:"+pXSI, NSXSI)
}

func writeKey(el *etree.Element, k KeyDescriptor) {
	el.CreateAttr("use", string(k.Use))
	el.CreateElement(pDS + ":KeyInfo").CreateElement(pDS + ":X509Data").CreateElement(pDS + ":X509Certificate").
		SetText(base64.StdEncoding.EncodeToString(k.Certificate.Raw))
}

func writeContact(el *etree.Element, c ContactPerson) {
	el.CreateAttr("contactType", c.Type)
	for _, f := range []struct{ tag, v string }{{"Company", c.Company}, {"GivenName", c.GivenName}, {"SurName", c.SurName}} {
		if f.v != "" {
			el.CreateElement(pMD + ":" + f.tag).SetText(f.v)
		}
	}
	for _, v := range c.EmailAddresses {
		el.CreateElement(pMD + ":EmailAddress").SetText(v)
	}
	for _, v := range c.TelephoneNumbers {
		el.CreateElement(pMD + ":TelephoneNumber").SetText(v)
	}
}

// Marshal writes ed as an indented, standalone document (no XML
// declaration, UTF-8): the form `kecis metadata generate` prints and a
// participant registers. Parse(Marshal(ed)) gives ed back, and
// Marshal(Parse(b)) gives b back for every b that Marshal wrote.
func Marshal(ed *EntityDescriptor) ([]byte, error) {
	el, err := ed.ToElement()
	if err != nil {
		return nil, err
	}
	b, err := serialize(el, true)
	if err == nil {
		captureMarshalled(b) // the test hook of scripts/test.sh (capture.go)
	}
	return b, err
}

// MarshalCompact writes ed without indentation (what the hub signs and
// serves).
func MarshalCompact(ed *EntityDescriptor) ([]byte, error) {
	el, err := ed.ToElement()
	if err != nil {
		return nil, err
	}
	b, err := serialize(el, false)
	if err == nil {
		captureMarshalled(b)
	}
	return b, err
}

func serialize(el *etree.Element, indent bool) ([]byte, error) {
	doc := etree.NewDocument()
	doc.SetRoot(el)
	if indent {
		s := etree.NewIndentSettings()
		s.Spaces = 2
		s.PreserveLeafWhitespace = true // a name of spaces is text, not indentation
		doc.IndentWithSettings(s)
	}
	var buf bytes.Buffer
	if _, err := doc.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

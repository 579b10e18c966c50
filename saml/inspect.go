package saml

import (
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/beevik/etree"
)

// Report is what `kecis envelope inspect` shows about a document without
// any key: what it is, who signed it with which certificate, what is
// encrypted for whom, and every problem visible without verifying.
type Report struct {
	Kind           Kind      `json:"kind,omitempty"`
	Root           string    `json:"root"`
	ID             string    `json:"id,omitempty"`
	InResponseTo   string    `json:"inResponseTo,omitempty"`
	Issuer         string    `json:"issuer,omitempty"`
	IssueInstant   string    `json:"issueInstant,omitempty"`
	Destination    string    `json:"destination,omitempty"`
	Service        string    `json:"service,omitempty"`
	IdempotencyKey string    `json:"idempotencyKey,omitempty"`
	OnBehalfOf     string    `json:"onBehalfOf,omitempty"`
	Status         *Status   `json:"status,omitempty"`
	Signatures     []SigInfo `json:"signatures,omitempty"`
	Encrypted      []EncInfo `json:"encrypted,omitempty"`
	AuthResults    []string  `json:"authResults,omitempty"`
	Problems       []string  `json:"problems,omitempty"`
}

// SigInfo describes one ds:Signature.
type SigInfo struct {
	Path             string    `json:"path"`
	SignatureMethod  string    `json:"signatureMethod,omitempty"`
	DigestMethod     string    `json:"digestMethod,omitempty"`
	Reference        string    `json:"reference,omitempty"`
	CertSubject      string    `json:"certSubject,omitempty"`
	CertFingerprint  string    `json:"certFingerprint,omitempty"`
	CertNotAfter     time.Time `json:"certNotAfter,omitzero"`
	CertKeyAlgorithm string    `json:"certKeyAlgorithm,omitempty"`
}

// EncInfo describes one xenc:EncryptedData.
type EncInfo struct {
	Path                string `json:"path"`
	Type                string `json:"type,omitempty"`
	EncryptionMethod    string `json:"encryptionMethod,omitempty"`
	KeyTransport        string `json:"keyTransport,omitempty"`
	Recipient           string `json:"recipient,omitempty"`
	RecipientCertSHA256 string `json:"recipientCertSha256,omitempty"`
}

// allowed content-encryption and key-transport algorithms (KECIS §8.1).
var (
	allowedDataEnc = map[string]bool{
		NSXEnc11 + "aes256-gcm": true,
		NSXEnc11 + "aes128-gcm": true,
	}
	allowedKeyTransport = map[string]bool{
		NSXEnc + "rsa-oaep-mgf1p": true,
		NSXEnc11 + "rsa-oaep":     true,
	}
)

// Inspect examines data without keys. It never fails: what it cannot read
// becomes a problem in the report.
func Inspect(data []byte) *Report {
	rep := &Report{}
	root, err := ParseDocument(data, Limits{MaxBytes: 16 << 20, MaxDepth: 256})
	if err != nil {
		rep.Problems = append(rep.Problems, "cannot be read: "+AsError(err).Cause().Error())
		return rep
	}
	rep.Root = root.FullTag()
	ns, _ := elementNS(root, root)
	kind := messageKind(0)
	if ns == NSKECIS {
		switch root.Tag {
		case elServiceRequest:
			kind, rep.Kind = kindRequest, KindRequest
		case elServiceResponse:
			kind, rep.Kind = kindResponse, KindResponse
		case elAuthenticationResult:
			kind, rep.Kind = kindAuthResult, KindAuthResult
		}
	}
	rep.ID = root.SelectAttrValue("ID", "")
	rep.InResponseTo = root.SelectAttrValue("InResponseTo", "")
	rep.IssueInstant = root.SelectAttrValue("IssueInstant", "")
	rep.Destination = root.SelectAttrValue("Destination", "")
	if kind == 0 {
		rep.Problems = append(rep.Problems, "root is not a KECIS message ("+rep.Root+")")
	}
	for _, c := range root.ChildElements() {
		cns, _ := elementNS(c, root)
		switch {
		case cns == NSSAML && c.Tag == elIssuer:
			rep.Issuer = c.Text()
		case cns == NSKECIS && c.Tag == elService:
			rep.Service = c.Text()
		case cns == NSKECIS && c.Tag == elIdempotencyKey:
			rep.IdempotencyKey = c.Text()
		case cns == NSKECIS && c.Tag == elOnBehalfOf:
			rep.OnBehalfOf = c.Text()
		case cns == NSSAMLP && c.Tag == elStatus:
			if st, err := decodeStatus(c, root); err == nil {
				rep.Status = &st
			} else {
				rep.Problems = append(rep.Problems, "status: "+err.Error())
			}
		case cns == NSKECIS && c.Tag == elAuthenticationResult:
			iss := ""
			if i := c.SelectElement(prefixOf(c, root, NSSAML) + elIssuer); i != nil {
				iss = i.Text()
			}
			rep.AuthResults = append(rep.AuthResults, fmt.Sprintf("%s from %s", c.SelectAttrValue("ID", "?"), iss))
		}
	}
	if kind == kindRequest && rep.Service != "" && IsMutation(rep.Service) && rep.IdempotencyKey == "" {
		rep.Problems = append(rep.Problems, "no IdempotencyKey, but "+rep.Service+" changes state")
	}
	if kind != 0 {
		if _, err := checkShape(root, kind); err != nil {
			rep.Problems = append(rep.Problems, "profile: "+describe(err))
		}
	}
	walkAll(root, func(el *etree.Element) {
		ens, _ := elementNS(el, root)
		switch {
		case ens == NSDSig && el.Tag == elSignature:
			rep.Signatures = append(rep.Signatures, sigInfo(el, root, &rep.Problems))
		case ens == NSXEnc && el.Tag == "EncryptedData":
			rep.Encrypted = append(rep.Encrypted, encInfo(el, root, &rep.Problems))
		}
	})
	if len(rep.Signatures) == 0 && kind != 0 {
		rep.Problems = append(rep.Problems, "unsigned")
	}
	return rep
}

func describe(err error) string {
	e := AsError(err)
	if c := e.Cause(); c != nil {
		return c.Error()
	}
	return e.Public
}

func prefixOf(el, top *etree.Element, ns string) string {
	for e := el; e != nil; e = e.Parent() {
		for _, a := range e.Attr {
			if a.Space == "xmlns" && a.Value == ns {
				return a.Key + ":"
			}
		}
		if e == top {
			break
		}
	}
	return ""
}

func walkAll(el *etree.Element, f func(*etree.Element)) {
	f(el)
	for _, c := range el.ChildElements() {
		walkAll(c, f)
	}
}

func findDesc(el, top *etree.Element, ns, local string) *etree.Element {
	var found *etree.Element
	walkAll(el, func(e *etree.Element) {
		if found == nil && e != el && is(e, top, ns, local) {
			found = e
		}
	})
	return found
}

func sigInfo(sig, top *etree.Element, problems *[]string) SigInfo {
	si := SigInfo{Path: sig.GetPath()}
	if m := findDesc(sig, top, NSDSig, "SignatureMethod"); m != nil {
		si.SignatureMethod = m.SelectAttrValue("Algorithm", "")
		if si.SignatureMethod != AlgRSASHA256 && si.SignatureMethod != AlgECDSASHA256 {
			*problems = append(*problems, "forbidden signature method "+si.SignatureMethod)
		}
	}
	if m := findDesc(sig, top, NSDSig, "DigestMethod"); m != nil {
		si.DigestMethod = m.SelectAttrValue("Algorithm", "")
		if si.DigestMethod != AlgSHA256 {
			*problems = append(*problems, "forbidden digest method "+si.DigestMethod)
		}
	}
	if r := findDesc(sig, top, NSDSig, "Reference"); r != nil {
		si.Reference = r.SelectAttrValue("URI", "")
	}
	if c := findDesc(sig, top, NSDSig, "X509Certificate"); c != nil {
		if der, err := base64.StdEncoding.DecodeString(stripSpace(c.Text())); err == nil {
			if cert, err := x509.ParseCertificate(der); err == nil {
				si.CertSubject = cert.Subject.String()
				si.CertFingerprint = Fingerprint(cert)
				si.CertNotAfter = cert.NotAfter.UTC()
				si.CertKeyAlgorithm = cert.PublicKeyAlgorithm.String()
				if _, err := signatureAlgorithmFor(cert.PublicKey); err != nil {
					*problems = append(*problems, "signer key: "+err.Error())
				}
			} else {
				*problems = append(*problems, "signer certificate unreadable")
			}
		}
	} else {
		*problems = append(*problems, "signature without KeyInfo/X509Certificate")
	}
	return si
}

func encInfo(ed, top *etree.Element, problems *[]string) EncInfo {
	ei := EncInfo{Path: ed.GetPath(), Type: ed.SelectAttrValue("Type", "")}
	for _, c := range ed.ChildElements() {
		if is(c, top, NSXEnc, "EncryptionMethod") {
			ei.EncryptionMethod = c.SelectAttrValue("Algorithm", "")
		}
	}
	if !allowedDataEnc[ei.EncryptionMethod] {
		*problems = append(*problems, "forbidden data encryption "+ei.EncryptionMethod+" at "+ei.Path)
	}
	if ek := findDesc(ed, top, NSXEnc, "EncryptedKey"); ek != nil {
		ei.Recipient = ek.SelectAttrValue("Recipient", "")
		for _, c := range ek.ChildElements() {
			if is(c, top, NSXEnc, "EncryptionMethod") {
				ei.KeyTransport = c.SelectAttrValue("Algorithm", "")
			}
		}
		if !allowedKeyTransport[ei.KeyTransport] {
			*problems = append(*problems, "forbidden key transport "+ei.KeyTransport+" at "+ei.Path)
		}
		if c := findDesc(ek, top, NSDSig, "X509Certificate"); c != nil {
			if der, err := base64.StdEncoding.DecodeString(stripSpace(c.Text())); err == nil {
				if cert, err := x509.ParseCertificate(der); err == nil {
					ei.RecipientCertSHA256 = Fingerprint(cert)
				}
			}
		}
		if ei.Recipient == "" {
			*problems = append(*problems, "EncryptedKey without Recipient at "+ei.Path)
		}
	}
	return ei
}

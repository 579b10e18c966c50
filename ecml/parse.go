package ecml

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/beevik/etree"
)

// Limits of [ParseDocument].
const (
	// MaxDocumentSize is the largest standalone document ParseDocument reads
	// (1 MiB): a payload is a few kilobytes, ciphertext included.
	MaxDocumentSize = 1 << 20
	// MaxDepth is the deepest element nesting ParseDocument accepts (etree
	// ReadSettings.MaxDepth). ECML nests four deep and an EncryptedData with
	// its EncryptedKey about eight more.
	MaxDepth = 64
)

// ParseError says where and why a payload does not have the shape of the
// KECIS profile. It names the place and never quotes a secret.
type ParseError struct {
	Path    string // e.g. /Ecom/Payment/Card/@Foo
	Message string
}

func (e *ParseError) Error() string {
	if e.Path == "" {
		return "ecml: " + e.Message
	}
	return "ecml: " + e.Path + ": " + e.Message
}

func parseErr(path, format string, args ...any) *ParseError {
	return &ParseError{Path: RedactPANs(path), Message: RedactPANs(fmt.Sprintf(format, args...))}
}

// ParseDocument reads a standalone ECML document: its root is either a bare
// Ecom element (RFC 4112 §2.2) or a kecis:Payload container (namespace
// [ProtocolNamespace]) holding Ecom and extension elements.
//
// Before the structure is read (KECIS §5.1 steps 1–3, §14.2): the
// document must be at most [MaxDocumentSize] bytes of UTF-8 (a byte order
// mark is skipped; an XML declaration naming another encoding is refused),
// with no DOCTYPE or other directive anywhere, no comment, processing
// instruction or text outside the root (the XML declaration aside), exactly
// one root element and at most [MaxDepth] levels. The structure is then read
// as [ParsePayload] does; the root container may carry only namespace
// declarations.
func ParseDocument(data []byte) (*Payload, error) {
	if len(data) > MaxDocumentSize {
		return nil, parseErr("", "document is larger than %d bytes", MaxDocumentSize)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if !utf8.Valid(data) {
		return nil, parseErr("", "document is not UTF-8")
	}
	if bytes.Contains(data, []byte("<!DOCTYPE")) {
		return nil, parseErr("", "a DOCTYPE is not allowed")
	}
	doc := etree.NewDocument()
	doc.ReadSettings = etree.ReadSettings{
		MaxDepth:               MaxDepth,
		PreserveDuplicateAttrs: true,
		CharsetReader: func(charset string, _ io.Reader) (io.Reader, error) {
			return nil, fmt.Errorf("encoding %q is not UTF-8", charset)
		},
	}
	if err := doc.ReadFromBytes(data); err != nil {
		if errors.Is(err, etree.ErrMaxDepth) {
			return nil, parseErr("", "elements nest deeper than %d levels", MaxDepth)
		}
		return nil, parseErr("", "not well-formed XML: %v", err)
	}
	var root *etree.Element
	for i, tok := range doc.Child {
		switch t := tok.(type) {
		case *etree.Element:
			if root != nil {
				return nil, parseErr("", "more than one root element")
			}
			root = t
		case *etree.ProcInst:
			if t.Target != "xml" || i != 0 {
				return nil, parseErr("", "processing instruction <?%s?> outside the root element", t.Target)
			}
		case *etree.Comment:
			return nil, parseErr("", "comment outside the root element")
		case *etree.Directive:
			return nil, parseErr("", "a DOCTYPE or other directive is not allowed")
		case *etree.CharData:
			if !isXMLSpace(t.Data) {
				return nil, parseErr("", "text outside the root element")
			}
		}
	}
	if root == nil {
		return nil, parseErr("", "no root element")
	}
	ns, ok := nsOf(root)
	if !ok {
		return nil, parseErr("/"+root.FullTag(), "namespace prefix %q is not bound", root.Space)
	}
	switch {
	case ns == "" && root.Tag == "Ecom":
		e, err := parseEcom(root, "/Ecom")
		if err != nil {
			return nil, err
		}
		return &Payload{Ecom: e}, nil
	case ns == ProtocolNamespace && root.Tag == PayloadElement:
		for _, a := range root.Attr {
			if !isNSDecl(a) {
				return nil, parseErr("/@"+a.FullKey(), "unexpected attribute on %s:%s", ProtocolPrefix, PayloadElement)
			}
		}
		return ParsePayload(root)
	}
	return nil, parseErr("/"+displayName(ns, root), "root element must be Ecom or %s:%s (namespace %s)", ProtocolPrefix, PayloadElement, ProtocolNamespace)
}

// ParsePayload reads the children of a payload container (kecis:Payload in a
// KECIS message): at most one Ecom, the extension elements in [ExtNamespace]
// and xenc:EncryptedData stand-ins, in the order documented on [Payload].
// The container's own name and attributes are the caller's business.
//
// The reading is strict, so that nothing is silently dropped and a document
// means one thing: an element of another namespace, an unknown ECML element
// or attribute, a prefixed attribute, a second Ecom or any other repeated
// element (kx:BankAccount aside), an element out of the schema's order, text
// where only elements may stand, a comment or processing instruction inside
// ECML data, an unbound prefix, or an EncryptedData whose Type is not
// [XMLEncElementType] is a *[ParseError] naming its path (paths start at the
// container: /Ecom/…, /kx:BankAccount[2]/…). Unknown elements in
// [ExtNamespace] are kept, not refused (Payload.Unknown), provided they come
// after the known ones.
//
// Values are never judged here: a bad card number or amount parses and is
// reported by [Payload.Validate].
//
// An xenc:EncryptedData may stand where a sensitive element stands
// (KECIS §8.1: Payment/Card, Loyalty, User/Password, Data/Track1 and
// Track2, kx:BirthDate, kx:AccountNumber, kx:OneTimeCode, kx:Challenge,
// kx:VirtualCard/kx:Number, kx:KeyIn). It is kept as a detached copy that
// declares the namespaces it uses, in the slot its position gives: the first
// sensitive slot after the last element read. When two sensitive slots are
// adjacent (Track1, Track2; kx:OneTimeCode, kx:KeyIn) and only one stand-in
// is there, it takes the first slot whatever it hides; it is written back in
// the same place, so a round trip keeps the document's order.
//
// A caller whose tree was read without etree's PreserveDuplicateAttrs cannot
// see duplicate attributes (etree keeps the last); ParseDocument sets it.
func ParsePayload(container *etree.Element) (*Payload, error) {
	p := &Payload{}
	ext := func(local string) childSpec { return childSpec{ns: ExtNamespace, local: local} }
	specs := []childSpec{
		{local: "Ecom", parse: func(el *etree.Element, path string) (err error) {
			p.Ecom, err = parseEcom(el, path)
			return err
		}},
		ext("UserData").with(func(el *etree.Element, path string) (err error) {
			p.UserData, err = parseUserData(el, path)
			return err
		}),
		ext("Device").with(func(el *etree.Element, path string) error {
			d := &Device{}
			p.Device = d
			return parseLeafElement(el, path, attrs{{"ID", &d.ID}, {"Type", &d.Type}}, nil)
		}),
		ext("BankAccount").multiple().with(func(el *etree.Element, path string) error {
			b, err := parseBankAccount(el, path)
			p.BankAccounts = append(p.BankAccounts, b)
			return err
		}),
		ext("Transfer").with(func(el *etree.Element, path string) (err error) {
			p.Transfer, err = parseTransfer(el, path)
			return err
		}),
		ext("AmountAuth").with(func(el *etree.Element, path string) (err error) {
			p.AmountAuth, err = parseAmountAuth(el, path)
			return err
		}),
		ext("VirtualCard").with(func(el *etree.Element, path string) (err error) {
			p.VirtualCard, err = parseVirtualCard(el, path)
			return err
		}),
		ext("Escrow").with(func(el *etree.Element, path string) error {
			e := &Escrow{}
			p.Escrow = e
			return parseLeafElement(el, path, attrs{{"State", &e.State}, {"Carrier", &e.Carrier}, {"Tracking", &e.Tracking},
				{"ConfirmBy", &e.ConfirmBy}, {"Reason", &e.Reason}, {"Auto", &e.Auto}}, nil)
		}),
		ext("CardAuth").with(func(el *etree.Element, path string) error {
			c := &CardAuth{}
			p.CardAuth = c
			return parseLeafElement(el, path, attrs{
				{"Acquirer", &c.Acquirer},
				{"VirtualCard", &c.VirtualCard},
				{"Use", &c.Use},
				{"MerchantLock", &c.MerchantLock},
				{"NotOnOrAfter", &c.NotOnOrAfter},
			}, nil)
		}),
		ext("OneTimeCode").with(func(el *etree.Element, path string) error {
			var s string
			err := parseLeafElement(el, path, nil, &s)
			p.OneTimeCode = Secret(s)
			return err
		}).standIn(&p.EncryptedOneTimeCode),
		ext("KeyIn").with(func(el *etree.Element, path string) error {
			k := &KeyIn{}
			p.KeyIn = k
			return parseLeafElement(el, path, attrs{
				{"PasswordPrefix", (*string)(&k.PasswordPrefix)},
				{"BirthDate", (*string)(&k.BirthDate)},
				{"BusinessNumber", (*string)(&k.BusinessNumber)},
			}, nil)
		}).standIn(&p.EncryptedKeyIn),
		{ns: ExtNamespace, local: "*", multi: true,
			parse: func(el *etree.Element, path string) error {
				cp, err := detach(el, path)
				p.Unknown = append(p.Unknown, cp)
				return err
			},
			encrypted: func(cp *etree.Element) { p.Unknown = append(p.Unknown, cp) },
		},
	}
	if err := parseChildren(container, "", specs); err != nil {
		return nil, err
	}
	return p, nil
}

// childSpec is one slot of an element's content model.
type childSpec struct {
	ns, local string // local "*": any element of ns
	multi     bool
	parse     func(el *etree.Element, path string) error
	// encrypted, when set, makes the slot sensitive: an xenc:EncryptedData
	// may stand in it, and is handed over as a detached copy.
	encrypted func(cp *etree.Element)
}

func (c childSpec) with(f func(el *etree.Element, path string) error) childSpec {
	c.parse = f
	return c
}

func (c childSpec) multiple() childSpec {
	c.multi = true
	return c
}

func (c childSpec) standIn(dst **etree.Element) childSpec {
	c.encrypted = func(cp *etree.Element) { *dst = cp }
	return c
}

func (c childSpec) name() string {
	switch c.ns {
	case "":
		return c.local
	case ExtNamespace:
		if c.local == "*" {
			return "unknown kx elements"
		}
		return ExtPrefix + ":" + c.local
	}
	return c.local
}

// parseChildren reads the content of an element-only element against specs,
// which list the slots in schema order. See ParsePayload for the rules.
func parseChildren(parent *etree.Element, path string, specs []childSpec) error {
	last := -1
	counts := make([]int, len(specs))
	for _, tok := range parent.Child {
		var el *etree.Element
		switch t := tok.(type) {
		case *etree.CharData:
			if !isXMLSpace(t.Data) {
				return parseErr(pathOr(path), "unexpected text: this element holds elements only")
			}
			continue
		case *etree.Comment:
			return parseErr(pathOr(path), "comments are not allowed in ECML data")
		case *etree.ProcInst:
			return parseErr(pathOr(path), "processing instructions are not allowed in ECML data")
		case *etree.Directive:
			return parseErr(pathOr(path), "directives are not allowed")
		case *etree.Element:
			el = t
		default:
			continue
		}
		ns, ok := nsOf(el)
		if !ok {
			return parseErr(path+"/"+el.FullTag(), "namespace prefix %q is not bound", el.Space)
		}
		elPath := path + "/" + displayName(ns, el)
		idx := -1
		if ns == XMLEncNamespace && el.Tag == "EncryptedData" {
			for i := last + 1; i < len(specs); i++ {
				if specs[i].encrypted != nil {
					idx = i
					break
				}
			}
			if idx < 0 && last >= 0 && specs[last].multi && specs[last].encrypted != nil {
				idx = last
			}
			if idx < 0 {
				return parseErr(elPath, "xenc:EncryptedData is allowed only where a sensitive element stands")
			}
			if err := checkStandIn(el, elPath); err != nil {
				return err
			}
			cp, err := detach(el, elPath)
			if err != nil {
				return err
			}
			specs[idx].encrypted(cp)
			counts[idx]++
			last = idx
			continue
		}
		for i, s := range specs {
			if s.ns == ns && s.local == el.Tag {
				idx = i
				break
			}
		}
		if idx < 0 {
			for i, s := range specs {
				if s.ns == ns && s.local == "*" {
					idx = i
					break
				}
			}
		}
		if idx < 0 {
			if ns != "" {
				return parseErr(elPath, "unexpected element in namespace %s", ns)
			}
			return parseErr(elPath, "unexpected element")
		}
		s := specs[idx]
		switch {
		case counts[idx] > 0 && !s.multi:
			return parseErr(elPath, "repeated element (or both a clear element and an encrypted one in its place)")
		case idx < last:
			return parseErr(elPath, "out of order: %s must come before %s", s.name(), specs[last].name())
		}
		counts[idx]++
		if s.multi && s.local != "*" {
			elPath = fmt.Sprintf("%s[%d]", elPath, counts[idx])
		}
		if err := s.parse(el, elPath); err != nil {
			return err
		}
		last = idx
	}
	return nil
}

func pathOr(path string) string {
	if path == "" {
		return "/"
	}
	return path
}

// checkStandIn checks an xenc:EncryptedData that stands for an element.
func checkStandIn(el *etree.Element, path string) error {
	typ := plainAttr(el, "Type")
	if typ != XMLEncElementType {
		return parseErr(path+"/@Type", "must be %s: KECIS encrypts whole elements", XMLEncElementType)
	}
	return nil
}

// attr binds an attribute name to where its value goes.
type attr struct {
	name string
	dst  *string
}

type attrs []attr

// parseAttrs stores el's attributes; namespace declarations are ignored and
// anything not listed is an error.
func parseAttrs(el *etree.Element, path string, list attrs) error {
	var seen uint64
	for _, a := range el.Attr {
		if isNSDecl(a) {
			continue
		}
		if a.Space != "" {
			return parseErr(path+"/@"+a.FullKey(), "unexpected attribute")
		}
		found := false
		for i, l := range list {
			if l.name != a.Key {
				continue
			}
			if seen&(1<<i) != 0 {
				return parseErr(path+"/@"+a.Key, "repeated attribute")
			}
			seen |= 1 << i
			*l.dst = a.Value
			found = true
			break
		}
		if !found {
			return parseErr(path+"/@"+a.Key, "unexpected attribute")
		}
	}
	return nil
}

// parseLeafElement reads an element without element children: its
// attributes and, when text is not nil, its character content exactly as
// written (CDATA sections included). Without text, only white space may
// stand inside.
func parseLeafElement(el *etree.Element, path string, list attrs, text *string) error {
	if err := parseAttrs(el, path, list); err != nil {
		return err
	}
	var b strings.Builder
	for _, tok := range el.Child {
		switch t := tok.(type) {
		case *etree.CharData:
			if text == nil && !isXMLSpace(t.Data) {
				return parseErr(path, "unexpected text: this element is empty")
			}
			b.WriteString(t.Data)
		case *etree.Element:
			ns, _ := nsOf(t)
			return parseErr(path+"/"+displayName(ns, t), "unexpected element: %s has no element children", path[strings.LastIndexByte(path, '/')+1:])
		case *etree.Comment:
			return parseErr(path, "comments are not allowed in ECML data")
		case *etree.ProcInst:
			return parseErr(path, "processing instructions are not allowed in ECML data")
		case *etree.Directive:
			return parseErr(path, "directives are not allowed")
		}
	}
	if text != nil {
		*text = b.String()
	}
	return nil
}

// ECML elements.

func parseEcom(el *etree.Element, path string) (*Ecom, error) {
	e := &Ecom{}
	if err := parseAttrs(el, path, attrs{
		{"id", &e.ID}, {"Mode", &e.Mode}, {"ConsumerOrderID", &e.ConsumerOrderID},
		{"Merchant", &e.Merchant}, {"Processor", &e.Processor},
		{"SchemaVersion", &e.SchemaVersion}, {"WalletID", &e.WalletID},
		{"WalletLocation", &e.WalletLocation},
	}); err != nil {
		return e, err
	}
	address := func(local string, dst **Address) childSpec {
		return childSpec{local: local, parse: func(el *etree.Element, path string) (err error) {
			*dst, err = parseAddress(el, path)
			return err
		}}
	}
	return e, parseChildren(el, path, []childSpec{
		address("ShipTo", &e.ShipTo),
		address("BillTo", &e.BillTo),
		address("ReceiptTo", &e.ReceiptTo),
		{local: "Payment", parse: func(el *etree.Element, path string) (err error) {
			e.Payment, err = parsePayment(el, path)
			return err
		}},
		childSpec{local: "Loyalty", parse: func(el *etree.Element, path string) (err error) {
			e.Loyalty, err = parseLoyalty(el, path)
			return err
		}}.standIn(&e.EncryptedLoyalty),
		{local: "User", parse: func(el *etree.Element, path string) (err error) {
			e.User, err = parseUser(el, path)
			return err
		}},
		{local: "Merchant", parse: func(el *etree.Element, path string) error {
			m := &Merchant{}
			e.MerchantInfo = m
			if err := parseAttrs(el, path, attrs{{"id", &m.ID}, {"Mode", &m.Mode}}); err != nil {
				return err
			}
			return parseChildren(el, path, []childSpec{
				{local: "Terminal", parse: func(el *etree.Element, path string) error {
					t := &Terminal{}
					m.Terminal = t
					return parseLeafElement(el, path, attrs{{"id", &t.ID}, {"Mode", &t.Mode}, {"Data", &t.Data}}, nil)
				}},
			})
		}},
		{local: "Transaction", parse: func(el *etree.Element, path string) (err error) {
			e.Transaction, err = parseTransaction(el, path)
			return err
		}},
		{local: "TransactionComplete", parse: func(el *etree.Element, path string) error {
			t := &TransactionComplete{}
			e.TransactionComplete = t
			return parseLeafElement(el, path, attrs{{"Mode", &t.Mode}}, nil)
		}},
	})
}

// textSpec is a slot for an ECML text element with a Mode attribute.
func textSpec(local string, dst **Text) childSpec {
	return childSpec{local: local, parse: func(el *etree.Element, path string) error {
		t := &Text{}
		*dst = t
		return parseLeafElement(el, path, attrs{{"Mode", &t.Mode}}, &t.Value)
	}}
}

// secretTextSpec is a slot for a sensitive ECML text element.
func secretTextSpec(local string, dst **SecretText, enc **etree.Element) childSpec {
	return childSpec{local: local, parse: func(el *etree.Element, path string) error {
		t := &SecretText{}
		*dst = t
		return parseLeafElement(el, path, attrs{{"Mode", &t.Mode}}, (*string)(&t.Value))
	}}.standIn(enc)
}

// dateSpec is a slot for a [Day Month Year] element; ECML ones have Mode.
func dateSpec(ns, local string, dst **Date) childSpec {
	return childSpec{ns: ns, local: local, parse: func(el *etree.Element, path string) error {
		d := &Date{}
		*dst = d
		list := attrs{{"Day", &d.Day}, {"Month", &d.Month}, {"Year", &d.Year}}
		if ns == "" {
			list = append(attrs{{"Mode", &d.Mode}}, list...)
		}
		return parseLeafElement(el, path, list, nil)
	}}
}

func parseAddress(el *etree.Element, path string) (*Address, error) {
	a := &Address{}
	if err := parseAttrs(el, path, attrs{{"id", &a.ID}, {"Mode", &a.Mode}}); err != nil {
		return a, err
	}
	return a, parseChildren(el, path, []childSpec{
		{local: "Postal", parse: func(el *etree.Element, path string) error {
			p := &Postal{}
			a.Postal = p
			if err := parseAttrs(el, path, attrs{{"Mode", &p.Mode}, {"PostalCode", &p.PostalCode}, {"CountryCode", &p.CountryCode}}); err != nil {
				return err
			}
			return parseChildren(el, path, []childSpec{
				{local: "Name", parse: func(el *etree.Element, path string) error {
					n := &Name{}
					p.Name = n
					return parseLeafElement(el, path, attrs{{"Mode", &n.Mode}, {"Prefix", &n.Prefix}, {"First", &n.First}, {"Middle", &n.Middle}, {"Last", &n.Last}, {"Suffix", &n.Suffix}}, nil)
				}},
				textSpec("Company", &p.Company),
				{local: "Street", parse: func(el *etree.Element, path string) error {
					s := &Street{}
					p.Street = s
					return parseLeafElement(el, path, attrs{{"Mode", &s.Mode}, {"Line1", &s.Line1}, {"Line2", &s.Line2}, {"Line3", &s.Line3}}, nil)
				}},
				textSpec("City", &p.City),
				textSpec("StateProv", &p.StateProv),
			})
		}},
		{local: "Telecom", parse: func(el *etree.Element, path string) error {
			t := &Telecom{}
			a.Telecom = t
			if err := parseAttrs(el, path, attrs{{"Mode", &t.Mode}}); err != nil {
				return err
			}
			return parseChildren(el, path, []childSpec{{local: "Phone", parse: func(el *etree.Element, path string) error {
				ph := &Phone{}
				t.Phone = ph
				return parseLeafElement(el, path, attrs{{"Mode", &ph.Mode}, {"Number", &ph.Number}}, nil)
			}}})
		}},
		{local: "Online", parse: func(el *etree.Element, path string) error {
			o := &Online{}
			a.Online = o
			if err := parseAttrs(el, path, attrs{{"Mode", &o.Mode}}); err != nil {
				return err
			}
			return parseChildren(el, path, []childSpec{{local: "Email", parse: func(el *etree.Element, path string) error {
				em := &Email{}
				o.Email = em
				return parseLeafElement(el, path, attrs{{"Mode", &em.Mode}, {"Address", &em.Address}}, nil)
			}}})
		}},
	})
}

func parsePayment(el *etree.Element, path string) (*Payment, error) {
	p := &Payment{}
	if err := parseAttrs(el, path, attrs{{"Mode", &p.Mode}}); err != nil {
		return p, err
	}
	return p, parseChildren(el, path, []childSpec{
		childSpec{local: "Card", parse: func(el *etree.Element, path string) error {
			c := &Card{}
			p.Card = c
			if err := parseAttrs(el, path, attrs{
				{"Mode", &c.Mode}, {"Name", &c.Name}, {"Type", &c.Type}, {"Number", (*string)(&c.Number)},
				{"Protocols", &c.Protocols}, {"Verification", (*string)(&c.Verification)}, {"Issuer", &c.Issuer},
			}); err != nil {
				return err
			}
			return parseChildren(el, path, []childSpec{
				dateSpec("", "ExpDate", &c.ExpDate),
				dateSpec("", "ValidDate", &c.ValidDate),
			})
		}}.standIn(&p.EncryptedCard),
	})
}

func parseLoyalty(el *etree.Element, path string) (*Loyalty, error) {
	l := &Loyalty{}
	if err := parseAttrs(el, path, attrs{
		{"Mode", &l.Mode}, {"Name", &l.Name}, {"Type", &l.Type}, {"Number", (*string)(&l.Number)},
		{"Verification", (*string)(&l.Verification)},
	}); err != nil {
		return l, err
	}
	return l, parseChildren(el, path, []childSpec{
		dateSpec("", "ExpDate", &l.ExpDate),
		dateSpec("", "ValidDate", &l.ValidDate),
	})
}

func parseUser(el *etree.Element, path string) (*User, error) {
	u := &User{}
	if err := parseAttrs(el, path, attrs{
		{"Mode", &u.Mode}, {"CertificateURL", &u.CertificateURL},
		{"DataCountry", &u.DataCountry}, {"DataLanguage", &u.DataLanguage},
	}); err != nil {
		return u, err
	}
	return u, parseChildren(el, path, []childSpec{
		textSpec("UserID", &u.UserID),
		secretTextSpec("Password", &u.Password, &u.EncryptedPassword),
	})
}

func parseTransaction(el *etree.Element, path string) (*Transaction, error) {
	t := &Transaction{}
	if err := parseAttrs(el, path, attrs{
		{"Mode", &t.Mode}, {"Currency", &t.Currency}, {"Type", &t.Type}, {"Amount", &t.Amount},
	}); err != nil {
		return t, err
	}
	return t, parseChildren(el, path, []childSpec{
		{local: "Id", parse: func(el *etree.Element, path string) error {
			id := &TransactionID{}
			t.ID = id
			return parseLeafElement(el, path, attrs{
				{"Mode", &id.Mode}, {"Value", &id.Value}, {"CID", &id.CID},
				{"Reference", &id.Reference}, {"Acquire", &id.Acquire}, {"Forward", &id.Forward},
			}, nil)
		}},
		{local: "Code", parse: func(el *etree.Element, path string) error {
			c := &Code{}
			t.Code = c
			return parseLeafElement(el, path, attrs{
				{"Mode", &c.Mode}, {"Processing", &c.Processing}, {"Approval", &c.Approval},
				{"Retrieval", &c.Retrieval}, {"Action", &c.Action}, {"Reason", &c.Reason}, {"POS", &c.POS},
			}, nil)
		}},
		{local: "Date", parse: func(el *etree.Element, path string) error {
			d := &TransactionDate{}
			t.Date = d
			if err := parseAttrs(el, path, attrs{{"Mode", &d.Mode}, {"Value", &d.Value}}); err != nil {
				return err
			}
			return parseChildren(el, path, []childSpec{
				dateSpec("", "Effective", &d.Effective),
				dateSpec("", "Settle", &d.Settle),
				dateSpec("", "Capture", &d.Capture),
			})
		}},
		{local: "Data", parse: func(el *etree.Element, path string) error {
			d := &Data{}
			t.Data = d
			if err := parseAttrs(el, path, attrs{{"Mode", &d.Mode}}); err != nil {
				return err
			}
			return parseChildren(el, path, []childSpec{
				textSpec("Trace", &d.Trace),
				textSpec("PrivateUse", &d.PrivateUse),
				textSpec("Response", &d.Response),
				textSpec("AAV", &d.AAV),
				secretTextSpec("Track1", &d.Track1, &d.EncryptedTrack1),
				secretTextSpec("Track2", &d.Track2, &d.EncryptedTrack2),
			})
		}},
		textSpec("Inquiry", &t.Inquiry),
		textSpec("Signature", &t.Signature),
	})
}

// Extension elements.

// extTextSpec is a slot for an extension text element without attributes.
func extTextSpec(local string, dst *string) childSpec {
	return childSpec{ns: ExtNamespace, local: local, parse: func(el *etree.Element, path string) error {
		return parseLeafElement(el, path, nil, dst)
	}}
}

func parseUserData(el *etree.Element, path string) (*UserData, error) {
	u := &UserData{}
	if err := parseAttrs(el, path, attrs{{"Gender", &u.Gender}, {"Preferences", &u.Preferences}}); err != nil {
		return u, err
	}
	return u, parseChildren(el, path, []childSpec{
		childSpec{ns: ExtNamespace, local: "BirthDate", parse: func(el *etree.Element, path string) error {
			b := &BirthDate{}
			u.BirthDate = b
			return parseLeafElement(el, path, attrs{
				{"Day", (*string)(&b.Day)}, {"Month", (*string)(&b.Month)}, {"Year", (*string)(&b.Year)},
			}, nil)
		}}.standIn(&u.EncryptedBirthDate),
	})
}

func parseBankAccount(el *etree.Element, path string) (*BankAccount, error) {
	b := &BankAccount{}
	if err := parseAttrs(el, path, attrs{{"BankCode", &b.BankCode}, {"Role", &b.Role}}); err != nil {
		return b, err
	}
	return b, parseChildren(el, path, []childSpec{
		extTextSpec("Holder", &b.Holder),
		extTextSpec("AccountNumber", (*string)(&b.AccountNumber)).standIn(&b.EncryptedAccountNumber),
	})
}

func parseTransfer(el *etree.Element, path string) (*Transfer, error) {
	t := &Transfer{}
	if err := parseAttrs(el, path, attrs{{"Purpose", &t.Purpose}}); err != nil {
		return t, err
	}
	return t, parseChildren(el, path, []childSpec{
		{ns: ExtNamespace, local: "Terms", parse: func(el *etree.Element, path string) error {
			tm := &Terms{}
			t.Terms = tm
			return parseLeafElement(el, path, attrs{
				{"Principal", &tm.Principal}, {"Currency", &tm.Currency},
				{"RepaymentDate", &tm.RepaymentDate}, {"InterestRate", &tm.InterestRate},
			}, &tm.Text)
		}},
	})
}

func parseAmountAuth(el *etree.Element, path string) (*AmountAuth, error) {
	a := &AmountAuth{}
	if err := parseAttrs(el, path, attrs{{"SessionID", &a.SessionID}, {"Ceiling", &a.Ceiling}, {"Currency", &a.Currency}}); err != nil {
		return a, err
	}
	return a, parseChildren(el, path, []childSpec{
		extTextSpec("Challenge", (*string)(&a.Challenge)).standIn(&a.EncryptedChallenge),
	})
}

func parseVirtualCard(el *etree.Element, path string) (*VirtualCard, error) {
	v := &VirtualCard{}
	if err := parseAttrs(el, path, attrs{{"Type", &v.Type}}); err != nil {
		return v, err
	}
	return v, parseChildren(el, path, []childSpec{
		extTextSpec("Number", (*string)(&v.Number)).standIn(&v.EncryptedNumber),
		dateSpec(ExtNamespace, "ExpDate", &v.ExpDate),
	})
}

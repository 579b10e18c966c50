package ecml

import (
	"github.com/beevik/etree"
)

// AppendTo writes the payload as children of container (a kecis:Payload
// element of a message being built), in the order documented on [Payload]:
// Ecom, the known extension elements, then the unknown ones. Encrypted
// stand-ins and unknown elements are written as copies in their slots;
// namespace declarations that container's scope already makes are dropped
// from them.
//
// Ecom is written in no namespace: if a default namespace is in scope at
// container, Ecom undeclares it (xmlns=""). When extension elements are
// written and the prefix kx is not bound to [ExtNamespace] in container's
// scope, container gets xmlns:kx (or, when container itself binds kx to
// something else, each extension element declares it).
//
// AppendTo fails, leaving container unchanged, if a value holds a character
// that XML 1.0 cannot carry (a control character, invalid UTF-8): it would
// not read back as written.
func (p *Payload) AppendTo(container *etree.Element) error {
	_, err := p.appendTo(container)
	return err
}

// appendTo is AppendTo, returning the copies of kept elements it inserted.
func (p *Payload) appendTo(container *etree.Element) ([]*etree.Element, error) {
	w := &writer{}
	scratch := etree.NewElement("scratch")
	p.write(w, scratch, container)
	if w.err != nil {
		return nil, w.err
	}
	if p.hasExt() {
		if uri, ok := lookupPrefix(container, ExtPrefix); !ok || uri != ExtNamespace {
			if ownsPrefix(container, ExtPrefix) || ok {
				for _, c := range scratch.ChildElements() {
					if c.Space == ExtPrefix && !ownsPrefix(c, ExtPrefix) {
						c.Attr = append([]etree.Attr{{Space: "xmlns", Key: ExtPrefix, Value: ExtNamespace}}, c.Attr...)
					}
				}
			} else {
				container.CreateAttr("xmlns:"+ExtPrefix, ExtNamespace)
			}
		}
	}
	for _, c := range scratch.ChildElements() {
		scratch.RemoveChild(c)
		container.AddChild(c)
		if c.Space == "" && c.Tag == "Ecom" {
			if uri, _ := lookupPrefix(container, ""); uri != "" {
				c.Attr = append([]etree.Attr{{Key: "xmlns", Value: ""}}, c.Attr...)
			}
		}
	}
	// Stand-ins and unknown elements were inserted against scratch; now that
	// they are in place, drop declarations the real scope already makes.
	pruneCopies(container, w.copies)
	return w.copies, nil
}

// ownsPrefix reports whether el itself declares prefix.
func ownsPrefix(el *etree.Element, prefix string) bool {
	for _, a := range el.Attr {
		if a.Space == "xmlns" && a.Key == prefix {
			return true
		}
	}
	return false
}

// pruneCopies drops, on the root of each copied element, the namespace
// declarations that its new scope already makes.
func pruneCopies(_ *etree.Element, copies []*etree.Element) {
	for _, cp := range copies {
		parent := cp.Parent()
		kept := cp.Attr[:0]
		for _, a := range cp.Attr {
			if isNSDecl(a) && parent != nil {
				prefix := a.Key
				if a.Space == "" {
					prefix = ""
				}
				if uri, ok := lookupPrefix(parent, prefix); ok && uri == a.Value {
					continue
				}
			}
			kept = append(kept, a)
		}
		cp.Attr = kept
	}
}

// hasExt reports whether anything but Ecom is in the payload.
func (p *Payload) hasExt() bool {
	return p.UserData != nil || p.Device != nil || len(p.BankAccounts) > 0 || p.Transfer != nil ||
		p.AmountAuth != nil || p.VirtualCard != nil || p.Escrow != nil || p.CardAuth != nil ||
		p.OneTimeCode != "" || p.EncryptedOneTimeCode != nil ||
		p.KeyIn != nil || p.EncryptedKeyIn != nil || len(p.Unknown) > 0
}

// writer builds elements and remembers the first value XML cannot carry.
type writer struct {
	err    error
	copies []*etree.Element
}

func (w *writer) elem(parent *etree.Element, tag string) *etree.Element {
	return parent.CreateElement(tag)
}

// attr writes a non-empty attribute.
func (w *writer) attr(el *etree.Element, path, key, value string) {
	if value == "" {
		return
	}
	if !validXMLString(value) && w.err == nil {
		w.err = parseErr(path+"/@"+key, "value holds a character XML cannot carry")
	}
	el.CreateAttr(key, value)
}

// text writes character content.
func (w *writer) text(el *etree.Element, path, value string) {
	if value == "" {
		return
	}
	if !validXMLString(value) && w.err == nil {
		w.err = parseErr(path, "value holds a character XML cannot carry")
	}
	el.SetText(value)
}

// copyOf inserts a copy of a kept element (stand-in or unknown).
func (w *writer) copyOf(parent, el *etree.Element) {
	if el == nil {
		return
	}
	cp := el.Copy()
	parent.AddChild(cp)
	w.copies = append(w.copies, cp)
}

func (p *Payload) write(w *writer, scratch, _ *etree.Element) {
	if p.Ecom != nil {
		p.Ecom.write(w, scratch)
	}
	kx := func(local string) string { return ExtPrefix + ":" + local }
	if u := p.UserData; u != nil {
		path := "/kx:UserData"
		el := w.elem(scratch, kx("UserData"))
		w.attr(el, path, "Gender", u.Gender)
		w.attr(el, path, "Preferences", u.Preferences)
		if b := u.BirthDate; b != nil {
			bp := path + "/kx:BirthDate"
			be := w.elem(el, kx("BirthDate"))
			w.attr(be, bp, "Day", string(b.Day))
			w.attr(be, bp, "Month", string(b.Month))
			w.attr(be, bp, "Year", string(b.Year))
		}
		w.copyOf(el, u.EncryptedBirthDate)
	}
	if d := p.Device; d != nil {
		el := w.elem(scratch, kx("Device"))
		w.attr(el, "/kx:Device", "ID", d.ID)
		w.attr(el, "/kx:Device", "Type", d.Type)
	}
	for _, b := range p.BankAccounts {
		if b == nil {
			continue
		}
		path := "/kx:BankAccount"
		el := w.elem(scratch, kx("BankAccount"))
		w.attr(el, path, "BankCode", b.BankCode)
		w.attr(el, path, "Role", b.Role)
		if b.Holder != "" {
			w.text(w.elem(el, kx("Holder")), path+"/kx:Holder", b.Holder)
		}
		if b.AccountNumber != "" {
			w.text(w.elem(el, kx("AccountNumber")), path+"/kx:AccountNumber", string(b.AccountNumber))
		}
		w.copyOf(el, b.EncryptedAccountNumber)
	}
	if t := p.Transfer; t != nil {
		path := "/kx:Transfer"
		el := w.elem(scratch, kx("Transfer"))
		w.attr(el, path, "Purpose", t.Purpose)
		if tm := t.Terms; tm != nil {
			tp := path + "/kx:Terms"
			te := w.elem(el, kx("Terms"))
			w.attr(te, tp, "Principal", tm.Principal)
			w.attr(te, tp, "Currency", tm.Currency)
			w.attr(te, tp, "RepaymentDate", tm.RepaymentDate)
			w.attr(te, tp, "InterestRate", tm.InterestRate)
			w.text(te, tp, tm.Text)
		}
	}
	if a := p.AmountAuth; a != nil {
		path := "/kx:AmountAuth"
		el := w.elem(scratch, kx("AmountAuth"))
		w.attr(el, path, "SessionID", a.SessionID)
		w.attr(el, path, "Ceiling", a.Ceiling)
		w.attr(el, path, "Currency", a.Currency)
		if a.Challenge != "" {
			w.text(w.elem(el, kx("Challenge")), path+"/kx:Challenge", string(a.Challenge))
		}
		w.copyOf(el, a.EncryptedChallenge)
	}
	if v := p.VirtualCard; v != nil {
		path := "/kx:VirtualCard"
		el := w.elem(scratch, kx("VirtualCard"))
		w.attr(el, path, "Type", v.Type)
		if v.Number != "" {
			w.text(w.elem(el, kx("Number")), path+"/kx:Number", string(v.Number))
		}
		w.copyOf(el, v.EncryptedNumber)
		if d := v.ExpDate; d != nil {
			w.date(el, path, kx("ExpDate"), d, false)
		}
	}
	if e := p.Escrow; e != nil {
		el := w.elem(scratch, kx("Escrow"))
		for _, a := range [][2]string{{"State", e.State}, {"Carrier", e.Carrier}, {"Tracking", e.Tracking},
			{"ConfirmBy", e.ConfirmBy}, {"Reason", e.Reason}, {"Auto", e.Auto}} {
			w.attr(el, "/kx:Escrow", a[0], a[1])
		}
	}
	if c := p.CardAuth; c != nil {
		const path = "/kx:CardAuth"
		el := w.elem(scratch, kx("CardAuth"))
		w.attr(el, path, "Acquirer", c.Acquirer)
		w.attr(el, path, "VirtualCard", c.VirtualCard)
		w.attr(el, path, "Use", c.Use)
		w.attr(el, path, "MerchantLock", c.MerchantLock)
		w.attr(el, path, "NotOnOrAfter", c.NotOnOrAfter)
	}
	if p.OneTimeCode != "" {
		w.text(w.elem(scratch, kx("OneTimeCode")), "/kx:OneTimeCode", string(p.OneTimeCode))
	}
	w.copyOf(scratch, p.EncryptedOneTimeCode)
	if k := p.KeyIn; k != nil {
		el := w.elem(scratch, kx("KeyIn"))
		w.attr(el, "/kx:KeyIn", "PasswordPrefix", string(k.PasswordPrefix))
		w.attr(el, "/kx:KeyIn", "BirthDate", string(k.BirthDate))
		w.attr(el, "/kx:KeyIn", "BusinessNumber", string(k.BusinessNumber))
	}
	w.copyOf(scratch, p.EncryptedKeyIn)
	for _, u := range p.Unknown {
		w.copyOf(scratch, u)
	}
}

// date writes a [Day Month Year] element; mode says whether Mode is written.
func (w *writer) date(parent *etree.Element, parentPath, tag string, d *Date, mode bool) {
	path := parentPath + "/" + tag
	el := w.elem(parent, tag)
	if mode {
		w.attr(el, path, "Mode", d.Mode)
	}
	w.attr(el, path, "Day", d.Day)
	w.attr(el, path, "Month", d.Month)
	w.attr(el, path, "Year", d.Year)
}

// textEl writes an ECML text element with its Mode.
func (w *writer) textEl(parent *etree.Element, parentPath, tag string, t *Text) {
	if t == nil {
		return
	}
	path := parentPath + "/" + tag
	el := w.elem(parent, tag)
	w.attr(el, path, "Mode", t.Mode)
	w.text(el, path, t.Value)
}

func (w *writer) secretTextEl(parent *etree.Element, parentPath, tag string, t *SecretText) {
	if t == nil {
		return
	}
	w.textEl(parent, parentPath, tag, &Text{Mode: t.Mode, Value: string(t.Value)})
}

func (e *Ecom) write(w *writer, parent *etree.Element) {
	const path = "/Ecom"
	el := w.elem(parent, "Ecom")
	w.attr(el, path, "id", e.ID)
	w.attr(el, path, "Mode", e.Mode)
	w.attr(el, path, "ConsumerOrderID", e.ConsumerOrderID)
	w.attr(el, path, "Merchant", e.Merchant)
	w.attr(el, path, "Processor", e.Processor)
	w.attr(el, path, "SchemaVersion", e.SchemaVersion)
	w.attr(el, path, "WalletID", e.WalletID)
	w.attr(el, path, "WalletLocation", e.WalletLocation)
	e.ShipTo.write(w, el, path, "ShipTo")
	e.BillTo.write(w, el, path, "BillTo")
	e.ReceiptTo.write(w, el, path, "ReceiptTo")
	if pm := e.Payment; pm != nil {
		pp := path + "/Payment"
		pe := w.elem(el, "Payment")
		w.attr(pe, pp, "Mode", pm.Mode)
		if c := pm.Card; c != nil {
			cp := pp + "/Card"
			ce := w.elem(pe, "Card")
			w.attr(ce, cp, "Mode", c.Mode)
			w.attr(ce, cp, "Name", c.Name)
			w.attr(ce, cp, "Type", c.Type)
			w.attr(ce, cp, "Number", string(c.Number))
			w.attr(ce, cp, "Protocols", c.Protocols)
			w.attr(ce, cp, "Verification", string(c.Verification))
			w.attr(ce, cp, "Issuer", c.Issuer)
			if c.ExpDate != nil {
				w.date(ce, cp, "ExpDate", c.ExpDate, true)
			}
			if c.ValidDate != nil {
				w.date(ce, cp, "ValidDate", c.ValidDate, true)
			}
		}
		w.copyOf(pe, pm.EncryptedCard)
	}
	if l := e.Loyalty; l != nil {
		lp := path + "/Loyalty"
		le := w.elem(el, "Loyalty")
		w.attr(le, lp, "Mode", l.Mode)
		w.attr(le, lp, "Name", l.Name)
		w.attr(le, lp, "Type", l.Type)
		w.attr(le, lp, "Number", string(l.Number))
		w.attr(le, lp, "Verification", string(l.Verification))
		if l.ExpDate != nil {
			w.date(le, lp, "ExpDate", l.ExpDate, true)
		}
		if l.ValidDate != nil {
			w.date(le, lp, "ValidDate", l.ValidDate, true)
		}
	}
	w.copyOf(el, e.EncryptedLoyalty)
	if u := e.User; u != nil {
		up := path + "/User"
		ue := w.elem(el, "User")
		w.attr(ue, up, "Mode", u.Mode)
		w.attr(ue, up, "CertificateURL", u.CertificateURL)
		w.attr(ue, up, "DataCountry", u.DataCountry)
		w.attr(ue, up, "DataLanguage", u.DataLanguage)
		w.textEl(ue, up, "UserID", u.UserID)
		w.secretTextEl(ue, up, "Password", u.Password)
		w.copyOf(ue, u.EncryptedPassword)
	}
	if m := e.MerchantInfo; m != nil {
		mp := path + "/Merchant"
		me := w.elem(el, "Merchant")
		w.attr(me, mp, "id", m.ID)
		w.attr(me, mp, "Mode", m.Mode)
		if t := m.Terminal; t != nil {
			tp := mp + "/Terminal"
			te := w.elem(me, "Terminal")
			w.attr(te, tp, "id", t.ID)
			w.attr(te, tp, "Mode", t.Mode)
			w.attr(te, tp, "Data", t.Data)
		}
	}
	if t := e.Transaction; t != nil {
		t.write(w, el, path)
	}
	if tc := e.TransactionComplete; tc != nil {
		te := w.elem(el, "TransactionComplete")
		w.attr(te, path+"/TransactionComplete", "Mode", tc.Mode)
	}
}

func (a *Address) write(w *writer, parent *etree.Element, parentPath, tag string) {
	if a == nil {
		return
	}
	path := parentPath + "/" + tag
	el := w.elem(parent, tag)
	w.attr(el, path, "id", a.ID)
	w.attr(el, path, "Mode", a.Mode)
	if p := a.Postal; p != nil {
		pp := path + "/Postal"
		pe := w.elem(el, "Postal")
		w.attr(pe, pp, "Mode", p.Mode)
		w.attr(pe, pp, "PostalCode", p.PostalCode)
		w.attr(pe, pp, "CountryCode", p.CountryCode)
		if n := p.Name; n != nil {
			np := pp + "/Name"
			ne := w.elem(pe, "Name")
			w.attr(ne, np, "Mode", n.Mode)
			w.attr(ne, np, "Prefix", n.Prefix)
			w.attr(ne, np, "First", n.First)
			w.attr(ne, np, "Middle", n.Middle)
			w.attr(ne, np, "Last", n.Last)
			w.attr(ne, np, "Suffix", n.Suffix)
		}
		w.textEl(pe, pp, "Company", p.Company)
		if s := p.Street; s != nil {
			sp := pp + "/Street"
			se := w.elem(pe, "Street")
			w.attr(se, sp, "Mode", s.Mode)
			w.attr(se, sp, "Line1", s.Line1)
			w.attr(se, sp, "Line2", s.Line2)
			w.attr(se, sp, "Line3", s.Line3)
		}
		w.textEl(pe, pp, "City", p.City)
		w.textEl(pe, pp, "StateProv", p.StateProv)
	}
	if t := a.Telecom; t != nil {
		tp := path + "/Telecom"
		te := w.elem(el, "Telecom")
		w.attr(te, tp, "Mode", t.Mode)
		if ph := t.Phone; ph != nil {
			pe := w.elem(te, "Phone")
			w.attr(pe, tp+"/Phone", "Mode", ph.Mode)
			w.attr(pe, tp+"/Phone", "Number", ph.Number)
		}
	}
	if o := a.Online; o != nil {
		op := path + "/Online"
		oe := w.elem(el, "Online")
		w.attr(oe, op, "Mode", o.Mode)
		if em := o.Email; em != nil {
			ee := w.elem(oe, "Email")
			w.attr(ee, op+"/Email", "Mode", em.Mode)
			w.attr(ee, op+"/Email", "Address", em.Address)
		}
	}
}

func (t *Transaction) write(w *writer, parent *etree.Element, parentPath string) {
	path := parentPath + "/Transaction"
	el := w.elem(parent, "Transaction")
	w.attr(el, path, "Mode", t.Mode)
	w.attr(el, path, "Currency", t.Currency)
	w.attr(el, path, "Type", t.Type)
	w.attr(el, path, "Amount", t.Amount)
	if id := t.ID; id != nil {
		ip := path + "/Id"
		ie := w.elem(el, "Id")
		w.attr(ie, ip, "Mode", id.Mode)
		w.attr(ie, ip, "Value", id.Value)
		w.attr(ie, ip, "CID", id.CID)
		w.attr(ie, ip, "Reference", id.Reference)
		w.attr(ie, ip, "Acquire", id.Acquire)
		w.attr(ie, ip, "Forward", id.Forward)
	}
	if c := t.Code; c != nil {
		cp := path + "/Code"
		ce := w.elem(el, "Code")
		w.attr(ce, cp, "Mode", c.Mode)
		w.attr(ce, cp, "Processing", c.Processing)
		w.attr(ce, cp, "Approval", c.Approval)
		w.attr(ce, cp, "Retrieval", c.Retrieval)
		w.attr(ce, cp, "Action", c.Action)
		w.attr(ce, cp, "Reason", c.Reason)
		w.attr(ce, cp, "POS", c.POS)
	}
	if d := t.Date; d != nil {
		dp := path + "/Date"
		de := w.elem(el, "Date")
		w.attr(de, dp, "Mode", d.Mode)
		w.attr(de, dp, "Value", d.Value)
		if d.Effective != nil {
			w.date(de, dp, "Effective", d.Effective, true)
		}
		if d.Settle != nil {
			w.date(de, dp, "Settle", d.Settle, true)
		}
		if d.Capture != nil {
			w.date(de, dp, "Capture", d.Capture, true)
		}
	}
	if d := t.Data; d != nil {
		dp := path + "/Data"
		de := w.elem(el, "Data")
		w.attr(de, dp, "Mode", d.Mode)
		w.textEl(de, dp, "Trace", d.Trace)
		w.textEl(de, dp, "PrivateUse", d.PrivateUse)
		w.textEl(de, dp, "Response", d.Response)
		w.textEl(de, dp, "AAV", d.AAV)
		w.secretTextEl(de, dp, "Track1", d.Track1)
		w.copyOf(de, d.EncryptedTrack1)
		w.secretTextEl(de, dp, "Track2", d.Track2)
		w.copyOf(de, d.EncryptedTrack2)
	}
	w.textEl(el, path, "Inquiry", t.Inquiry)
	w.textEl(el, path, "Signature", t.Signature)
}

// MarshalDocument writes the payload as a standalone document: a bare Ecom
// root when the payload has nothing but Ecom, otherwise a kecis:Payload root
// declaring xmlns:kecis and xmlns:kx. The output is UTF-8 with an XML
// declaration, indented by two spaces, deterministic (attributes in schema
// order), with character references for CR, TAB and LF in attribute values
// and for CR in text, so that every value reads back exactly. Leaf text is
// never re-indented, and kept stand-ins and unknown elements are written as
// they are, white space inside them included.
func (p *Payload) MarshalDocument() ([]byte, error) {
	doc := etree.NewDocument()
	doc.CreateProcInst("xml", `version="1.0" encoding="UTF-8"`)
	var (
		root   *etree.Element
		copies []*etree.Element
		err    error
	)
	if p.Ecom != nil && !p.hasExt() {
		holder := etree.NewElement("holder")
		if copies, err = p.appendTo(holder); err != nil {
			return nil, err
		}
		root = holder.ChildElements()[0]
		holder.RemoveChild(root)
	} else {
		root = etree.NewElement(ProtocolPrefix + ":" + PayloadElement)
		root.CreateAttr("xmlns:"+ProtocolPrefix, ProtocolNamespace)
		if p.hasExt() {
			root.CreateAttr("xmlns:"+ExtPrefix, ExtNamespace)
		}
		if copies, err = p.appendTo(root); err != nil {
			return nil, err
		}
	}
	doc.SetRoot(root)
	// Indent around the kept elements, not inside them: swap each for an
	// empty placeholder while indenting.
	placeholders := make([]*etree.Element, len(copies))
	for i, cp := range copies {
		ph := etree.NewElement("placeholder")
		parent := cp.Parent()
		parent.InsertChildAt(cp.Index(), ph)
		parent.RemoveChild(cp)
		placeholders[i] = ph
	}
	doc.IndentWithSettings(&etree.IndentSettings{Spaces: 2, PreserveLeafWhitespace: true})
	for i, ph := range placeholders {
		parent := ph.Parent()
		parent.InsertChildAt(ph.Index(), copies[i])
		parent.RemoveChild(ph)
	}
	doc.WriteSettings = etree.WriteSettings{CanonicalText: true, CanonicalAttrVal: true}
	return doc.WriteToBytes()
}

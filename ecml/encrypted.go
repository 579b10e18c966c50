package ecml

import "github.com/beevik/etree"

// sensitiveElements lists the elements that KECIS §8.1 ("what is
// encrypted") requires to travel as xenc:EncryptedData, by path from the
// payload container.
var sensitiveElements = []string{
	"/Ecom/Payment/Card",
	"/Ecom/Loyalty",
	"/Ecom/User/Password",
	"/Ecom/Transaction/Data/Track1",
	"/Ecom/Transaction/Data/Track2",
	"/kx:UserData/kx:BirthDate",
	"/kx:BankAccount/kx:AccountNumber",
	"/kx:AmountAuth/kx:Challenge",
	"/kx:VirtualCard/kx:Number",
	"/kx:OneTimeCode",
	"/kx:KeyIn",
}

// SensitiveElements returns, in document order, the clear elements inside a
// payload container that KECIS §8.1 says must be encrypted: Ecom/Payment/
// Card, Ecom/Loyalty, Ecom/User/Password, Ecom/Transaction/Data/Track1 and
// Track2, kx:UserData/kx:BirthDate, kx:BankAccount/kx:AccountNumber,
// kx:OneTimeCode, kx:AmountAuth/kx:Challenge, kx:VirtualCard/kx:Number and
// kx:KeyIn. container may also be a bare Ecom element.
//
// It reads the tree as it is, valid or not, so that the envelope layer can
// encrypt these elements in place (replacing each with an xenc:EncryptedData
// of Type [XMLEncElementType]) and check before sending that the list is
// empty. Elements already replaced are, naturally, not returned.
func SensitiveElements(container *etree.Element) []*etree.Element {
	var out []*etree.Element
	if ns, ok := nsOf(container); ok && ns == "" && container.Tag == "Ecom" {
		return sensitiveInEcom(container, out)
	}
	for _, c := range container.ChildElements() {
		ns, ok := nsOf(c)
		if !ok {
			continue
		}
		switch {
		case ns == "" && c.Tag == "Ecom":
			out = sensitiveInEcom(c, out)
		case ns == ExtNamespace:
			switch c.Tag {
			case "OneTimeCode", "KeyIn":
				out = append(out, c)
			case "UserData":
				out = appendChildren(out, c, ExtNamespace, "BirthDate")
			case "BankAccount":
				out = appendChildren(out, c, ExtNamespace, "AccountNumber")
			case "AmountAuth":
				out = appendChildren(out, c, ExtNamespace, "Challenge")
			case "VirtualCard":
				out = appendChildren(out, c, ExtNamespace, "Number")
			}
		}
	}
	return out
}

func sensitiveInEcom(ecom *etree.Element, out []*etree.Element) []*etree.Element {
	for _, c := range ecom.ChildElements() {
		if ns, ok := nsOf(c); !ok || ns != "" {
			continue
		}
		switch c.Tag {
		case "Payment":
			out = appendChildren(out, c, "", "Card")
		case "Loyalty":
			out = append(out, c)
		case "User":
			out = appendChildren(out, c, "", "Password")
		case "Transaction":
			for _, d := range c.ChildElements() {
				if ns, ok := nsOf(d); ok && ns == "" && d.Tag == "Data" {
					out = appendChildren(out, d, "", "Track1", "Track2")
				}
			}
		}
	}
	return out
}

// appendChildren appends the children of el in namespace ns with one of the
// local names.
func appendChildren(out []*etree.Element, el *etree.Element, ns string, locals ...string) []*etree.Element {
	for _, c := range el.ChildElements() {
		cns, ok := nsOf(c)
		if !ok || cns != ns {
			continue
		}
		for _, l := range locals {
			if c.Tag == l {
				out = append(out, c)
				break
			}
		}
	}
	return out
}

// IsSensitive reports whether el is one of the elements [SensitiveElements]
// returns. The local name and namespace decide; when el has a parent, the
// parent must be the one the path names (a Card outside Payment is not a
// payment card). A detached element (one just decrypted, say) is judged by
// its name alone; none of these names means anything else in ECML or the
// extension vocabulary.
func IsSensitive(el *etree.Element) bool {
	if el == nil {
		return false
	}
	ns, ok := nsOf(el)
	if !ok {
		return false
	}
	parentIs := func(pns, local string) bool {
		p := el.Parent()
		if p == nil || p.Tag == "" { // no parent, or the etree document node
			return true
		}
		ppns, ok := nsOf(p)
		return ok && ppns == pns && p.Tag == local
	}
	switch ns {
	case "":
		switch el.Tag {
		case "Card":
			return parentIs("", "Payment")
		case "Loyalty":
			return parentIs("", "Ecom")
		case "Password":
			return parentIs("", "User")
		case "Track1", "Track2":
			return parentIs("", "Data")
		}
	case ExtNamespace:
		switch el.Tag {
		case "OneTimeCode", "KeyIn":
			return true
		case "BirthDate":
			return parentIs(ExtNamespace, "UserData")
		case "AccountNumber":
			return parentIs(ExtNamespace, "BankAccount")
		case "Challenge":
			return parentIs(ExtNamespace, "AmountAuth")
		case "Number":
			return parentIs(ExtNamespace, "VirtualCard")
		}
	}
	return false
}

// isStandIn reports whether el is an xenc:EncryptedData of Type
// [XMLEncElementType].
func isStandIn(el *etree.Element) bool {
	ns, ok := nsOf(el)
	return ok && ns == XMLEncNamespace && el.Tag == "EncryptedData" &&
		plainAttr(el, "Type") == XMLEncElementType
}

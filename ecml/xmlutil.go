package ecml

import (
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/beevik/etree"
)

const xmlNamespace = "http://www.w3.org/XML/1998/namespace"

// lookupPrefix resolves a namespace prefix ("" for the default namespace) in
// the scope of el. ok is false for an unbound prefix; the default namespace
// is always bound ("" when nothing declares it).
func lookupPrefix(el *etree.Element, prefix string) (uri string, ok bool) {
	switch prefix {
	case "xml":
		return xmlNamespace, true
	case "xmlns":
		return "", false
	}
	for e := el; e != nil; e = e.Parent() {
		for _, a := range e.Attr {
			if prefix == "" && a.Space == "" && a.Key == "xmlns" {
				return a.Value, true
			}
			if prefix != "" && a.Space == "xmlns" && a.Key == prefix {
				return a.Value, true
			}
		}
	}
	return "", prefix == ""
}

// nsOf returns the namespace URI of el; ok is false if its prefix is
// unbound (etree does not check bindings, so every reader here must).
func nsOf(el *etree.Element) (string, bool) {
	return lookupPrefix(el, el.Space)
}

// isNSDecl reports whether a is a namespace declaration.
func isNSDecl(a etree.Attr) bool {
	return a.Space == "xmlns" || (a.Space == "" && a.Key == "xmlns")
}

// isXMLSpace reports whether s is only XML white space (S production).
func isXMLSpace(s string) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ' ', '\t', '\n', '\r':
		default:
			return false
		}
	}
	return true
}

// isXMLChar reports whether r is a Char of XML 1.0 (§2.2).
func isXMLChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		(r >= 0x20 && r <= 0xD7FF) ||
		(r >= 0xE000 && r <= 0xFFFD) ||
		(r >= 0x10000 && r <= 0x10FFFF)
}

// validXMLString reports whether s is valid UTF-8 made only of XML
// characters, so that it survives being written and read back.
func validXMLString(s string) bool {
	for i := 0; i < len(s); {
		r, w := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && w == 1) || !isXMLChar(r) {
			return false
		}
		i += w
	}
	return true
}

// detach returns a deep copy of el, without parent, that declares on its
// root every namespace prefix its subtree uses without declaring it, bound
// as in el's scope: the copy means the same wherever it is written (the
// standalone rule of KECIS §2.5). It fails on an unbound prefix or a
// directive (DOCTYPE) anywhere in the subtree.
func detach(el *etree.Element, path string) (*etree.Element, error) {
	var needed []string
	if err := collectPrefixes(el, nil, &needed, path); err != nil {
		return nil, err
	}
	cp := el.Copy()
	var decls, others []etree.Attr
	for _, a := range cp.Attr {
		if isNSDecl(a) {
			decls = append(decls, a)
		} else {
			others = append(others, a)
		}
	}
	for _, prefix := range needed {
		uri, ok := lookupPrefix(el, prefix)
		if !ok {
			return nil, parseErr(path, "namespace prefix %q is not bound", prefix)
		}
		if prefix == "" {
			if uri != "" {
				decls = append(decls, etree.Attr{Key: "xmlns", Value: uri})
			}
			continue
		}
		decls = append(decls, etree.Attr{Space: "xmlns", Key: prefix, Value: uri})
	}
	// Declarations first, sorted by prefix (the default one first), so that
	// a copy looks the same however often it is detached.
	slices.SortStableFunc(decls, func(a, b etree.Attr) int {
		return strings.Compare(declPrefix(a), declPrefix(b))
	})
	cp.Attr = nil
	for _, a := range append(decls, others...) {
		cp.CreateAttr(a.FullKey(), a.Value)
	}
	return cp, nil
}

// declPrefix is the prefix a namespace declaration binds ("" for xmlns).
func declPrefix(a etree.Attr) string {
	if a.Space == "" {
		return ""
	}
	return a.Key
}

// collectPrefixes appends to needed the prefixes that the subtree of el uses
// and does not declare itself; declared holds the prefixes declared between
// the detached root and el.
func collectPrefixes(el *etree.Element, declared []string, needed *[]string, path string) error {
	for _, a := range el.Attr {
		switch {
		case a.Space == "xmlns":
			declared = append(declared, a.Key)
		case a.Space == "" && a.Key == "xmlns":
			declared = append(declared, "")
		}
	}
	use := func(prefix string) {
		if prefix == "xml" || slices.Contains(declared, prefix) || slices.Contains(*needed, prefix) {
			return
		}
		*needed = append(*needed, prefix)
	}
	use(el.Space)
	for _, a := range el.Attr {
		if a.Space != "" && a.Space != "xmlns" {
			use(a.Space)
		}
	}
	for _, t := range el.Child {
		switch c := t.(type) {
		case *etree.Element:
			if err := collectPrefixes(c, slices.Clip(declared), needed, path); err != nil {
				return err
			}
		case *etree.Directive:
			return parseErr(path, "directives (DOCTYPE, ENTITY) are not allowed")
		}
	}
	return nil
}

// displayName is how paths name an element: ECML elements by local name,
// extension elements with the kx prefix, EncryptedData with xenc, anything
// else as written.
func displayName(ns string, el *etree.Element) string {
	switch ns {
	case "":
		return el.Tag
	case ExtNamespace:
		return ExtPrefix + ":" + el.Tag
	case XMLEncNamespace:
		return "xenc:" + el.Tag
	case ProtocolNamespace:
		return ProtocolPrefix + ":" + el.Tag
	}
	if el.Space == "" {
		return "{" + ns + "}" + el.Tag
	}
	return el.FullTag()
}

// quote quotes a public value for a message: PANs masked, at most 40
// characters.
func quote(s string) string {
	s = RedactPANs(s)
	if utf8.RuneCountInString(s) > 40 {
		r := []rune(s)
		s = string(r[:40]) + "…"
	}
	return strconv.Quote(s)
}

// plainAttr returns the value of el's unprefixed attribute key.
func plainAttr(el *etree.Element, key string) string {
	for _, a := range el.Attr {
		if a.Space == "" && a.Key == key {
			return a.Value
		}
	}
	return ""
}

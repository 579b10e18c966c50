package saml

import (
	"bytes"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/beevik/etree"
)

// Well-formedness that encoding/xml (and so etree) does not check, checked
// by ParseDocument after the parse (KECIS §2.5, §5.2, §9.5). encoding/xml
// accepts, among others:
//
//   - attributes with no white space between them (<a b="1"c="2"/>),
//   - names whose parts are not NCNames (a:0, whose local part starts with
//     a digit), since it checks only the whole name,
//   - any namespace declaration, including the prefix undeclaration
//     xmlns:p="" that Namespaces in XML 1.0 forbids, and prefixes bound to
//     nothing at all,
//   - two attributes with the same expanded name under different prefixes,
//   - raw tabs and line breaks in attribute values, which it keeps while
//     every conforming parser normalises them to spaces (XML 1.0 §3.3.3),
//   - an XML declaration without a version.
//
// Each of these either makes a document that conforming tools (xmlsec1,
// Santuario) refuse, or one they read — and canonicalise — differently from
// us. goxmldsig, which reads the same etree tree, may then agree with us on
// bytes no one else would produce: the fuzz target FuzzCanonicalizeExclusive
// found <A xmlns00="00000" xmlns:a="" a:0="0"A0="0"/>, which we ordered as if
// a:0 were in no namespace. Such a document is refused here; raw white
// space in attribute values alone is not refused but normalised, as every
// conforming parser does. So the one tree the pipeline reads is the tree
// every conforming parser builds.
//
// Names merely reserved (those beginning with "xml", such as an attribute
// xmlns00 or a prefix xmlfoo) are not errors: Namespaces in XML 1.0 §3 says
// processors must not treat them as fatal. xmlns00 is an ordinary
// attribute, not a namespace declaration, for us, goxmldsig and xmlsec1.

// xmlnsNamespace is the namespace bound to the prefix xmlns, which no
// declaration may name.
const xmlnsNamespace = "http://www.w3.org/2000/xmlns/"

type expandedName struct{ uri, local string }

// wfChecker walks the parsed tree with the namespace declarations in scope.
type wfChecker struct {
	scope []nsBinding
}

// checkTokens refuses comments, processing instructions and directives
// inside the message, names that are not qualified names, namespace
// declarations that Namespaces in XML 1.0 forbids, prefixes bound to
// nothing, and duplicate attributes (by qualified and by expanded name). A
// KECIS message is machine-written and needs none of them; refusing
// comments closes the comment-injection class (KECIS §9.2) outright.
func checkTokens(el *etree.Element) error {
	return (&wfChecker{}).element(el)
}

func (c *wfChecker) element(el *etree.Element) error {
	mark := len(c.scope)
	if !ncName(el.Tag) || (el.Space != "" && !ncName(el.Space)) {
		return ErrMalformed.WithCausef("element name %q is not a qualified name", el.FullTag())
	}
	for _, a := range el.Attr {
		if !ncName(a.Key) || (a.Space != "" && !ncName(a.Space)) {
			return ErrMalformed.WithCausef("attribute name %q on %s is not a qualified name", a.FullKey(), el.FullTag())
		}
		switch {
		case a.Space == "xmlns":
			if err := checkNSDecl(a.Key, a.Value); err != nil {
				return ErrMalformed.WithCausef("%s on %s: %s", a.FullKey(), el.FullTag(), err)
			}
			c.scope = append(c.scope, nsBinding{a.Key, a.Value})
		case a.Space == "" && a.Key == "xmlns":
			if err := checkNSDecl("", a.Value); err != nil {
				return ErrMalformed.WithCausef("xmlns on %s: %s", el.FullTag(), err)
			}
			c.scope = append(c.scope, nsBinding{"", a.Value})
		}
	}
	switch el.Space {
	case "", "xml":
	case "xmlns":
		return ErrMalformed.WithCausef("element %s has the prefix xmlns, which only declarations use", el.FullTag())
	default:
		if _, ok := lookupNS(c.scope, el.Space); !ok {
			return ErrMalformed.WithCausef("prefix %q of element %s is not declared", el.Space, el.FullTag())
		}
	}
	// Attributes are unique by expanded name (Namespaces in XML 1.0 §6.3),
	// which covers unique by qualified name (XML 1.0 §3.1).
	var buf [8]expandedName
	names := buf[:0]
	for _, a := range el.Attr {
		n := expandedName{local: a.Key}
		switch a.Space {
		case "":
			if a.Key == "xmlns" {
				n = expandedName{xmlnsNamespace, ""}
			}
		case "xmlns":
			n.uri = xmlnsNamespace
		case "xml":
			n.uri = xmlNamespace
		default:
			var ok bool
			if n.uri, ok = lookupNS(c.scope, a.Space); !ok {
				return ErrMalformed.WithCausef("prefix %q of attribute %s on %s is not declared", a.Space, a.FullKey(), el.FullTag())
			}
		}
		names = append(names, n)
	}
	if i, j := duplicateName(names); i >= 0 {
		a, b := el.Attr[i], el.Attr[j]
		if a.Space == b.Space {
			return ErrMalformed.WithCausef("duplicate attribute %s on %s", b.FullKey(), el.FullTag())
		}
		return ErrMalformed.WithCausef("attribute %s on %s repeats the expanded name {%s}%s of %s", b.FullKey(), el.FullTag(), names[j].uri, b.Key, a.FullKey())
	}
	for _, t := range el.Child {
		switch t := t.(type) {
		case *etree.Element:
			if err := c.element(t); err != nil {
				return err
			}
		case *etree.Comment:
			return ErrMalformed.WithCausef("comment inside %s", el.FullTag())
		case *etree.ProcInst:
			return ErrMalformed.WithCausef("processing instruction inside %s", el.FullTag())
		case *etree.Directive:
			return ErrDoctype.WithCausef("directive inside %s", el.FullTag())
		}
	}
	c.scope = c.scope[:mark]
	return nil
}

// duplicateName returns the indexes i < j of two equal names, or -1, -1.
func duplicateName(names []expandedName) (int, int) {
	if len(names) <= 8 {
		for j := range names {
			for i := 0; i < j; i++ {
				if names[i] == names[j] {
					return i, j
				}
			}
		}
		return -1, -1
	}
	seen := make(map[expandedName]int, len(names))
	for j, n := range names {
		if i, ok := seen[n]; ok {
			return i, j
		}
		seen[n] = j
	}
	return -1, -1
}

type wfError string

func (e wfError) Error() string { return string(e) }

// checkNSDecl applies the namespace constraints of Namespaces in XML 1.0 §3
// to the declaration of prefix ("" for the default namespace) as uri, and
// Canonical XML 1.0 §2's refusal of relative namespace URIs.
func checkNSDecl(prefix, uri string) error {
	switch {
	case prefix == "xmlns":
		return wfError("the prefix xmlns must not be declared")
	case prefix == "xml":
		if uri != xmlNamespace {
			return wfError("the prefix xml can be bound only to " + xmlNamespace)
		}
		return nil
	case uri == xmlNamespace:
		return wfError(xmlNamespace + " can be bound only to the prefix xml")
	case uri == xmlnsNamespace:
		return wfError(xmlnsNamespace + " must not be declared")
	case uri == "":
		if prefix != "" {
			// Namespaces in XML 1.0 has no prefix undeclaring (1.1 has).
			return wfError("a prefix cannot be undeclared (empty namespace name)")
		}
		return nil
	case !absoluteURI(uri):
		// Canonical XML 1.0 §2 (and so exclusive c14n) must fail on a
		// relative namespace URI; xmlsec1 does.
		return wfError("namespace name " + quoteShort(uri) + " is not an absolute URI")
	}
	return nil
}

// absoluteURI reports whether s starts with a URI scheme (RFC 3986 §3.1)
// and holds no character a URI reference cannot hold literally.
func absoluteURI(s string) bool {
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if isASCIILetter(c) || (i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			continue
		}
		break
	}
	if i == 0 || i >= len(s) || s[i] != ':' {
		return false
	}
	for j := 0; j < len(s); j++ {
		switch c := s[j]; {
		case c <= ' ' || c == 0x7f, c == '<', c == '>', c == '"', c == '{', c == '}', c == '|', c == '\\', c == '^', c == '`':
			return false
		}
	}
	return true
}

func isASCIILetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func quoteShort(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return `"` + s + `"`
}

// ncName reports whether s is an NCName (Namespaces in XML 1.0 §3): an XML
// 1.0 Name (fifth edition, §2.3) without a colon. encoding/xml checks only
// the whole name, so it accepts a:0, and once accepted names such as "x::a"
// or ":" which it re-serialises differently, the root of the round-trip
// attacks (golang/go#43168); KECIS refuses them all.
func ncName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if r == utf8.RuneError {
			return false
		}
		if !nameStartChar(r) && (i == 0 || !nameChar(r)) {
			return false
		}
	}
	return true
}

// nameStartChar is XML 1.0 (fifth edition) NameStartChar, without ':'.
func nameStartChar(r rune) bool {
	switch {
	case r < 0x80:
		return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '_'
	case r >= 0xC0 && r <= 0xD6, r >= 0xD8 && r <= 0xF6, r >= 0xF8 && r <= 0x2FF,
		r >= 0x370 && r <= 0x37D, r >= 0x37F && r <= 0x1FFF, r >= 0x200C && r <= 0x200D,
		r >= 0x2070 && r <= 0x218F, r >= 0x2C00 && r <= 0x2FEF, r >= 0x3001 && r <= 0xD7FF,
		r >= 0xF900 && r <= 0xFDCF, r >= 0xFDF0 && r <= 0xFFFD, r >= 0x10000 && r <= 0xEFFFF:
		return true
	}
	return false
}

// nameChar is XML 1.0 (fifth edition) NameChar, without ':'.
func nameChar(r rune) bool {
	return nameStartChar(r) || r == '-' || r == '.' || r >= '0' && r <= '9' || r == 0xB7 ||
		r >= 0x300 && r <= 0x36F || r >= 0x203F && r <= 0x2040
}

// checkLexical checks, in the raw bytes of a document encoding/xml has
// parsed into root and checkTokens has admitted (no DOCTYPE, no comment, no
// processing instruction but a leading XML declaration, one root), what
// encoding/xml's tokenizer lets through: the XML declaration's grammar (XML
// 1.0 §2.8) and white space between attributes (§3.1). It also completes
// what the tokenizer leaves undone: attribute-value normalisation (§3.3.3),
// by which every raw tab, line feed and carriage return in an attribute
// value reads as a space (a character reference, &#9; &#10; &#13;, keeps
// its character). encoding/xml keeps the raw characters, so without it we
// would digest x&#xA;y where xmlsec1 and Santuario digest "x y".
//
// It builds nothing: it walks the start tags in step with the elements of
// root (document order) and checks each raw name against the parsed one,
// so it cannot read the document otherwise than the tokenizer did; any
// disagreement is refused. The only value it writes is a normalised
// attribute value, and only after checking that decoding the raw value as
// encoding/xml does gives the value encoding/xml gave.
func checkLexical(data []byte, root *etree.Element) error {
	elems := appendElements(make([]*etree.Element, 0, 64), root)
	i, k := 0, 0
	if bytes.HasPrefix(data, []byte("<?xml")) {
		n, err := xmlDecl(data)
		if err != nil {
			return err
		}
		i = n
	}
	for {
		j := bytes.IndexByte(data[i:], '<')
		if j < 0 {
			break
		}
		i += j
		rest := data[i:]
		switch {
		case bytes.HasPrefix(rest, cdataOpen):
			k := bytes.Index(rest, cdataClose)
			if k < 0 {
				return ErrMalformed.WithCausef("unterminated CDATA section")
			}
			i += k + len(cdataClose)
		case bytes.HasPrefix(rest, []byte("</")):
			k := bytes.IndexByte(rest, '>')
			if k < 0 {
				return ErrMalformed.WithCausef("unterminated end tag")
			}
			i += k + 1
		case len(rest) > 1 && (rest[1] == '!' || rest[1] == '?'):
			return ErrMalformed.WithCausef("markup %.12q the parse did not report", rest)
		default:
			if k >= len(elems) {
				return ErrMalformed.WithCausef("start tag %.20q the parse did not report", rest)
			}
			n, err := startTag(rest, elems[k])
			if err != nil {
				return err
			}
			i += n
			k++
		}
	}
	if k != len(elems) {
		return ErrMalformed.WithCausef("%d start tags for %d elements", k, len(elems))
	}
	return nil
}

// appendElements appends el and its descendant elements in document order.
func appendElements(dst []*etree.Element, el *etree.Element) []*etree.Element {
	dst = append(dst, el)
	for _, t := range el.Child {
		if c, ok := t.(*etree.Element); ok {
			dst = appendElements(dst, c)
		}
	}
	return dst
}

var (
	cdataOpen  = []byte("<![CDATA[")
	cdataClose = []byte("]]>")
)

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// qnameIs reports whether raw is the qualified name space:local (or local).
func qnameIs(raw []byte, space, local string) bool {
	if space == "" {
		return string(raw) == local
	}
	return len(raw) == len(space)+1+len(local) && string(raw[:len(space)]) == space &&
		raw[len(space)] == ':' && string(raw[len(space)+1:]) == local
}

// startTag checks the start tag at the beginning of b, which the tokenizer
// read as el, normalises el's attribute values, and returns the tag's length.
func startTag(b []byte, el *etree.Element) (int, error) {
	i := 1
	for i < len(b) && !isSpace(b[i]) && b[i] != '>' && b[i] != '/' {
		i++
	}
	name := b[1:i]
	if !qnameIs(name, el.Space, el.Tag) {
		return 0, ErrMalformed.WithCausef("start tag <%.40s read as %s", name, el.FullTag())
	}
	for n := 0; ; n++ {
		spaced := false
		for i < len(b) && isSpace(b[i]) {
			i++
			spaced = true
		}
		if i >= len(b) {
			return 0, ErrMalformed.WithCausef("unterminated start tag <%s", name)
		}
		if b[i] == '>' || b[i] == '/' {
			if n != len(el.Attr) {
				return 0, ErrMalformed.WithCausef("start tag <%s has %d attributes, read as %d", name, n, len(el.Attr))
			}
			if b[i] == '>' {
				return i + 1, nil
			}
			if i+1 < len(b) && b[i+1] == '>' {
				return i + 2, nil
			}
			return 0, ErrMalformed.WithCausef("stray / in start tag <%s", name)
		}
		at := i
		for i < len(b) && !isSpace(b[i]) && b[i] != '=' && b[i] != '>' && b[i] != '/' {
			i++
		}
		attr := b[at:i]
		if !spaced {
			// XML 1.0 §3.1: (S Attribute)*
			return 0, ErrMalformed.WithCausef("no white space before attribute %.40s in start tag <%s", attr, name)
		}
		if n >= len(el.Attr) || !qnameIs(attr, el.Attr[n].Space, el.Attr[n].Key) {
			return 0, ErrMalformed.WithCausef("attribute %.40s of <%s read otherwise", attr, name)
		}
		for i < len(b) && isSpace(b[i]) {
			i++
		}
		if i >= len(b) || b[i] != '=' {
			return 0, ErrMalformed.WithCausef("attribute %s in start tag <%s has no value", attr, name)
		}
		i++
		for i < len(b) && isSpace(b[i]) {
			i++
		}
		if i >= len(b) || (b[i] != '"' && b[i] != '\'') {
			return 0, ErrMalformed.WithCausef("value of attribute %s in start tag <%s is not quoted", attr, name)
		}
		q := b[i]
		end := bytes.IndexByte(b[i+1:], q)
		if end < 0 {
			return 0, ErrMalformed.WithCausef("unterminated value of attribute %s in start tag <%s", attr, name)
		}
		raw := b[i+1 : i+1+end]
		if bytes.ContainsAny(raw, "\t\n\r") {
			if v, ok := attrValue(raw, false); !ok || v != el.Attr[n].Value {
				return 0, ErrMalformed.WithCausef("value of attribute %s on <%s read otherwise", attr, name)
			}
			v, _ := attrValue(raw, true)
			el.Attr[n].Value = v
		}
		i += 1 + end + 1
	}
}

// attrValue decodes a raw attribute value: with normalise, as XML 1.0
// §3.3.3 does for CDATA attributes (every raw white-space character, a CR LF
// pair counting as one, becomes a space); without, as encoding/xml does
// (line ends become LF, nothing else changes). References decode alike.
func attrValue(raw []byte, normalise bool) (string, bool) {
	var b strings.Builder
	b.Grow(len(raw))
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; c {
		case '\r', '\n', '\t':
			if c == '\r' {
				if i+1 < len(raw) && raw[i+1] == '\n' {
					i++
				}
				c = '\n'
			}
			if normalise {
				c = ' '
			}
			b.WriteByte(c)
		case '&':
			j := bytes.IndexByte(raw[i:], ';')
			if j < 2 {
				return "", false
			}
			ref := string(raw[i+1 : i+j])
			i += j
			switch ref {
			case "lt":
				b.WriteByte('<')
			case "gt":
				b.WriteByte('>')
			case "amp":
				b.WriteByte('&')
			case "apos":
				b.WriteByte('\'')
			case "quot":
				b.WriteByte('"')
			default:
				var n uint64
				var err error
				switch {
				case strings.HasPrefix(ref, "#x"):
					n, err = strconv.ParseUint(ref[2:], 16, 32)
				case strings.HasPrefix(ref, "#"):
					n, err = strconv.ParseUint(ref[1:], 10, 32)
				default:
					return "", false
				}
				if err != nil || n > utf8.MaxRune {
					return "", false
				}
				b.WriteRune(rune(n))
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), true
}

// xmlDecl checks an XML declaration (XML 1.0 §2.8, XMLDecl) at the start of
// data and returns its length: version 1.0, then optionally encoding UTF-8
// and standalone, each after white space, in that order.
func xmlDecl(data []byte) (int, error) {
	end := bytes.Index(data, []byte("?>"))
	if end < 0 {
		return 0, ErrMalformed.WithCausef("unterminated XML declaration")
	}
	b := data[len("<?xml"):end]
	bad := func(why string) (int, error) {
		return 0, ErrMalformed.WithCausef("XML declaration %.80q: %s", data[:end+2], why)
	}
	names := []string{"version", "encoding", "standalone"}
	next := 0
	for {
		spaced := false
		for len(b) > 0 && isSpace(b[0]) {
			b = b[1:]
			spaced = true
		}
		if len(b) == 0 {
			break
		}
		if !spaced {
			return bad("no white space before " + quoteShort(string(b)))
		}
		k := 0
		for k < len(b) && !isSpace(b[k]) && b[k] != '=' {
			k++
		}
		name := string(b[:k])
		b = b[k:]
		found := false
		for next < len(names) {
			n := names[next]
			next++
			if n == name {
				found = true
				break
			}
			if n == "version" {
				return bad("version must come first")
			}
		}
		if !found {
			return bad("unexpected or misplaced " + quoteShort(name))
		}
		for len(b) > 0 && isSpace(b[0]) {
			b = b[1:]
		}
		if len(b) == 0 || b[0] != '=' {
			return bad(name + " has no value")
		}
		b = b[1:]
		for len(b) > 0 && isSpace(b[0]) {
			b = b[1:]
		}
		if len(b) == 0 || (b[0] != '"' && b[0] != '\'') {
			return bad(name + " is not quoted")
		}
		q := b[0]
		v := bytes.IndexByte(b[1:], q)
		if v < 0 {
			return bad(name + " is not terminated")
		}
		val := string(b[1 : 1+v])
		b = b[1+v+1:]
		switch name {
		case "version":
			if val != "1.0" {
				return bad("version must be 1.0")
			}
		case "encoding":
			if !strings.EqualFold(val, "UTF-8") {
				return bad("KECIS messages are UTF-8")
			}
		case "standalone":
			if val != "yes" && val != "no" {
				return bad("standalone must be yes or no")
			}
		}
	}
	if next == 0 {
		return bad("version is required")
	}
	return end + 2, nil
}

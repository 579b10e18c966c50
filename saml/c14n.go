package saml

import (
	"crypto/sha256"
	"slices"
	"sync"

	"github.com/beevik/etree"
)

// Exclusive XML Canonicalization 1.0 without comments
// (https://www.w3.org/TR/xml-exc-c14n/), written for the KECIS profile:
// no traversal budget (goxmldsig's canonicaliser stops at 1,000 nodes, which
// a metadata aggregate exceeds), no mutation of the input tree, and one
// pass with few allocations, because every message is canonicalised on the
// hot path of the receive pipeline. It is tested against goxmldsig's
// canonicaliser and against xmlsec1.
//
// Inputs are trees the receive pipeline has already admitted
// (ParseDocument): no DOCTYPE, no entity references left, no comments or
// processing instructions (canonicalization without comments drops
// comments; processing instructions, which c14n would keep, are refused
// before); every name a qualified name, every prefix bound to an absolute
// URI (never undeclared with xmlns:p=""), no two attributes with one
// expanded name, attribute values normalised (parse_wf.go). On anything
// else the output is unspecified: an unbound prefix would sort as if in no
// namespace.
//
// Attributes are ordered by namespace URI, then local name (C14N 1.0 §2.2),
// as xmlsec1 and Santuario order them. goxmldsig orders prefixed attributes
// by local name first, and renders xmlns="" where no default namespace has
// been rendered; there it is not our reference (goxmldsigDeviates in the
// tests, TestCanonicalizeMatchesXmlsec1).

const xmlNamespace = "http://www.w3.org/XML/1998/namespace"

type nsBinding struct{ prefix, uri string }

type c14n struct {
	buf      []byte
	scope    []nsBinding // declarations in scope in the input
	rendered []nsBinding // declarations in force in the output
	skip     *etree.Element
}

func lookupNS(stack []nsBinding, prefix string) (string, bool) {
	for i := len(stack) - 1; i >= 0; i-- {
		if stack[i].prefix == prefix {
			return stack[i].uri, true
		}
	}
	return "", false
}

// CanonicalizeExclusive returns the exclusive canonical form (without
// comments, empty InclusiveNamespaces PrefixList) of el and its
// descendants, leaving out the subtree skip (the enveloped-signature
// transform), with the namespace declarations el inherits from its
// ancestors in scope. el is not modified.
func CanonicalizeExclusive(el, skip *etree.Element) []byte {
	return canonicalizeInto(make([]byte, 0, 4096), el, skip)
}

// canonicalizeInto appends CanonicalizeExclusive(el, skip) to buf.
func canonicalizeInto(buf []byte, el, skip *etree.Element) []byte {
	c := &c14n{skip: skip, buf: buf}
	// In-scope declarations from the ancestors, outermost first.
	var chain []*etree.Element
	for p := el.Parent(); p != nil; p = p.Parent() {
		chain = append(chain, p)
	}
	for i := len(chain) - 1; i >= 0; i-- {
		c.pushDecls(chain[i])
	}
	c.element(el)
	return c.buf
}

// c14nBufs are the buffers digestExclusive canonicalises into: a message's
// canonical form is hashed and dropped, several times per message.
var c14nBufs = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// digestExclusive is the SHA-256 of CanonicalizeExclusive(el, skip), the
// digest a signature's Reference and SignedInfo take (KECIS §5.2).
func digestExclusive(el, skip *etree.Element) [sha256.Size]byte {
	bp := c14nBufs.Get().(*[]byte)
	b := canonicalizeInto((*bp)[:0], el, skip)
	sum := sha256.Sum256(b)
	if cap(b) <= 1<<20 { // a metadata aggregate's buffer is not kept
		*bp = b[:0]
		c14nBufs.Put(bp)
	}
	return sum
}

func (c *c14n) pushDecls(el *etree.Element) {
	for _, a := range el.Attr {
		switch {
		case a.Space == "xmlns":
			c.scope = append(c.scope, nsBinding{a.Key, a.Value})
		case a.Space == "" && a.Key == "xmlns":
			c.scope = append(c.scope, nsBinding{"", a.Value})
		}
	}
}

type c14nAttr struct {
	uri, local, qname, value string
}

func (c *c14n) element(el *etree.Element) {
	scopeMark, renderedMark := len(c.scope), len(c.rendered)
	c.pushDecls(el)

	// Visibly utilised prefixes: the element's, and its attributes'.
	var used [8]string
	prefixes := used[:0]
	addPrefix := func(p string) {
		if !slices.Contains(prefixes, p) {
			prefixes = append(prefixes, p)
		}
	}
	addPrefix(el.Space)
	var attrBuf [16]c14nAttr
	attrs := attrBuf[:0]
	for _, a := range el.Attr {
		if a.Space == "xmlns" || (a.Space == "" && a.Key == "xmlns") {
			continue
		}
		at := c14nAttr{local: a.Key, value: a.Value, qname: a.Key}
		if a.Space != "" {
			at.qname = a.Space + ":" + a.Key
			if a.Space == "xml" {
				at.uri = xmlNamespace
			} else {
				at.uri, _ = lookupNS(c.scope, a.Space)
				addPrefix(a.Space)
			}
		}
		attrs = append(attrs, at)
	}

	c.buf = append(c.buf, '<')
	if el.Space != "" {
		c.buf = append(c.buf, el.Space...)
		c.buf = append(c.buf, ':')
	}
	c.buf = append(c.buf, el.Tag...)

	// Namespace declarations, sorted by prefix (the default namespace first).
	sortStrings(prefixes)
	for _, p := range prefixes {
		if p == "xml" {
			continue
		}
		uri, _ := lookupNS(c.scope, p)
		have, ok := lookupNS(c.rendered, p)
		if p == "" {
			// xmlns="" is output only to undo a rendered default namespace.
			if (!ok && uri == "") || (ok && have == uri) {
				continue
			}
		} else if ok && have == uri {
			continue
		}
		c.rendered = append(c.rendered, nsBinding{p, uri})
		if p == "" {
			c.buf = append(c.buf, ` xmlns="`...)
		} else {
			c.buf = append(c.buf, ` xmlns:`...)
			c.buf = append(c.buf, p...)
			c.buf = append(c.buf, `="`...)
		}
		c.buf = appendEscapedAttr(c.buf, uri)
		c.buf = append(c.buf, '"')
	}

	// Attributes, sorted by namespace URI, then local name.
	for i := 1; i < len(attrs); i++ {
		for j := i; j > 0 && attrLess(attrs[j], attrs[j-1]); j-- {
			attrs[j], attrs[j-1] = attrs[j-1], attrs[j]
		}
	}
	for _, a := range attrs {
		c.buf = append(c.buf, ' ')
		c.buf = append(c.buf, a.qname...)
		c.buf = append(c.buf, `="`...)
		c.buf = appendEscapedAttr(c.buf, a.value)
		c.buf = append(c.buf, '"')
	}
	c.buf = append(c.buf, '>')

	for _, t := range el.Child {
		switch t := t.(type) {
		case *etree.Element:
			if t != c.skip {
				c.element(t)
			}
		case *etree.CharData:
			c.buf = appendEscapedText(c.buf, t.Data)
		}
	}

	c.buf = append(c.buf, "</"...)
	if el.Space != "" {
		c.buf = append(c.buf, el.Space...)
		c.buf = append(c.buf, ':')
	}
	c.buf = append(c.buf, el.Tag...)
	c.buf = append(c.buf, '>')
	c.scope = c.scope[:scopeMark]
	c.rendered = c.rendered[:renderedMark]
}

func attrLess(a, b c14nAttr) bool {
	if a.uri != b.uri {
		return a.uri < b.uri
	}
	return a.local < b.local
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// appendEscapedText escapes character data as C14N §2.3 requires.
func appendEscapedText(b []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '&':
			esc = "&amp;"
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '\r':
			esc = "&#xD;"
		default:
			continue
		}
		b = append(b, s[start:i]...)
		b = append(b, esc...)
		start = i + 1
	}
	return append(b, s[start:]...)
}

// appendEscapedAttr escapes an attribute value as C14N §2.3 requires.
func appendEscapedAttr(b []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '&':
			esc = "&amp;"
		case '<':
			esc = "&lt;"
		case '"':
			esc = "&quot;"
		case '\t':
			esc = "&#x9;"
		case '\n':
			esc = "&#xA;"
		case '\r':
			esc = "&#xD;"
		default:
			continue
		}
		b = append(b, s[start:i]...)
		b = append(b, esc...)
		start = i + 1
	}
	return append(b, s[start:]...)
}

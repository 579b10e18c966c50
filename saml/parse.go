package saml

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/beevik/etree"
)

// Limits bounds what the receive pipeline reads before any signature is
// checked (KECIS §5.1 steps 1–3).
type Limits struct {
	MaxBytes int // size cap; default 1 MiB
	MaxDepth int // element nesting cap; default 64
}

func (l Limits) maxBytes() int {
	if l.MaxBytes > 0 {
		return l.MaxBytes
	}
	return defaultMaxMsgBytes
}

func (l Limits) maxDepth() int {
	if l.MaxDepth > 0 {
		return l.MaxDepth
	}
	return defaultMaxDepth
}

var doctypeMarker = []byte("<!DOCTYPE")

// ParseDocument runs the first three steps of the receive pipeline: the size
// cap, the refusal of any DOCTYPE (no entities, no external references, no
// expansion), and a strict parse with a depth cap. It also refuses what the
// standalone rule forbids (KECIS §2.5): comments and processing instructions
// anywhere, a declared encoding other than UTF-8, and content outside the
// root; and what encoding/xml lets through although it is not well-formed
// XML with namespaces (parse_wf.go: attributes not separated by white space,
// names that are not qualified names, forbidden or relative namespace
// declarations, unbound prefixes, duplicate expanded names, a malformed XML
// declaration). Raw tabs and line breaks in attribute values, which
// encoding/xml keeps, are normalised to spaces (XML 1.0 §3.3.3). It
// returns the document's root.
func ParseDocument(data []byte, lim Limits) (*etree.Element, error) {
	if len(data) > lim.maxBytes() {
		return nil, ErrTooLarge.WithCausef("%d bytes, cap %d", len(data), lim.maxBytes())
	}
	if bytes.Contains(data, doctypeMarker) {
		return nil, ErrDoctype.WithCausef("DOCTYPE declaration present")
	}
	doc := etree.NewDocument()
	doc.ReadSettings = etree.ReadSettings{MaxDepth: lim.maxDepth(), PreserveDuplicateAttrs: true}
	if err := doc.ReadFromBytes(data); err != nil {
		if errors.Is(err, etree.ErrMaxDepth) {
			return nil, ErrMalformed.WithCausef("nesting deeper than %d", lim.maxDepth())
		}
		return nil, ErrMalformed.WithCause(err)
	}
	var root *etree.Element
	for _, t := range doc.Child {
		switch t := t.(type) {
		case *etree.Element:
			if root != nil {
				return nil, ErrMalformed.WithCausef("more than one root element")
			}
			root = t
		case *etree.ProcInst:
			if t.Target != "xml" || t.Index() != 0 {
				return nil, ErrMalformed.WithCausef("processing instruction %q", t.Target)
			}
			// The declaration itself (version, encoding UTF-8) is checked
			// by checkLexical.
		case *etree.CharData:
			if !t.IsWhitespace() {
				return nil, ErrMalformed.WithCausef("text outside the root element")
			}
		case *etree.Directive:
			return nil, ErrDoctype.WithCausef("directive outside the root element")
		case *etree.Comment:
			return nil, ErrMalformed.WithCausef("comment outside the root element")
		default:
			return nil, ErrMalformed.WithCausef("unexpected %T outside the root element", t)
		}
	}
	if root == nil {
		return nil, ErrMalformed.WithCausef("no root element")
	}
	if err := checkTokens(root); err != nil {
		return nil, err
	}
	if err := checkLexical(data, root); err != nil {
		return nil, err
	}
	return root, nil
}

// nsResolver resolves prefixes against declarations inside one subtree only,
// so that a signed root that relies on a declaration outside itself is seen
// (KECIS §2.5).
func resolveNS(el, top *etree.Element, prefix string) (string, bool) {
	if prefix == "xml" {
		return "http://www.w3.org/XML/1998/namespace", true
	}
	for e := el; e != nil; e = e.Parent() {
		for _, a := range e.Attr {
			if prefix == "" && a.Space == "" && a.Key == "xmlns" {
				return a.Value, true
			}
			if prefix != "" && a.Space == "xmlns" && a.Key == prefix {
				return a.Value, a.Value != ""
			}
		}
		if e == top {
			break
		}
	}
	if prefix == "" {
		return "", true // no default namespace in scope: no namespace
	}
	return "", false
}

// elementNS returns the namespace URI of el, resolved within top.
func elementNS(el, top *etree.Element) (string, error) {
	ns, ok := resolveNS(el, top, el.Space)
	if !ok {
		return "", fmt.Errorf("prefix %q of %s is not declared inside the signed element", el.Space, el.Tag)
	}
	return ns, nil
}

// is reports whether el is {ns}local, resolving within top.
func is(el, top *etree.Element, ns, local string) bool {
	if el.Tag != local {
		return false
	}
	got, err := elementNS(el, top)
	return err == nil && got == ns
}

// checkNamespaces verifies that every prefix used in the subtree of top is
// declared inside it.
func checkNamespaces(el, top *etree.Element) error {
	if _, err := elementNS(el, top); err != nil {
		return err
	}
	for _, a := range el.Attr {
		if a.Space == "" || a.Space == "xmlns" {
			continue
		}
		if _, ok := resolveNS(el, top, a.Space); !ok {
			return fmt.Errorf("attribute prefix %q on %s is not declared inside the signed element", a.Space, el.Tag)
		}
	}
	for _, c := range el.ChildElements() {
		if err := checkNamespaces(c, top); err != nil {
			return err
		}
	}
	return nil
}

// textOnly returns el's text when it holds character data only.
func textOnly(el *etree.Element) (string, error) {
	if len(el.ChildElements()) > 0 {
		return "", fmt.Errorf("%s must hold text only", el.Tag)
	}
	return el.Text(), nil
}

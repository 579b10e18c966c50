package saml

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

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
// root. It returns the document's root.
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
			if enc := xmlDeclEncoding(t.Inst); enc != "" && !strings.EqualFold(enc, "UTF-8") {
				return nil, ErrMalformed.WithCausef("encoding %q; KECIS messages are UTF-8", enc)
			}
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
	return root, nil
}

// checkTokens refuses comments, processing instructions and directives inside
// the message and duplicate attributes. A KECIS message is machine-written
// and needs none of them; refusing comments closes the comment-injection
// class (KECIS §9.2) outright.
func checkTokens(el *etree.Element) error {
	if !ncName(el.Tag) || (el.Space != "" && !ncName(el.Space)) {
		return ErrMalformed.WithCausef("element name %q is not a qualified name", el.FullTag())
	}
	seen := make(map[string]bool, len(el.Attr))
	for _, a := range el.Attr {
		if !ncName(a.Key) || (a.Space != "" && !ncName(a.Space)) {
			return ErrMalformed.WithCausef("attribute name %q on %s is not a qualified name", a.FullKey(), el.FullTag())
		}
		k := a.Space + ":" + a.Key
		if seen[k] {
			return ErrMalformed.WithCausef("duplicate attribute %s on %s", a.FullKey(), el.FullTag())
		}
		seen[k] = true
	}
	for _, t := range el.Child {
		switch t := t.(type) {
		case *etree.Element:
			if err := checkTokens(t); err != nil {
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
	return nil
}

func xmlDeclEncoding(inst string) string {
	i := strings.Index(inst, "encoding")
	if i < 0 {
		return ""
	}
	rest := strings.TrimLeft(inst[i+len("encoding"):], " \t\r\n")
	rest = strings.TrimPrefix(rest, "=")
	rest = strings.TrimLeft(rest, " \t\r\n")
	if rest == "" {
		return "?"
	}
	q := rest[0]
	if q != '"' && q != '\'' {
		return "?"
	}
	end := strings.IndexByte(rest[1:], q)
	if end < 0 {
		return "?"
	}
	return rest[1 : 1+end]
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

// childElements returns el's element children.
func childElements(el *etree.Element) []*etree.Element { return el.ChildElements() }

// textOnly returns el's text when it holds character data only.
func textOnly(el *etree.Element) (string, error) {
	if len(el.ChildElements()) > 0 {
		return "", fmt.Errorf("%s must hold text only", el.Tag)
	}
	return el.Text(), nil
}

// ncName reports whether s can be one part of a qualified name: non-empty
// and without a colon (Namespaces in XML §3). encoding/xml accepts names
// such as "x::a" or ":" and re-serialises them differently, the root of
// the round-trip attacks (golang/go#43168); KECIS refuses them outright.
func ncName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == ':' || c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '<' || c == '>' || c == '&' || c == '"' || c == '\'' || c == '=' || c == '/':
			return false
		}
	}
	return true
}

package callapi

import (
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/beevik/etree"

	"github.com/kecis/kecis/saml"
)

// maxAuthResultDepth bounds the nesting of an authentication result: the
// element, its signature, SignedInfo, Reference, Transforms, Transform
// and below.
const maxAuthResultDepth = 16

// ParseAuthenticationResults reads CallRequest.AuthenticationResults into
// the elements to embed (KECIS §3.2): each item the standard base64 of one
// XML document whose root is kecis:AuthenticationResult, read as the
// receive pipeline reads a message (saml.ParseDocument: a size cap, no
// DOCTYPE, no comment or processing instruction, a depth cap, well-formed
// with namespaces). The signature is not checked here: the recipient
// verifies each result with its issuer's keys. A refusal is
// ProblemInvalidAuthenticationResult naming the item, never its content.
func ParseAuthenticationResults(items []string) ([]*etree.Element, error) {
	if len(items) > MaxAuthenticationResults {
		return nil, ProblemBadRequest.WithDetail(fmt.Sprintf("authentication_results has %d items; at most %d", len(items), MaxAuthenticationResults))
	}
	var out []*etree.Element
	for i, item := range items {
		at := fmt.Sprintf("authentication_results[%d]", i)
		if len(item) > MaxAuthenticationResultLen {
			return nil, ProblemInvalidAuthenticationResult.WithDetail(fmt.Sprintf("%s is longer than %d characters", at, MaxAuthenticationResultLen))
		}
		raw, err := base64.StdEncoding.Strict().DecodeString(item)
		if err != nil || len(raw) == 0 {
			return nil, ProblemInvalidAuthenticationResult.WithDetail(at + " is not standard base64")
		}
		root, err := saml.ParseDocument(raw, saml.Limits{MaxBytes: MaxAuthenticationResultLen, MaxDepth: maxAuthResultDepth})
		if err != nil {
			return nil, ProblemInvalidAuthenticationResult.WithDetail(at + " " + xmlProblem(err)).WithCause(err)
		}
		if root.Tag != "AuthenticationResult" || root.NamespaceURI() != saml.NSKECIS {
			return nil, ProblemInvalidAuthenticationResult.WithDetail(at + " is not a kecis:AuthenticationResult element")
		}
		out = append(out, root)
	}
	return out, nil
}

// xmlProblem says why saml.ParseDocument refused a document, in words that
// repeat nothing of it.
func xmlProblem(err error) string {
	switch {
	case errors.Is(err, saml.ErrDoctype):
		return "holds a DOCTYPE or another directive"
	case errors.Is(err, saml.ErrTooLarge):
		return "is too large"
	}
	return "is not a well-formed XML document (one element, no comment or processing instruction)"
}

// EncodeAuthenticationResults is the reverse of ParseAuthenticationResults:
// the base64 of each element's XML, for CallResponse.AuthenticationResults
// (and a later CallRequest). An element that does not serialise is left
// out.
func EncodeAuthenticationResults(els []*etree.Element) []string {
	var out []string
	for _, el := range els {
		doc := etree.NewDocument()
		doc.SetRoot(el.Copy())
		b, err := doc.WriteToBytes()
		if err != nil {
			continue
		}
		out = append(out, base64.StdEncoding.EncodeToString(b))
	}
	return out
}

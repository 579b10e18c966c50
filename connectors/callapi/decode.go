package callapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/kecis/kecis/connectors/httpserver"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

// Service is the service URI of POST /v1/{group}/{operation}, or
// ProblemUnknownService when a segment is not what the OpenAPI description
// admits (lower-case letters and digits, at most 64).
func Service(group, operation string) (string, error) {
	if !pathSegment(group) || !pathSegment(operation) {
		return "", ProblemUnknownService
	}
	return saml.ServiceURI(group, operation), nil
}

func pathSegment(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if (s[i] < 'a' || s[i] > 'z') && (s[i] < '0' || s[i] > '9') {
			return false
		}
	}
	return true
}

// MaxIdempotencyKey is the longest Idempotency-Key accepted.
const MaxIdempotencyKey = 255

// CheckIdempotencyKey checks the Idempotency-Key header of a call to
// service: required for an operation that changes state (KECIS §7.1), at
// most MaxIdempotencyKey characters.
func CheckIdempotencyKey(service, key string) error {
	if saml.IsMutation(service) && key == "" {
		return ProblemIdempotencyKeyMissing
	}
	if len(key) > MaxIdempotencyKey {
		return ProblemIdempotencyKeyInvalid
	}
	return nil
}

// DecodeOptions admit the members of a CallRequest that not every server
// takes.
type DecodeOptions struct {
	// AuthenticationResults admits authentication_results: the hub's
	// facade and the sidecar's caller embed them
	// (ParseAuthenticationResults).
	AuthenticationResults bool
}

// DecodeCall reads a CallRequest strictly, as the OpenAPI description says
// (additionalProperties false): one JSON object; no member it does not
// name, names compared exactly (encoding/json alone would take "Fields"
// for "fields"); a member given twice refused; fields required; every
// value of its type — a field value that is not a JSON string is refused
// saying so; nothing after the object. Every refusal is ProblemBadRequest
// whose detail names members, never values. authentication_results is
// refused as a member it does not define: DecodeCallWith admits it.
func DecodeCall(body []byte) (*CallRequest, error) {
	return DecodeCallWith(body, DecodeOptions{})
}

// DecodeCallWith is DecodeCall admitting what o admits.
// authentication_results must be an array of at most
// MaxAuthenticationResults strings of 1 to MaxAuthenticationResultLen
// characters; what they hold is ParseAuthenticationResults' to check.
func DecodeCallWith(body []byte, o DecodeOptions) (*CallRequest, error) {
	members := []string{"recipient", "fields", "encrypted", "routing"}
	if o.AuthenticationResults {
		members = append(members, "authentication_results")
	}
	top, err := jsonObject(body, "the body", members...)
	if err != nil {
		return nil, err
	}
	in := &CallRequest{}
	if raw, ok := top["recipient"]; ok {
		if in.Recipient, err = jsonString(raw, "recipient"); err != nil {
			return nil, err
		}
	}
	raw, ok := top["fields"]
	if !ok {
		return nil, ProblemBadRequest.WithDetail("fields is required")
	}
	if in.Fields, err = jsonStrings(raw, "fields"); err != nil {
		return nil, err
	}
	if raw, ok := top["encrypted"]; ok {
		if in.Encrypted, err = jsonStrings(raw, "encrypted"); err != nil {
			return nil, err
		}
	}
	if raw, ok := top["routing"]; ok {
		m, err := jsonObject(raw, "routing", "card_bin", "card_last4", "bank_code")
		if err != nil {
			return nil, err
		}
		h := &RoutingHints{}
		for _, x := range []struct {
			name     string
			dst      *string
			min, max int
		}{{"card_bin", &h.CardBIN, 6, 8}, {"card_last4", &h.CardLast4, 4, 4}, {"bank_code", &h.BankCode, 3, 3}} {
			if *x.dst, err = jsonDigits(m, "routing", x.name, x.min, x.max); err != nil {
				return nil, err
			}
		}
		in.Routing = h
	}
	if raw, ok := top["authentication_results"]; ok {
		if in.AuthenticationResults, err = jsonStringArray(raw, "authentication_results", MaxAuthenticationResults, MaxAuthenticationResultLen); err != nil {
			return nil, err
		}
	}
	return in, nil
}

// jsonStringArray reads a member that must be an array of at most maxItems
// strings of 1 to maxLen bytes each; refusals name the member and the
// item, never the value.
func jsonStringArray(raw json.RawMessage, where string, maxItems, maxLen int) ([]string, error) {
	var items []json.RawMessage
	if len(raw) == 0 || raw[0] != '[' || json.Unmarshal(raw, &items) != nil {
		if kind := jsonKind(raw); kind != "" {
			return nil, ProblemBadRequest.WithDetail(where + " must be a JSON array of strings, not " + kind)
		}
		return nil, ProblemBadRequest.WithDetail(where + " must be a JSON array of strings")
	}
	if len(items) > maxItems {
		return nil, ProblemBadRequest.WithDetail(fmt.Sprintf("%s has %d items; at most %d", where, len(items), maxItems))
	}
	out := make([]string, len(items))
	for i, item := range items {
		at := fmt.Sprintf("%s[%d]", where, i)
		s, err := jsonString(item, at)
		if err != nil {
			return nil, err
		}
		if s == "" || len(s) > maxLen {
			return nil, ProblemBadRequest.WithDetail(fmt.Sprintf("%s must hold 1 to %d characters", at, maxLen))
		}
		out[i] = s
	}
	return out, nil
}

// DecodeRoute reads a RouteRequest as strictly as DecodeCall.
func DecodeRoute(body []byte) (*RouteRequest, error) {
	top, err := jsonObject(body, "the body", "service", "amount", "currency", "card_bin", "bank_code")
	if err != nil {
		return nil, err
	}
	in := &RouteRequest{}
	for _, x := range []struct {
		name string
		dst  *string
	}{{"service", &in.Service}, {"amount", &in.Amount}, {"currency", &in.Currency}} {
		if raw, ok := top[x.name]; ok {
			if *x.dst, err = jsonString(raw, x.name); err != nil {
				return nil, err
			}
		}
	}
	if in.Service == "" {
		return nil, ProblemBadRequest.WithDetail("service is required")
	}
	if in.CardBIN, err = jsonDigits(top, "", "card_bin", 6, 8); err != nil {
		return nil, err
	}
	if in.BankCode, err = jsonDigits(top, "", "bank_code", 3, 3); err != nil {
		return nil, err
	}
	return in, nil
}

// jsonObject splits one JSON object into its members. With allowed names,
// any other member is refused; a member given twice always is. Whatever
// follows the object is refused.
func jsonObject(data []byte, where string, allowed ...string) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if d, ok := tok.(json.Delim); err != nil || !ok || d != '{' {
		if kind := jsonKind(data); kind != "" {
			return nil, ProblemBadRequest.WithDetail(where + " must be a JSON object, not " + kind)
		}
		return nil, ProblemBadRequest.WithDetail(where + " must be a JSON object")
	}
	out := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		name, ok := tok.(string)
		if err != nil || !ok {
			return nil, ProblemBadRequest.WithDetail(where + " is not valid JSON")
		}
		if _, dup := out[name]; dup {
			return nil, ProblemBadRequest.WithDetail(where + " has the member " + PublicName(name) + " twice")
		}
		if allowed != nil && !slices.Contains(allowed, name) {
			return nil, ProblemBadRequest.WithDetail(where + " has a member the OpenAPI description does not define: " + PublicName(name) +
				" (it allows " + strings.Join(allowed, ", ") + ")")
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, ProblemBadRequest.WithDetail(where + " is not valid JSON")
		}
		out[name] = raw
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, ProblemBadRequest.WithDetail(where + " is not valid JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, ProblemBadRequest.WithDetail(where + " is followed by more data")
	}
	return out, nil
}

// jsonKind names the kind of a JSON value ("a number", "an array"…), or ""
// when raw is not one valid JSON value.
func jsonKind(raw []byte) string {
	if !json.Valid(raw) {
		return ""
	}
	raw = bytes.TrimLeft(raw, " \t\r\n")
	switch c := raw[0]; {
	case c == '"':
		return "a string"
	case c == '{':
		return "an object"
	case c == '[':
		return "an array"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == 'n':
		return "null"
	case c == '-' || (c >= '0' && c <= '9'):
		return "a number"
	}
	return ""
}

// jsonString reads a member that must be a JSON string (not null); a value
// of another kind is refused naming its kind, never repeating it (a card
// number sent as a JSON number must not come back).
func jsonString(raw json.RawMessage, where string) (string, error) {
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		if kind := jsonKind(raw); kind != "" && kind != "a string" {
			return "", ProblemBadRequest.WithDetail(where + " must be a JSON string, not " + kind)
		}
		return "", ProblemBadRequest.WithDetail(where + " must be a JSON string")
	}
	return s, nil
}

// jsonStrings reads a member that must be an object of strings. A value of
// fields of another kind is refused with the hint that every value is a
// string, amounts included.
func jsonStrings(raw json.RawMessage, where string) (map[string]string, error) {
	m, err := jsonObject(raw, where)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		if out[k], err = jsonString(v, where+"."+PublicName(k)); err != nil {
			if where == "fields" {
				err = ProblemBadRequest.WithDetail(httpserver.AsProblem(err).Detail() +
					`: every value of fields is a JSON string, amounts included ("15000", not 15000)`)
			}
			return nil, err
		}
	}
	return out, nil
}

// jsonDigits reads an optional member of m that must be a string of min to
// max digits (the OpenAPI patterns of BINs, last digits and bank codes).
func jsonDigits(m map[string]json.RawMessage, where, name string, min, max int) (string, error) {
	if where != "" {
		where += "."
	}
	raw, ok := m[name]
	if !ok {
		return "", nil
	}
	s, err := jsonString(raw, where+name)
	if err != nil {
		return "", err
	}
	if len(s) < min || len(s) > max || strings.Trim(s, "0123456789") != "" {
		if min == max {
			return "", ProblemBadRequest.WithDetail(fmt.Sprintf("%s%s must be %d digits", where, name, min))
		}
		return "", ProblemBadRequest.WithDetail(fmt.Sprintf("%s%s must be %d to %d digits", where, name, min, max))
	}
	return s, nil
}

// PublicName is a member or field name as an answer or a log line may
// repeat it, quoted: a short name of letters, digits and _ . - that holds
// no card number; anything else is not repeated.
func PublicName(s string) string {
	ok := s != "" && len(s) <= 64 && !ecml.ContainsPAN(s)
	for i := 0; ok && i < len(s); i++ {
		ch := s[i]
		ok = ch == '_' || ch == '.' || ch == '-' || (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')
	}
	if !ok {
		return "(a name not repeated)"
	}
	return strconv.Quote(s)
}

// ReadBody reads a request's body of at most max bytes. A larger one is
// ProblemTooLarge (413) saying the limit, one that could not be read
// ProblemUnreadable (400) — what the hub's own endpoints answer
// (httpserver.BodyProblem).
func ReadBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	if err != nil {
		p := httpserver.BodyProblem(err)
		if p.Is(ProblemTooLarge) {
			p = p.WithDetail(fmt.Sprintf("the body is larger than %d bytes", max))
		}
		return nil, p
	}
	return body, nil
}

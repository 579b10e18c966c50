package conformance

import (
	"fmt"
	"strings"

	"github.com/kecis/kecis/internal/xsd"
)

// Schema checks: a document the participant sent or published, validated
// against the KECIS 1.0 XML Schemas (docs/spec/schema, embedded) with
// xmllint, offline (internal/xsd). They judge the document's form only:
// KECIS §9.12 — a schema-valid message may still be forged, wrapped or
// replayed, which the other checks judge. Where xmllint or Debian's OASIS
// and W3C schema files are missing (a participant's site), each schema
// check is SKIPPED, naming the packages to install.

// schemaClause is the clause of a schema check: the schema file of
// docs/spec/schema and the type the document's root must have.
func schemaClause(file, typ string) string { return "schema/" + file + " " + typ }

// schemaCondition is the condition id checking, with the schema file and
// type of its clause, the document doc returns (nil: nothing to check,
// with why) whose root must be ns:local.
func schemaCondition(id, title, file, typ, ns, local string, needs []string, doc func(c *C) ([]byte, string)) *Condition {
	return &Condition{ID: id, Title: title, Clauses: []string{schemaClause(file, typ), "KECIS §9.12"}, Needs: needs,
		Run: func(c *C) error {
			data, why := doc(c)
			if data == nil {
				return Skip("%s", why)
			}
			return checkSchema(c, data, ns, local, file, typ)
		}}
}

// checkSchema validates data, whose root must be ns:local, and fails with
// each problem and its line.
func checkSchema(c *C, data []byte, ns, local, file, typ string) error {
	if err := xsd.Available(); err != nil {
		return Skip("the schema check cannot run here: %v", err)
	}
	gotNS, gotLocal, err := xsd.RootKind(data)
	if err != nil {
		return fmt.Errorf("the document has no root element to validate: %v", err)
	}
	if gotNS != ns || gotLocal != local {
		return fmt.Errorf("the document's root is {%s}%s, not {%s}%s (%s)", gotNS, gotLocal, ns, local, typ)
	}
	problems, err := (&xsd.Validator{}).Validate(c.Context(), data)
	if err != nil {
		return fmt.Errorf("the suite could not validate the document: %v", err)
	}
	if len(problems) == 0 {
		c.Note("valid against docs/spec/schema/%s (%s), with xmllint", file, typ)
		return nil
	}
	lines := make([]string, 0, len(problems))
	for _, p := range problems {
		lines = append(lines, p.String())
	}
	return fmt.Errorf("not valid against docs/spec/schema/%s (%s): %s", file, typ, strings.Join(lines, "; "))
}

package sidecar

import (
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"
)

// Environment references in the configuration: ${NAME} in a value is
// replaced by the environment variable NAME after the YAML is parsed, one
// scalar value at a time, never in a key and never over the raw text —
// so that a secret holding "# x", ": " or quotes arrives as it is, and
// cannot change the document's structure. "$${" stands for a literal
// "${"; any other "$" is literal. A variable that is not set is a mistake
// reported with its name and the key it is in, unless the reference gives
// a default: ${NAME:-default} stands for default when NAME is not set or
// empty, as in the shell (the default is literal text without "$" or "}").

// expandEnv expands every ${NAME} of the scalar values under n in place.
// lookup says whether a variable is set. Problems are reported through
// fail with the value's dotted key path (sequence items as [i]); unset
// collects the paths whose value named an unset variable.
func expandEnv(n ast.Node, path string, lookup func(string) (string, bool), fail func(path, msg string), unset map[string]bool) {
	switch m := n.(type) {
	case *ast.DocumentNode:
		expandEnv(m.Body, path, lookup, fail, unset)
	case *ast.MappingNode:
		for _, v := range m.Values {
			expandEnv(v, path, lookup, fail, unset)
		}
	case *ast.MappingValueNode:
		key := strings.Trim(m.Key.GetToken().Value, `"'`)
		p := key
		if path != "" {
			p = path + "." + key
		}
		if strings.Contains(key, "${") {
			fail(p, "${…} in a key is not expanded: only values are")
		}
		expandEnv(m.Value, p, lookup, fail, unset)
	case *ast.SequenceNode:
		for i, v := range m.Values {
			expandEnv(v, path+"["+strconv.Itoa(i)+"]", lookup, fail, unset)
		}
	case *ast.TagNode:
		expandEnv(m.Value, path, lookup, fail, unset)
	case *ast.AnchorNode:
		expandEnv(m.Value, path, lookup, fail, unset)
	case *ast.LiteralNode:
		expandEnv(m.Value, path, lookup, fail, unset)
	case *ast.StringNode:
		v, missing, err := expandValue(m.Value, lookup)
		if err != "" {
			fail(path, err)
			return
		}
		for _, name := range missing {
			fail(path, "${"+name+"} is not set")
			unset[path] = true
		}
		m.Value = v
	}
}

// expandValue expands one value: it returns the result, the variables
// that are not set (expanded as empty), and a syntax problem.
func expandValue(s string, lookup func(string) (string, bool)) (string, []string, string) {
	if !strings.Contains(s, "${") {
		return s, nil, ""
	}
	var (
		b       strings.Builder
		missing []string
	)
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), missing, ""
		}
		if i > 0 && s[i-1] == '$' { // "$${": a literal "${"
			b.WriteString(s[:i-1])
			b.WriteString("${")
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", nil, "has a ${ without its } (write $${ for a literal ${)"
		}
		ref := s[i+2 : i+end]
		name, def, hasDefault := strings.Cut(ref, ":-")
		if !isEnvName(name) || hasDefault && strings.Contains(def, "$") {
			return "", nil, strconv.Quote("${"+ref+"}") + " is not a variable reference (${NAME} or ${NAME:-default}, NAME letters, digits and _, " +
				"the default without $ or }; $${ for a literal ${)"
		}
		v, ok := lookup(name)
		switch {
		case hasDefault && (!ok || v == ""):
			v = def
		case !ok:
			missing = append(missing, name)
		}
		b.WriteString(v)
		s = s[i+end+1:]
	}
}

func isEnvName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for _, c := range []byte(s) {
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

package archtest

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kecis/kecis/internal/testutil"
)

const module = "github.com/kecis/kecis"

// A rule says what the packages at and below pkg may import (the longest
// pkg naming a package decides). Names are relative to the module; a name
// in a list stands for that package and every package below it.
type rule struct {
	pkg   string
	layer string   // as docs/architecture.md names it
	may   []string // project packages its code may import directly
	tests []string // what its tests may import besides (itself always)
	// links, when set, is all its code may link of the project, through
	// whatever package (go list -deps); never is what it may not link.
	links []string
	never []string
}

// Groups of the table below.
var (
	envelope = []string{"ecml", "saml"} // saml covers saml/metadata
	plumbing = []string{"internal", "connectors/sqlstore", "connectors/httpserver"}
	helpers  = []string{"internal", "connectors/sqlstore/sqltest", "saml/metadata/metadatatest"}
	// shared are the SDK's packages the hub uses too: the JSON API's wire
	// types (the facade and the sidecar speak the same JSON) and the
	// per-client rate limits.
	shared = []string{"connectors/callapi", "connectors/ratelimit"}
)

func join(groups ...[]string) []string { return slices.Concat(groups...) }

// layers is docs/architecture.md's table; change both together. From the
// bottom: the envelope layer, plumbing, the SDK, the hub, the suite, the
// outside companies, the wiring.
var layers = []rule{
	{pkg: "ecml", layer: "envelope"},
	{pkg: "saml", layer: "envelope", may: []string{"ecml"}, tests: helpers},
	{pkg: "saml/metadata", layer: "envelope", may: envelope, tests: helpers},

	// Plumbing: no protocol (testutil's log buffer fails a test that logs
	// a card number, with ecml.ContainsPAN).
	{pkg: "internal", layer: "plumbing", may: []string{"ecml", "internal"}},
	// The KECIS XML Schemas, embedded (docs/spec/schema.FS), and their
	// validators: internal/xsd (xmllint) materialises them; javaxsd (the
	// JDK's validator) reads them through it. The commands, the tools and
	// the suite import internal/xsd like any plumbing. The schemas' tests
	// validate the goldens of the envelope and of the SDK's services.
	{pkg: "docs/spec/schema", layer: "plumbing", tests: join(envelope, plumbing, helpers, []string{"connectors"})},
	{pkg: "internal/xsd", layer: "plumbing", may: []string{"ecml", "internal", "docs/spec/schema"}},
	{pkg: "connectors/sqlstore", layer: "plumbing", may: []string{"connectors/sqlstore", "internal"}},
	{pkg: "connectors/httpserver", layer: "plumbing", may: []string{"ecml"}, tests: helpers},

	// The SDK a participant links: never the hub, the suite or an example.
	{pkg: "connectors", layer: "SDK", may: join(envelope, plumbing, []string{"connectors"}), tests: helpers},
	// Its tests run the example PG's own adapter.yaml against the PG.
	{pkg: "connectors/sidecar", layer: "SDK", may: join(envelope, plumbing, []string{"connectors"}),
		tests: join(helpers, []string{"examples/pg"})},

	// The issuer's virtual card numbers (KECIS §15.4): plumbing for an
	// issuer's own database, no protocol.
	// The issuer's cardholder-authentication page (KECIS §15.7): an SDK
	// package like amountauth — the receive pipeline of connectors, never
	// an example's issuer (which implements its Cardholders).
	{pkg: "connectors/cardauth", layer: "SDK", may: join(envelope, plumbing, []string{"connectors"}), tests: helpers,
		never: []string{"examples", "federation"}},
	// The remitter's bank's 2-WAY engine (KECIS §15.5): an SDK package like
	// amountauth; it reaches the banks and the telecom through interfaces
	// of its own, never an example's code.
	{pkg: "connectors/twoway", layer: "SDK", may: join(envelope, plumbing, []string{"connectors"}), tests: helpers,
		never: []string{"examples", "federation"}},
	// Micro-deposit verification (KECIS §15.8.1): an SDK package like
	// amountauth; it reaches the verifier's bank through interfaces of its
	// own (Depositor, Returner), never an example's code.
	{pkg: "connectors/microdeposit", layer: "SDK", may: join(envelope, plumbing, []string{"connectors"}), tests: helpers,
		never: []string{"examples", "federation"}},
	// Escrow and transfer:collect (KECIS §15.6, §15.8) and its buyer page
	// (connectors/escrow/page): an SDK package like twoway; it reaches the
	// bank's ledger through its own Holder, never an example's code.
	{pkg: "connectors/escrow", layer: "SDK", may: join(envelope, plumbing, []string{"connectors"}), tests: helpers,
		never: []string{"examples", "federation"}},
	{pkg: "connectors/vcn", layer: "SDK", may: []string{"ecml", "connectors/sqlstore"}, tests: helpers},

	// The hub: the store at the bottom; router, registry and evidence over
	// it; the facade over the router; the server over all. From the SDK
	// only plumbing and what it shares.
	{pkg: "federation", layer: "hub", may: join(envelope, plumbing, shared, []string{"federation"}),
		tests: join(helpers, []string{"conformance"})}, // federation/server's tests run the suite
	{pkg: "federation/store", layer: "hub", may: join(envelope, plumbing, []string{"federation/store"}), tests: helpers},
	// The hub's payment policy (KECIS §12.9): rules over the envelope's
	// types, evaluated by the router.
	{pkg: "federation/policy", layer: "hub", may: envelope, tests: helpers},
	// The router's tests describe participants with server.Describe.
	{pkg: "federation/router", layer: "hub", may: join(envelope, plumbing, []string{"federation/store", "federation/policy"}),
		tests: join(helpers, []string{"federation/server"})},
	{pkg: "federation/registry", layer: "hub", may: join(envelope, plumbing, []string{"federation/store"}), tests: helpers},
	{pkg: "federation/evidence", layer: "hub", may: join(envelope, plumbing, []string{"federation/store"}), tests: helpers},
	{pkg: "federation/facade", layer: "hub", may: join(envelope, plumbing, shared, []string{"federation/store", "federation/router", "federation/policy"}), tests: helpers},

	// The suite tests black boxes; its own hub is `kecis serve`, a process.
	// Its tests run it against the demo federation.
	{pkg: "conformance", layer: "suite", may: join(envelope, plumbing, []string{"conformance", "connectors"}),
		tests: join(helpers, []string{"examples/demo"}),
		never: []string{"federation", "examples", "connectors/store", "connectors/sqlstore"}},

	// The load generator (kecis loadtest) drives a hub's JSON facade and an
	// issuer's own API over HTTP: the facade's wire types, nothing of the
	// hub. Its tests run it against the demo federation.
	{pkg: "conformance/loadtest", layer: "suite", may: join(envelope, plumbing, []string{"connectors/callapi"}),
		tests: join(helpers, []string{"examples/demo"}),
		never: []string{"federation", "examples", "connectors/store", "connectors/sqlstore"}},

	// Outside companies, each with its own API and database.
	{pkg: "examples/pg", layer: "company", may: []string{"connectors/sqlstore"}, tests: []string{"internal/testutil"},
		links: []string{"connectors/sqlstore"}},
	{pkg: "examples/issuer", layer: "company", may: []string{"ecml", "connectors/sqlstore", "connectors/vcn", "internal/passwordhash", "internal/vault"}, tests: []string{"internal/testutil"}},
	{pkg: "examples/issuer/kecisadapter", layer: "company", may: join(envelope, []string{"connectors", "examples/issuer"})},
	// The simulated bank (KECIS §15.8, §15.9): its own ledger, no protocol.
	{pkg: "examples/bank", layer: "company", may: []string{"ecml", "connectors/sqlstore", "internal/passwordhash", "internal/vault"}, tests: []string{"internal/testutil"}},
	{pkg: "examples/bank/kecisadapter", layer: "company", may: join(envelope, []string{"connectors", "examples/bank"}), tests: helpers},
	{pkg: "examples/telecom", layer: "company", may: []string{"ecml", "connectors/sms", "connectors/sqlstore"}, tests: []string{"internal/testutil"}},
	// The telecom's KECIS adapter (the phone holder check, KECIS §15.10):
	// the SDK over the telecom's own API, like the issuer's.
	{pkg: "examples/telecom/kecisadapter", layer: "company", may: join(envelope, []string{"connectors", "examples/telecom"}), tests: helpers},
	// The wiring of the demo federation: everything (the suite too, for
	// its test profiles and kecis-demo --conformance) but the commands.
	{pkg: "examples/demo", layer: "wiring", may: join(envelope, plumbing, []string{"connectors", "federation", "conformance", "examples"})},
	// The hub's fault tests: the demo, `kecis serve` replicas (processes)
	// and the issuer's ledger; no code of their own.
	{pkg: "examples/demo/faulttest", layer: "wiring", may: []string{}, tests: join(envelope, helpers, []string{"connectors", "federation", "examples"})},

	// Developer tools (make bench-report): the load generator's summary,
	// SQLite for a commit's timing; the rest they run as processes.
	{pkg: "tools", layer: "tool", may: join(plumbing, []string{"conformance/loadtest"}), never: []string{"federation", "examples"}},

	// The binaries: kecis links no simulated company.
	{pkg: "cmd/kecis", layer: "binary", may: join(envelope, plumbing, []string{"connectors", "federation", "conformance"}),
		tests: helpers, never: []string{"examples"}},
	{pkg: "cmd/kecis-demo", layer: "binary", may: join(envelope, plumbing, []string{"connectors", "federation", "conformance", "examples"}), tests: helpers},
}

// under reports whether p is name or below it.
func under(p, name string) bool { return p == name || strings.HasPrefix(p, name+"/") }

func anyUnder(p string, names []string) bool {
	return slices.ContainsFunc(names, func(n string) bool { return under(p, n) })
}

// ruleFor is the rule with the longest pkg naming p.
func ruleFor(p string) *rule {
	var best *rule
	for i := range layers {
		r := &layers[i]
		if under(p, r.pkg) && (best == nil || len(r.pkg) > len(best.pkg)) {
			best = r
		}
	}
	return best
}

// pkg is a package of the module as go list -deps reads it: its imports
// of the project, relative to the module.
type pkg struct {
	imports, tests []string
}

// graph reads the module's packages and their project imports, tests' too.
func graph(t *testing.T) map[string]*pkg {
	t.Helper()
	goTool := testutil.RequireTool(t, "go", "golang-go")
	cmd := exec.Command(goTool, "list", "-deps", "-f",
		"{{.Module}}|{{.ImportPath}}|{{join .Imports \" \"}}|{{join .TestImports \" \"}} {{join .XTestImports \" \"}}", "./...")
	cmd.Dir = filepath.Join("..", "..")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps ./...: %v", err)
	}
	rel := func(list string, self string) []string {
		var ps []string
		for _, i := range strings.Fields(list) {
			if r, ok := strings.CutPrefix(i, module+"/"); ok && r != self && !slices.Contains(ps, r) {
				ps = append(ps, r)
			}
		}
		return ps
	}
	g := map[string]*pkg{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "|")
		if len(f) != 4 || f[0] != module {
			continue // the standard library and other modules
		}
		p, ok := strings.CutPrefix(f[1], module+"/")
		if !ok {
			continue
		}
		g[p] = &pkg{imports: rel(f[2], p), tests: rel(f[3], p)}
	}
	return g
}

// closure is everything of the project p links (its code, not its tests).
func closure(g map[string]*pkg, p string) []string {
	seen := map[string]bool{}
	var walk func(string)
	walk = func(q string) {
		for _, i := range g[q].imports {
			if !seen[i] {
				seen[i] = true
				walk(i)
			}
		}
	}
	walk(p)
	return slices.Sorted(func(yield func(string) bool) {
		for q := range seen {
			if !yield(q) {
				return
			}
		}
	})
}

// TestLayers: every package of the module imports along the layers
// docs/architecture.md documents — its code only what its layer may, its
// tests that and their listed helpers, and nothing it may not link comes
// in through another package. cmd/kecis's TestLinksNoExamples,
// conformance's TestImportsNoHub and examples/pg's TestImportsNoKECIS
// state three of these rules where they apply; the table agrees with them.
func TestLayers(t *testing.T) {
	g := graph(t)
	if p := g["saml"]; p == nil || !slices.Contains(p.imports, "ecml") {
		t.Fatalf("go list -deps does not show saml importing ecml: the query is wrong (%d packages)", len(g))
	}
	for _, p := range slices.Sorted(func(yield func(string) bool) {
		for p := range g {
			if !yield(p) {
				return
			}
		}
	}) {
		r := ruleFor(p)
		if r == nil {
			t.Errorf("%s is in no layer: add it to docs/architecture.md and to this table", p)
			continue
		}
		for _, i := range g[p].imports {
			if !anyUnder(i, r.may) {
				t.Errorf("%s (%s) imports %s: against the layers of docs/architecture.md", p, r.layer, i)
			}
		}
		for _, i := range g[p].tests {
			if i != p && !anyUnder(i, r.may) && !anyUnder(i, r.tests) {
				t.Errorf("a test of %s (%s) imports %s: against the layers of docs/architecture.md", p, r.layer, i)
			}
		}
		for _, i := range closure(g, p) {
			if anyUnder(i, r.never) || r.links != nil && !anyUnder(i, r.links) {
				t.Errorf("%s (%s) links %s: it must not, through any package", p, r.layer, i)
			}
		}
	}
}

// TestRulesBite: the table refuses what the doc forbids — a rule that let
// everything through would pass TestLayers on any graph.
func TestRulesBite(t *testing.T) {
	for _, tc := range []struct{ from, imp string }{
		{"ecml", "saml"},
		{"saml", "saml/metadata/metadatatest"},
		{"internal/devpki", "saml"},
		{"internal/devpki", "docs/spec/schema"},
		{"docs/spec/schema", "internal/xsd"},
		{"internal/xsd", "saml"},
		{"connectors", "federation/store"},
		{"connectors/card", "examples/issuer"},
		{"federation/router", "federation/facade"},
		{"federation/store", "federation/router"},
		{"federation/facade", "connectors/sidecar"},
		{"federation/server", "examples/demo"},
		{"conformance", "federation/server"},
		{"conformance/loadtest", "federation/facade"},
		{"conformance/loadtest", "conformance"},
		{"examples/pg", "ecml"},
		{"examples/issuer", "saml"},
		{"examples/telecom", "connectors"},
		{"examples/telecom/kecisadapter", "federation"},
		{"connectors/phone", "examples/telecom"},
		{"examples/issuer/kecisadapter", "federation/store"},
		{"examples/demo", "cmd/kecis"},
	} {
		r := ruleFor(tc.from)
		if r == nil || anyUnder(tc.imp, r.may) {
			t.Errorf("the table lets %s import %s", tc.from, tc.imp)
		}
	}
	for _, tc := range []struct{ from, dep string }{
		{"cmd/kecis", "examples/demo"},
		{"conformance/broken", "connectors/store"},
		{"conformance", "federation/store/sqlstore"},
		{"examples/pg", "connectors/store"},
	} {
		r := ruleFor(tc.from)
		if r == nil || !anyUnder(tc.dep, r.never) && (r.links == nil || anyUnder(tc.dep, r.links)) {
			t.Errorf("the table lets %s link %s", tc.from, tc.dep)
		}
	}
}

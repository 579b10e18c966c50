// Package conformance is the KECIS conformance suite: what a standards body
// points at any participant to certify it (docs/conformance.md).
//
// The model follows the OpenID Foundation's suite: a Plan per role profile
// (issuer, PG, bank, merchant client, hub) is made of Modules, each a
// sequence of Conditions; every condition cites the clauses it checks
// (KECIS §N.M of docs/spec, SAML core and bindings, RFC 4112, XML
// Encryption) and carries a severity its caller (the module, or the plan's
// overrides) sets. A condition's result is PASSED, FAILED, WARNING, SKIPPED
// or REVIEW, with evidence — the signed messages exchanged, card numbers
// masked.
//
// Conditions do not depend on *testing.T: Run executes a plan from `go test`
// and from `kecis conformance run` alike. The plan is discovered from the
// participant's KECIS metadata (its roles and declared services): a
// declared service that fails is FAILED, an undeclared one SKIPPED. What
// metadata does not carry — test cards and their expected outcomes, the
// URLs of test hooks, the tester's own keys — comes from the per-participant
// test profile (Profile, a YAML file).
//
// The suite acts as a registered participant with the `tester` role. It
// sends ordinary requests the way members do, through the hub when one is
// configured; every envelope-level attack of the security module, and every
// check of a refusal the hub would otherwise make first, goes directly to
// the participant, which admits a registered tester's TLS client
// certificate in test mode. The authorization module also signs as two
// other identities the profile names — a second participant of the
// tester's standing, and an outsider of a role the participant's services
// do not admit — sending directly over the tester's TLS connection; the
// hub plan's governance module changes the tester's own metadata at the
// hub and withdraws the change.
//
// Layering (KECIS §1.4): this package uses saml, ecml and the client side
// of saml/metadata, never the hub's server, registry, router or store, nor
// the examples (TestImportsNoHub); the hub it runs itself (OwnHub) is
// `kecis serve`, driven through its API.
package conformance

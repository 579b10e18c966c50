// Package archtest holds no code: its test reads the module's import graph
// with go list -deps and fails when a package imports against the layers
// docs/architecture.md draws (KECIS §1.4). It lives in internal/ because it
// is plumbing about the tree, part of no layer: it imports nothing of the
// project, so it stands outside the graph it checks, and a Go test needs a
// package to live in (docs/ holds no Go).
package archtest

// Command kecis is the one binary of KECIS hub: the hub server, the provider
// adapter, the conformance suite and the tools an integrator debugs with.
//
// Exit status, the same for every command (docs/cli.md): 0 success; 1 the
// command ran and did not succeed — a refusal or a failed check (a message
// that does not verify, a document with problems, a conformance check that
// FAILED), or an error while running (a file it cannot read, a hub that does
// not answer); 2 a usage error — an unknown command or flag, a missing or
// extra argument, a required flag not set, a flag value it cannot take.
package main

import (
	"fmt"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// Exit statuses (the package documentation).
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

// exitError carries an exit status through cobra; err, when set, is
// printed once on stderr.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

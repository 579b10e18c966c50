// Command kecis is the one binary of KECIS hub: the hub server, the provider
// adapter, the conformance suite and the tools an integrator debugs with.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		// cobra has already printed the error; a nonzero exit is all that is left.
		os.Exit(exitCode(err))
	}
}

// exitError carries an exit status through cobra without printing twice.
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

func exitCode(err error) int {
	var ee *exitError
	if asExit(err, &ee) {
		return ee.code
	}
	return 1
}

package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

// maxInput caps what the tools read from a file or stdin.
const maxInput = 16 << 20

// readInput reads the named file, or the command's stdin when args is empty
// or "-".
func readInput(cmd *cobra.Command, args []string) ([]byte, error) {
	if len(args) == 0 || args[0] == "-" {
		return io.ReadAll(io.LimitReader(cmd.InOrStdin(), maxInput))
	}
	f, err := os.Open(args[0])
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxInput))
}

// fail returns an error that makes kecis exit with code, printing err (if
// any) on stderr.
func fail(code int, err error) error { return &exitError{code: code, err: err} }

// usagef is a usage error found by a command itself — a flag value it
// cannot take, flags that go together or exclude each other: exit status
// 2, like the errors cobra finds.
func usagef(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

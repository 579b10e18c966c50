package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/kecis/kecis/internal/buildinfo"
)

// subcommands lists the constructors of the top-level commands; each file of
// this package adds its own in an init function, so that root.go does not
// change when a command is added.
var subcommands []func() *cobra.Command

func registerCommand(f func() *cobra.Command) { subcommands = append(subcommands, f) }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "kecis",
		Short: "KECIS hub: the Korea Electronic Commerce Interoperability Standard, in one binary",
		Long: `kecis is the reference implementation of KECIS 1.0: ECML v2 (RFC 4112) data
exchanged as signed and field-encrypted SAML 2.0 service requests and responses.

It runs the federation hub, the provider adapter and the conformance suite, and
carries the tools an integrator debugs with (ecml, keys, envelope, metadata).`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newVersionCmd())
	for _, f := range subcommands {
		root.AddCommand(f())
	}
	root.SetOut(os.Stdout)
	root.SetErr(os.Stderr)
	return root
}

// run executes the root command with args and the given streams; tests use
// it to drive the CLI in process.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(stderr, "kecis:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "kecis:", err)
	return 1
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of kecis and of the KECIS profile it implements",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(cmd.OutOrStdout(), "kecis %s (KECIS profile 1.0, %s)\n", buildinfo.Version(), buildinfo.GoVersion())
			return nil
		},
	}
}

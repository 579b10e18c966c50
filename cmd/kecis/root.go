package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

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
carries the tools an integrator debugs with (ecml, keys, envelope, metadata).

Exit status, the same for every command: 0 success; 1 a refusal or a failed
check (a message that does not verify, a document with problems, a failed
conformance check) or an error while running (a file that cannot be read, a
hub that does not answer); 2 a usage error (an unknown command or flag, a
missing or extra argument, a bad flag value).`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newVersionCmd())
	for _, f := range subcommands {
		root.AddCommand(f())
	}
	markRunErrors(root)
	root.SetOut(os.Stdout)
	root.SetErr(os.Stderr)
	return root
}

// env is what the commands take from the world besides their arguments and
// streams: the clock and the randomness of new message IDs. run uses the
// real ones; tests inject fixed ones (runEnv).
type env struct {
	now  func() time.Time
	rand io.Reader
}

type envKey struct{}

// envOf returns the env the command runs with.
func envOf(cmd *cobra.Command) env {
	e, _ := cmd.Context().Value(envKey{}).(env)
	if e.now == nil {
		e.now = time.Now
	}
	if e.rand == nil {
		e.rand = rand.Reader
	}
	return e
}

// run executes the root command with args and the given streams and
// returns the exit status; tests use it to drive the CLI in process.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return runEnv(env{}, args, stdin, stdout, stderr)
}

// runEnv is run with the given clock and randomness. Every error is
// printed once, here, as "kecis: message"; a usage error adds where the
// usage is.
func runEnv(e env, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd, err := unknownCommand(args)
	if err == nil {
		root := newRootCmd()
		root.SetArgs(args)
		root.SetIn(stdin)
		root.SetOut(stdout)
		root.SetErr(stderr)
		root.SetContext(context.WithValue(context.Background(), envKey{}, e))
		cmd, err = root.ExecuteC()
	}
	if err == nil {
		return exitOK
	}
	code, msg := exitStatus(err)
	if msg != "" {
		fmt.Fprintln(stderr, "kecis:", msg)
	}
	if code == exitUsage {
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return code
}

// exitStatus classifies an error of Execute: an exitError carries its
// status (markRunErrors gives every error of a command's own code one);
// any other error is cobra's — an unknown command or flag, a bad flag
// value, a wrong number of arguments, a required flag not set — a usage
// error. msg is what to print: empty for an exitError without a message
// (the command has said it all), without the "kecis: " the SDK's own
// errors start with — at the start or where a command wrapped one
// ("recipient: kecis: …") — so that the line says it once.
func exitStatus(err error) (code int, msg string) {
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err == nil {
			return ee.code, ""
		}
		code = ee.code
	} else {
		code = exitUsage
	}
	return code, strings.ReplaceAll(strings.TrimPrefix(err.Error(), "kecis: "), ": kecis: ", ": ")
}

// markRunErrors gives every error a command's RunE returns without an exit
// status the status 1, so that exitStatus can tell them from cobra's usage
// errors.
func markRunErrors(c *cobra.Command) {
	if runE := c.RunE; runE != nil {
		c.RunE = func(cmd *cobra.Command, args []string) error {
			err := runE(cmd, args)
			var ee *exitError
			if err == nil || errors.As(err, &ee) {
				return err
			}
			return &exitError{code: exitFailed, err: err}
		}
	}
	for _, sub := range c.Commands() {
		markRunErrors(sub)
	}
}

// unknownCommand is the usage error of a word that names none of the
// commands of a group (kecis envelope sing), found before cobra runs: cobra
// would show the group's help for it and succeed. c is the group.
func unknownCommand(args []string) (*cobra.Command, error) {
	c, rest, err := newRootCmd().Find(args)
	if err != nil || c.Runnable() || !c.HasSubCommands() {
		return c, nil // cobra reports the root's unknown commands itself
	}
	c.InitDefaultHelpFlag()
	if c.ParseFlags(rest) != nil {
		return c, nil // cobra reports it
	}
	if help, _ := c.Flags().GetBool("help"); help {
		return c, nil
	}
	words := c.Flags().Args()
	if len(words) == 0 {
		return c, nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", words[0], c.CommandPath())
	if c.SuggestionsMinimumDistance <= 0 {
		c.SuggestionsMinimumDistance = 2 // cobra's own default
	}
	if s := c.SuggestionsFor(words[0]); len(s) > 0 {
		msg += fmt.Sprintf(" (did you mean %s?)", strings.Join(s, ", "))
	}
	return c, &exitError{code: exitUsage, err: errors.New(msg)}
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of kecis and of the KECIS profile it implements",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(cmd.OutOrStdout(), "kecis %s (KECIS profile 1.0, %s, %s)\n", buildinfo.Version(), buildinfo.GoVersion(), buildinfo.Crypto())
			return nil
		},
	}
}

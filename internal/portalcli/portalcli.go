package portalcli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"google.golang.org/grpc/status"

	"github.com/vda-io/vda/internal/version"
)

// Exit statuses.
const (
	ExitOK    = 0
	ExitError = 1 // the request or operation failed (its message is printed)
	ExitUsage = 2 // bad command line
)

// ErrUsage marks an error of the command line (wrap it with %w); it only
// documents intent: any error that is neither a gRPC status nor Failed
// exits with ExitUsage.
var ErrUsage = errors.New("usage")

// Failed marks an error of the operation itself (I/O failed, data
// differs, a file exists), as opposed to a usage error: the exit status is
// ExitError.
type Failed struct{ Err error }

func (f Failed) Error() string { return f.Err.Error() }
func (f Failed) Unwrap() error { return f.Err }

// Execute runs root with args and returns the exit status; the error, if
// any, is printed on stderr ("Error: <code>: <message>" for a gRPC status).
func Execute(ctx context.Context, root *cobra.Command, args []string, stdout, stderr io.Writer) int {
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	if st, ok := status.FromError(err); ok {
		fmt.Fprintf(stderr, "Error: %s: %s\n", st.Code(), st.Message())
		return ExitError
	}
	fmt.Fprintf(stderr, "Error: %v\n", err)
	if errors.As(err, new(Failed)) {
		return ExitError
	}
	// Anything else was refused before a request was sent: flags,
	// arguments, TLS files.
	return ExitUsage
}

// Root returns a binary's root command: a Group that prints errors and
// usage only through Execute.
func Root(use, short string, subs ...*cobra.Command) *cobra.Command {
	root := Group(use, short, subs...)
	root.SilenceUsage = true
	root.SilenceErrors = true
	root.Version = version.Get().String()
	root.SetVersionTemplate(use + " {{.Version}}\n")
	return root
}

// Group returns a command ("dn") that only groups its subcommands.
func Group(use, short string, subs ...*cobra.Command) *cobra.Command {
	g := &cobra.Command{Use: use, Short: short, Args: cobra.ArbitraryArgs, RunE: UnknownSubcommand}
	g.AddCommand(subs...)
	return g
}

// UnknownSubcommand runs for a command that only groups others: alone it
// shows its help; with an argument (not one of its subcommands, which
// cobra would have run) it shows the help on stderr and fails, so that
// "vda da frobnicate" does not pass for success.
func UnknownSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return cmd.Help()
	}
	cmd.SetOut(cmd.ErrOrStderr())
	_ = cmd.Help()
	return fmt.Errorf("%w: unknown command %q for %q", ErrUsage, args[0], cmd.CommandPath())
}

// Leaf returns a subcommand without arguments whose flags are declared by
// flags (required ones named in required) and that runs do.
func Leaf(use, short, example string, flags func(*pflag.FlagSet), required []string, do func(*cobra.Command) error) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short, Example: example, Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return do(cmd) }}
	flags(cmd.Flags())
	for _, name := range required {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}

// WriteJSON writes v to w as indented JSON and a newline.
func WriteJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

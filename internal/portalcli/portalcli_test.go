package portalcli_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vda-io/vda/internal/portalcli"
	"github.com/vda-io/vda/mtls"
)

// Execute maps what a command returns to the exit status and prints it.
func TestExecuteExitStatus(t *testing.T) {
	// A fresh tree per run, as each invocation of a binary has.
	root := func(ret error) *cobra.Command {
		var n int
		return portalcli.Root("tool", "a tool",
			portalcli.Group("grp", "a group",
				portalcli.Leaf("do", "does it", "tool grp do --n 1", func(f *pflag.FlagSet) { f.IntVar(&n, "n", 0, "n") },
					[]string{"n"}, func(*cobra.Command) error { return ret })))
	}
	for _, c := range []struct {
		name    string
		args    []string
		ret     error
		code    int
		out     string
		errText string
	}{
		{"success", []string{"grp", "do", "--n", "1"}, nil, portalcli.ExitOK, "", ""},
		{"grpc status", []string{"grp", "do", "--n", "1"}, status.Error(codes.NotFound, "no da0"), portalcli.ExitError, "", "Error: NotFound: no da0\n"},
		{"wrapped status", []string{"grp", "do", "--n", "1"}, fmt.Errorf("ctx: %w", status.Error(codes.Internal, "x")), portalcli.ExitError, "", "Error: Internal: ctx: rpc error: code = Internal desc = x\n"},
		{"failed", []string{"grp", "do", "--n", "1"}, fmt.Errorf("verify: %w", portalcli.Failed{Err: errors.New("differs")}), portalcli.ExitError, "", "Error: verify: differs\n"},
		{"usage", []string{"grp", "do", "--n", "1"}, fmt.Errorf("%w: bad --n", portalcli.ErrUsage), portalcli.ExitUsage, "", "Error: usage: bad --n\n"},
		{"missing flag", []string{"grp", "do"}, nil, portalcli.ExitUsage, "", `required flag(s) "n" not set`},
		{"unknown flag", []string{"grp", "do", "--m", "1"}, nil, portalcli.ExitUsage, "", "unknown flag: --m"},
		{"leaf takes no args", []string{"grp", "do", "--n", "1", "x"}, nil, portalcli.ExitUsage, "", "unknown command"},
		{"unknown subcommand", []string{"grp", "frob"}, nil, portalcli.ExitUsage, "", `unknown command "frob" for "tool grp"`},
		{"group alone", []string{"grp"}, nil, portalcli.ExitOK, "Available Commands:", ""},
		{"help", []string{"grp", "do", "--help"}, nil, portalcli.ExitOK, "tool grp do --n 1", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := portalcli.Execute(context.Background(), root(c.ret), c.args, &out, &errb)
			require.Equal(t, c.code, code, errb.String())
			require.Contains(t, out.String(), c.out)
			require.Contains(t, errb.String(), c.errText)
			if c.code == portalcli.ExitOK {
				require.Empty(t, errb.String())
			}
		})
	}
}

// Bad TLS flags and addresses are usage errors, found before any request.
func TestConnUsageErrors(t *testing.T) {
	t.Setenv(mtls.EnvDir, t.TempDir()) // no admin certificate there
	for _, c := range []struct {
		name string
		conn portalcli.Conn
		want string
	}{
		{"no certificates", portalcli.Conn{Addr: "127.0.0.1:1"}, "no admin certificate"},
		{"insecure with files", portalcli.Conn{Addr: "127.0.0.1:1", TLS: mtls.Config{CertFile: "admin.crt"}, Insecure: true}, "exclude each other"},
		{"incomplete files", portalcli.Conn{Addr: "127.0.0.1:1", TLS: mtls.Config{CertFile: "admin.crt"}}, "go together"},
		{"bad address", portalcli.Conn{Addr: "unix://%zz", Insecure: true}, "portal unix://%zz"},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn := c.conn
			_, err := conn.Client()
			require.ErrorIs(t, err, portalcli.ErrUsage)
			require.ErrorContains(t, err, c.want)
			require.NoError(t, conn.Close())
		})
	}
	var conn portalcli.Conn
	conn.Insecure, conn.Addr = true, "127.0.0.1:1"
	cl, err := conn.Client()
	require.NoError(t, err, "grpc.NewClient connects lazily")
	require.NotNil(t, cl)
	require.NoError(t, conn.Close())
	require.NoError(t, conn.Close(), "Close is idempotent")
}

func TestWriteJSON(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, portalcli.WriteJSON(&buf, map[string]any{"ok": true}))
	require.Equal(t, "{\n  \"ok\": true\n}\n", buf.String())
	require.Error(t, portalcli.WriteJSON(&buf, map[string]any{"f": func() {}}))
}

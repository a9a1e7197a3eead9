package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	pb "github.com/vda-io/vda/api/portalpb"
	"github.com/vda-io/vda/internal/portalcli"
)

// An unknown subcommand is a usage error (exit 2) that shows the help,
// at every level; a group alone shows its help and succeeds.
func TestUnknownSubcommand(t *testing.T) {
	for _, args := range [][]string{{"da", "frobnicate"}, {"frobnicate"}, {"dn", "frob"}} {
		out, errOut, code := runCLI(t, args...)
		require.Equal(t, portalcli.ExitUsage, code, "%q", args)
		require.Empty(t, out, "%q", args)
		require.Contains(t, errOut, "Usage:", "%q", args)
	}
	_, errOut, _ := runCLI(t, "da", "frobnicate")
	require.Contains(t, errOut, `unknown command "frobnicate" for "vda da"`)
	_, _, code := runCLI(t, "pd", "list", "extra")
	require.Equal(t, portalcli.ExitUsage, code, "a leaf takes no arguments")
	out, _, code := runCLI(t, "da")
	require.Equal(t, portalcli.ExitOK, code)
	require.Contains(t, out, "Available Commands:")
}

// "vda host" moved to its own binary (the operator's CLI links no test
// fabric): the old command line is a usage error that names the new one,
// and help does not list it.
func TestHostMoved(t *testing.T) {
	out, errOut, code := runCLI(t, "host", "write", "--da-name", "da0", "--exp-name", "exp0")
	require.Equal(t, portalcli.ExitUsage, code)
	require.Empty(t, out)
	require.Contains(t, errOut, "vda-host write --da-name da0 --exp-name exp0")
	out, _, code = runCLI(t, "--help")
	require.Equal(t, portalcli.ExitOK, code)
	require.NotRegexp(t, `(?m)^  host `, out)
}

// Whatever a server sends, the table shows control characters escaped:
// no escape sequence reaches the terminal and no value breaks a row.
func TestTableEscapes(t *testing.T) {
	reply := &pb.ListExpReply{ExpMsgList: []*pb.ExpMsg{{ExpName: "exp0", InitiatorNqn: "nqn.2016-06.io.spdk:h\n\x1b[2J; rm -rf /",
		Description: "tab\there", DaName: " padded"}}, NextPageToken: "da0/exp0\r"}
	var buf bytes.Buffer
	require.NoError(t, printTable(&buf, reply.ProtoReflect()))
	out := buf.String()
	require.NotContains(t, out, "\x1b")
	require.NotContains(t, out, "\r")
	require.NotContains(t, out, "\t", "tabwriter pads with spaces; a tab left is from a value")
	require.Contains(t, out, `"nqn.2016-06.io.spdk:h\n\x1b[2J; rm -rf /"`)
	require.Contains(t, out, `"tab\there"`)
	require.Contains(t, out, `" padded"`)
	require.Contains(t, out, `"da0/exp0\r"`)
	require.Len(t, strings.Split(strings.TrimSpace(out), "\n"), 4, "header, one row, blank, token:\n%s", out)

	buf.Reset()
	require.NoError(t, printTable(&buf, (&pb.DnReply{DnMsg: &pb.DnMsg{DnName: "dn0", Description: "\x07bell"}}).ProtoReflect()))
	require.Contains(t, buf.String(), `"\abell"`)
	require.Regexp(t, `(?m)^dn_name: +dn0$`, buf.String())
}

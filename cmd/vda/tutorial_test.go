package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/internal/tutorial"
	"github.com/vda-io/vda/portal"
	"github.com/vda-io/vda/portal/portaltest"
	"github.com/vda-io/vda/store/memstore"
)

// startPortal serves a fresh memstore cluster on 127.0.0.1:0.
func startPortal(t *testing.T, cfg portal.Config) (string, *vda.Cluster) {
	st, err := memstore.New(memstore.DefaultConfig())
	require.NoError(t, err)
	cl, err := vda.New(vda.DefaultConfig(st))
	require.NoError(t, err)
	cfg.Cluster = cl
	srv, err := portal.New(cfg)
	require.NoError(t, err)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
		require.NoError(t, st.Close())
	})
	return lis.Addr().String(), cl
}

// cliArgs turns a tutorial line into our CLI's arguments: the binary name
// goes, and --addr-port points at the test portal.
func cliArgs(t *testing.T, line, addr string) []string {
	args, err := tutorial.Args(line, addr)
	require.NoError(t, err)
	return args
}

func runCLI(t *testing.T, args ...string) (string, string, int) {
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), code
}

func TestTutorial(t *testing.T) {
	addr, _ := startPortal(t, portal.Config{Insecure: true})
	for _, line := range tutorial.Lines() {
		out, errOut, code := runCLI(t, cliArgs(t, line, addr)...)
		require.Zero(t, code, "%s\nstderr: %s", line, errOut)
		require.True(t, json.Valid([]byte(out)), out)
	}
	for line, want := range tutorial.ExpGet {
		out, errOut, code := runCLI(t, cliArgs(t, line, addr)...)
		require.Zero(t, code, errOut)
		require.NoError(t, tutorial.CheckExpGet([]byte(out), want))
	}
}

func TestCLIErrors(t *testing.T) {
	addr, _ := startPortal(t, portal.Config{Insecure: true})
	_, errOut, code := runCLI(t, "--addr-port", addr, "da", "get", "--da-name", "nope")
	require.Equal(t, exitError, code)
	require.Contains(t, errOut, "NotFound")
	require.Contains(t, errOut, `disk array "nope"`)

	_, errOut, code = runCLI(t, "--addr-port", addr, "da", "create", "--da-name", "da0", "--da-size", "4097")
	require.Equal(t, exitError, code)
	require.Contains(t, errOut, "InvalidArgument")

	_, errOut, code = runCLI(t, "--addr-port", addr, "da", "create", "--da-name", "da0")
	require.Equal(t, exitUsage, code)
	require.Contains(t, errOut, "da-size")

	_, _, code = runCLI(t, "--addr-port", addr, "dn", "list", "-o", "yaml")
	require.Equal(t, exitUsage, code)

	out, _, code := runCLI(t, "da", "create", "--help")
	require.Zero(t, code)
	require.Contains(t, out, "--physical-size")
	require.Contains(t, out, "Examples:")

	out, _, code = runCLI(t, "completion", "bash")
	require.Zero(t, code)
	require.Contains(t, out, "bash completion")
}

func TestCLITable(t *testing.T) {
	addr, _ := startPortal(t, portal.Config{Insecure: true})
	for _, line := range tutorial.Lines()[:6] {
		_, errOut, code := runCLI(t, cliArgs(t, line, addr)...)
		require.Zero(t, code, errOut)
	}
	out, errOut, code := runCLI(t, "--addr-port", addr, "-o", "table", "pd", "list", "--limit", "1")
	require.Zero(t, code, errOut)
	require.Contains(t, out, "PD_NAME")
	require.Contains(t, out, "192.168.0.14:9720")
	require.NotContains(t, out, "192.168.0.15:9720")
	require.Contains(t, out, "next page token:")

	out, errOut, code = runCLI(t, "--addr-port", addr, "cn", "modify", "--cn-name", "192.168.0.17:9820", "--offline", "--description", "maintenance")
	require.Zero(t, code, errOut)
	require.Contains(t, out, `"offline": true`)
	require.Contains(t, out, `"description": "maintenance"`)
}

func TestCLIMutualTLS(t *testing.T) {
	server, client, err := portaltest.WriteCerts(t.TempDir())
	require.NoError(t, err)
	addr, _ := startPortal(t, portal.Config{TLS: server})
	tlsArgs := []string{"--addr-port", addr, "--tls-cert", client.CertFile, "--tls-key", client.KeyFile, "--tls-ca", client.CAFile}
	out, errOut, code := runCLI(t, append(tlsArgs, "cluster", "summary")...)
	require.Zero(t, code, errOut)
	require.Contains(t, out, `"dn_cnt": 0`)

	_, errOut, code = runCLI(t, "--addr-port", addr, "--timeout", "5s", "cluster", "summary")
	require.Equal(t, exitError, code, "plaintext is refused")
	require.Contains(t, errOut, "Unavailable")

	_, _, code = runCLI(t, "--addr-port", addr, "--tls-cert", client.CertFile, "cluster", "summary")
	require.Equal(t, exitUsage, code, "incomplete TLS flags")
}

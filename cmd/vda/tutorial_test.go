package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/vda-io/vda"
	pb "github.com/vda-io/vda/api/portalpb"
	"github.com/vda-io/vda/internal/portalcli"
	"github.com/vda-io/vda/internal/tutorial"
	"github.com/vda-io/vda/mtls"
	"github.com/vda-io/vda/mtls/mtlstest"
	"github.com/vda-io/vda/portal"
	"github.com/vda-io/vda/portal/portaltest"
	"github.com/vda-io/vda/store"
	"github.com/vda-io/vda/store/memstore"
)

// testCA signs the test portals' certificates and the admin certificate
// that TestMain puts in $VDA_TLS_DIR, where the CLI finds it without
// flags, as the tutorial runs it.
var testCA *mtlstest.CA

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "vda-cli")
	if err != nil {
		panic(err)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		if testCA, err = mtlstest.NewCA(dir); err != nil {
			panic(err)
		}
		admin, err := testCA.Issue(mtls.RoleAdmin, "admin")
		if err != nil {
			panic(err)
		}
		os.Setenv(mtls.EnvDir, filepath.Dir(admin.CertFile))
		return m.Run()
	}()
	os.Exit(code)
}

// startPortal serves a fresh memstore cluster on 127.0.0.1:0, with a
// portal certificate of testCA unless cfg says otherwise.
func startPortal(t *testing.T, cfg portal.Config) (string, *vda.Cluster) {
	addr, cl, _ := startPortalStore(t, cfg)
	return addr, cl
}

// startPortalStore is startPortal that also returns the store.
func startPortalStore(t *testing.T, cfg portal.Config) (string, *vda.Cluster, store.Store) {
	if !cfg.TLS.Enabled() && !cfg.Insecure {
		var err error
		cfg.TLS, err = testCA.Issue(mtls.RolePortal, "portal")
		require.NoError(t, err)
	}
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
	return lis.Addr().String(), cl, st
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
	addr, _ := startPortal(t, portal.Config{})
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
	addr, _ := startPortal(t, portal.Config{})
	_, errOut, code := runCLI(t, "--addr-port", addr, "da", "get", "--da-name", "nope")
	require.Equal(t, portalcli.ExitError, code)
	require.Contains(t, errOut, "NotFound")
	require.Contains(t, errOut, `disk array "nope"`)

	_, errOut, code = runCLI(t, "--addr-port", addr, "da", "create", "--da-name", "da0", "--da-size", "4097")
	require.Equal(t, portalcli.ExitError, code)
	require.Contains(t, errOut, "InvalidArgument")

	_, errOut, code = runCLI(t, "--addr-port", addr, "da", "create", "--da-name", "da0")
	require.Equal(t, portalcli.ExitUsage, code)
	require.Contains(t, errOut, "da-size")

	_, _, code = runCLI(t, "--addr-port", addr, "dn", "list", "-o", "yaml")
	require.Equal(t, portalcli.ExitUsage, code)

	out, _, code := runCLI(t, "da", "create", "--help")
	require.Zero(t, code)
	require.Contains(t, out, "--physical-size")
	require.Contains(t, out, "Examples:")

	out, _, code = runCLI(t, "completion", "bash")
	require.Zero(t, code)
	require.Contains(t, out, "bash completion")
}

func TestCLITable(t *testing.T) {
	addr, _ := startPortal(t, portal.Config{})
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

	_, errOut, code = runCLI(t, "--addr-port", addr, "--timeout", "5s", "--insecure", "cluster", "summary")
	require.Equal(t, portalcli.ExitError, code, "plaintext is refused")
	require.Contains(t, errOut, "Unavailable")
	_, errOut, code = runCLI(t, "--addr-port", addr, "--timeout", "5s", "cluster", "summary")
	require.Equal(t, portalcli.ExitError, code, "$VDA_TLS_DIR's admin certificate is another CA's")
	require.Contains(t, errOut, "Unavailable")

	_, _, code = runCLI(t, "--addr-port", addr, "--tls-cert", client.CertFile, "cluster", "summary")
	require.Equal(t, portalcli.ExitUsage, code, "incomplete TLS flags")
	_, _, code = runCLI(t, append(tlsArgs, "--insecure", "cluster", "summary")...)
	require.Equal(t, portalcli.ExitUsage, code, "--insecure with TLS flags")

	// No certificate anywhere: refused before anything is sent, with how to make one.
	t.Setenv(mtls.EnvDir, t.TempDir())
	_, errOut, code = runCLI(t, "--addr-port", addr, "cluster", "summary")
	require.Equal(t, portalcli.ExitUsage, code)
	require.Contains(t, errOut, "vda certs issue --dir ./vda-ca --role admin")
}

// The CLI checks that it talks to a portal: an agent's certificate on the
// other end (a wrong --addr-port) is refused.
func TestCLIWantsAPortal(t *testing.T) {
	notPortal, err := testCA.Issue(mtls.RoleMonitor, "m0")
	require.NoError(t, err)
	tc, err := notPortal.ServerTLS()
	require.NoError(t, err)
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(tc)))
	pb.RegisterPortalServer(srv, pb.UnimplementedPortalServer{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	_, errOut, code := runCLI(t, "--addr-port", lis.Addr().String(), "--timeout", "5s", "cluster", "summary")
	require.Equal(t, portalcli.ExitError, code)
	require.Contains(t, errOut, "want vda://portal/")
}

// A node bound to an agent is unbound by an operator (dn/cn unbind).
func TestCLIUnbind(t *testing.T) {
	addr, _, st := startPortalStore(t, portal.Config{})
	for _, line := range tutorial.Lines()[:6] {
		_, errOut, code := runCLI(t, cliArgs(t, line, addr)...)
		require.Zero(t, code, errOut)
	}
	_, errOut, code := runCLI(t, "--addr-port", addr, "dn", "unbind", "--dn-name", "192.168.0.14:9720")
	require.Equal(t, portalcli.ExitError, code)
	require.Contains(t, errOut, "FailedPrecondition")
	require.Contains(t, errOut, "not bound")

	ctx := context.Background()
	for _, n := range []struct{ key, agent string }{
		{vda.KeyDN("192.168.0.14:9720"), "0b6f3a52-6a0e-4d8e-9a57-1c2d3e4f5a6b"},
		{vda.KeyCN("192.168.0.16:9820"), "1b6f3a52-6a0e-4d8e-9a57-1c2d3e4f5a6b"},
	} {
		kv, err := st.Get(ctx, n.key)
		require.NoError(t, err)
		var node struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		}
		require.NoError(t, json.Unmarshal(kv.Value, &node))
		b, err := json.Marshal(vda.Binding{NodeID: node.ID, NodeName: node.Name, AgentID: n.agent})
		require.NoError(t, err)
		_, err = st.Txn(ctx, store.Txn{Ops: []store.Op{{Key: vda.KeyNodeBinding(node.ID), Value: b},
			{Key: vda.KeyAgentBinding(n.agent), Value: b}}})
		require.NoError(t, err)
	}
	out, errOut, code := runCLI(t, "--addr-port", addr, "dn", "unbind", "--dn-name", "192.168.0.14:9720")
	require.Zero(t, code, errOut)
	require.Contains(t, out, `"agent_id": "0b6f3a52-6a0e-4d8e-9a57-1c2d3e4f5a6b"`)
	out, errOut, code = runCLI(t, "--addr-port", addr, "cn", "unbind", "--cn-name", "192.168.0.16:9820")
	require.Zero(t, code, errOut)
	require.Contains(t, out, `"agent_id": "1b6f3a52-6a0e-4d8e-9a57-1c2d3e4f5a6b"`)
	_, _, code = runCLI(t, "--addr-port", addr, "cn", "unbind", "--cn-name", "192.168.0.16:9820")
	require.Equal(t, portalcli.ExitError, code, "unbound already")
}

// --address registers where a node's agent listens when its name is not
// that address; modify changes or clears it, and the portal validates it.
func TestCLINodeAddress(t *testing.T) {
	addr, cl := startPortal(t, portal.Config{})
	lc := `{"trtype":"tcp","traddr":"192.168.0.16","adrfam":"ipv4","trsvcid":"4430"}`
	out, errOut, code := runCLI(t, "--addr-port", addr, "cn", "create", "--cn-name", "cn0", "--address", "192.168.0.16:9820",
		"--cn-listener-conf", lc)
	require.Zero(t, code, errOut)
	require.Contains(t, out, `"cn_address": "192.168.0.16:9820"`)
	cn, err := cl.GetControllerNode(context.Background(), "cn0")
	require.NoError(t, err)
	require.Equal(t, "192.168.0.16:9820", cn.Address)

	_, errOut, code = runCLI(t, "--addr-port", addr, "dn", "create", "--dn-name", "dn0", "--address", "192.168.000.14:9720",
		"--dn-listener-conf", `{"trtype":"tcp","traddr":"192.168.0.14","adrfam":"ipv4","trsvcid":"4420"}`)
	require.Equal(t, portalcli.ExitError, code)
	require.Contains(t, errOut, "InvalidArgument")

	_, errOut, code = runCLI(t, "--addr-port", addr, "cn", "modify", "--cn-name", "cn0", "--address", "")
	require.Zero(t, code, errOut)
	cn, err = cl.GetControllerNode(context.Background(), "cn0")
	require.NoError(t, err)
	require.Empty(t, cn.Address, "cleared")
}

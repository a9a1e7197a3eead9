package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/vda-io/vda/api/portalpb"
	"github.com/vda-io/vda/internal/portalcli"
	"github.com/vda-io/vda/spdk"
	"github.com/vda-io/vda/spdk/spdktest"
)

const (
	hostTestNQN  = "nqn.2016-06.io.spdk:vda-exp-da0-exp0"
	hostTestHost = "nqn.2016-06.io.spdk:host0"
)

// exportMalloc serves a 16 MiB malloc bdev from a fake SPDK to
// hostTestHost on a loopback port and returns the path.
func exportMalloc(t *testing.T) string {
	t.Helper()
	srv := spdktest.NewServer(t)
	c, err := spdk.New(srv.SockPath())
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	trid, err := srv.Reserve("127.0.0.1")
	require.NoError(t, err)
	port := trid.TrSvcID
	ctx := context.Background()
	steps := []struct {
		method string
		params any
	}{
		{"nvmf_create_transport", map[string]any{"trtype": "TCP"}},
		{"bdev_malloc_create", map[string]any{"name": "m0", "block_size": 4096, "num_blocks": 4096}},
		{"nvmf_create_subsystem", map[string]any{"nqn": hostTestNQN, "serial_number": "SN1", "model_number": "VDA_CONTROLLER"}},
		{"nvmf_subsystem_add_ns", map[string]any{"nqn": hostTestNQN, "namespace": map[string]any{"bdev_name": "m0"}}},
		{"nvmf_subsystem_add_listener", map[string]any{"nqn": hostTestNQN, "listen_address": map[string]any{
			"trtype": "tcp", "adrfam": "ipv4", "traddr": "127.0.0.1", "trsvcid": port}}},
		{"nvmf_subsystem_add_host", map[string]any{"nqn": hostTestNQN, "host": hostTestHost}},
	}
	for _, s := range steps {
		require.NoError(t, c.Call(ctx, s.method, s.params, nil), s.method)
	}
	return "127.0.0.1:" + port
}

func runHost(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code := run(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestHostWriteVerifyRunCheck(t *testing.T) {
	path := exportMalloc(t)
	conn := []string{"--nqn", hostTestNQN, "--host-nqn", hostTestHost, "--path", path}

	code, out, errs := runHost(t, append([]string{"write", "--offset", "8192", "--length", "65536", "--seed", "9"}, conn...)...)
	require.Equal(t, portalcli.ExitOK, code, errs)
	require.Contains(t, out, `"op": "write"`)
	code, _, errs = runHost(t, append([]string{"verify", "--offset", "8192", "--length", "65536", "--seed", "9"}, conn...)...)
	require.Equal(t, portalcli.ExitOK, code, errs)
	// Another seed's pattern is not there: exit status 1, not a usage error.
	code, _, errs = runHost(t, append([]string{"verify", "--offset", "8192", "--length", "65536", "--seed", "10"}, conn...)...)
	require.Equal(t, portalcli.ExitError, code)
	require.Contains(t, errs, "differ")

	result := filepath.Join(t.TempDir(), "run.json")
	code, out, errs = runHost(t, append([]string{"run", "--blocks", "64", "--count", "100", "--result", result}, conn...)...)
	require.Equal(t, portalcli.ExitOK, code, errs)
	var res struct {
		Acked   uint64
		Elapsed int64 `json:"elapsed_ns"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &res))
	require.EqualValues(t, 100, res.Acked)
	require.Positive(t, res.Elapsed, "100 writes took no time: %s", out)
	code, out, errs = runHost(t, append([]string{"check", "--result", result}, conn...)...)
	require.Equal(t, portalcli.ExitOK, code, errs)
	require.Contains(t, out, `"ok": true`)

	// The pattern write over part of the ring destroys acknowledged writes:
	// check notices.
	code, _, errs = runHost(t, append([]string{"write", "--offset", "0", "--length", "4096", "--seed", "1"}, conn...)...)
	require.Equal(t, portalcli.ExitOK, code, errs)
	code, _, errs = runHost(t, append([]string{"check", "--result", result}, conn...)...)
	require.Equal(t, portalcli.ExitError, code)
	require.Contains(t, errs, "block 0")

	code, out, errs = runHost(t, append([]string{"paths"}, conn...)...)
	require.Equal(t, portalcli.ExitOK, code, errs)
	require.Contains(t, out, `"connected": true`)
}

func TestHostUsageErrors(t *testing.T) {
	// A result file with a misspelt key is refused, not read as zeros.
	badResult := filepath.Join(t.TempDir(), "run.json")
	require.NoError(t, os.WriteFile(badResult, []byte(`{"run_id":1,"nsid":1,"block_size":4096,"blocks":64,"Acked":100}`), 0o600))
	for _, args := range [][]string{
		{"write", "--host-nqn", hostTestHost, "--path", "127.0.0.1:1"},                   // no nqn
		{"write", "--nqn", hostTestNQN, "--path", "127.0.0.1:1"},                         // no host nqn
		{"write", "--nqn", hostTestNQN, "--host-nqn", hostTestHost},                      // no path
		{"write", "--nqn", hostTestNQN, "--host-nqn", hostTestHost, "--path", "nocolon"}, // bad path
		{"write", "--da-name", "da0", "--path", "127.0.0.1:1"},                           // da without exp
		{"write", "--nqn", hostTestNQN, "--host-nqn", hostTestHost, "--path", "127.0.0.1:1", "--length", "100"},
		{"check", "--nqn", hostTestNQN, "--host-nqn", hostTestHost, "--path", "127.0.0.1:1", "--result", "/nonexistent/x"},
		{"check", "--nqn", hostTestNQN, "--host-nqn", hostTestHost, "--path", "127.0.0.1:1", "--result", badResult},
	} {
		code, _, errs := runHost(t, args...)
		require.Equal(t, portalcli.ExitUsage, code, strings.Join(args, " ")+": "+errs)
	}
}

// expPortal answers GetExp for da0/exp0 with the exporter the fake SPDK
// serves (one controller at path), as the portal would.
type expPortal struct {
	pb.UnimplementedPortalServer
	path string
}

func (p expPortal) GetExp(_ context.Context, r *pb.GetExpRequest) (*pb.ExpReply, error) {
	if r.GetDaName() != "da0" || r.GetExpName() != "exp0" {
		return nil, status.Error(codes.NotFound, "no such exporter")
	}
	addr, port, _ := net.SplitHostPort(p.path)
	conf := `{"trtype":"tcp","adrfam":"ipv4","traddr":"` + addr + `","trsvcid":"` + port + `"}`
	return &pb.ExpReply{ExpMsg: &pb.ExpMsg{DaName: "da0", ExpName: "exp0", ExpNqn: hostTestNQN, InitiatorNqn: hostTestHost,
		EsMsgList: []*pb.EsMsg{{CntlrIdx: 0, CnListenerConf: conf}}}}, nil
}

// --da-name/--exp-name take the NQN, the host NQN and the paths from the
// portal's exporter; a missing exporter is the portal's error (exit 1).
func TestHostThroughPortal(t *testing.T) {
	path := exportMalloc(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	pb.RegisterPortalServer(srv, expPortal{path: path})
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	portal := []string{"--addr-port", lis.Addr().String(), "--insecure"}

	code, out, errs := runHost(t, append(portal, "write", "--da-name", "da0", "--exp-name", "exp0", "--seed", "5", "--length", "8192")...)
	require.Equal(t, portalcli.ExitOK, code, errs)
	require.Contains(t, out, `"address": "`+path+`"`)
	// The pattern is there when the exporter is named directly.
	code, _, errs = runHost(t, "verify", "--nqn", hostTestNQN, "--host-nqn", hostTestHost, "--path", path, "--seed", "5", "--length", "8192")
	require.Equal(t, portalcli.ExitOK, code, errs)

	code, _, errs = runHost(t, append(portal, "paths", "--da-name", "da0", "--exp-name", "exp1")...)
	require.Equal(t, portalcli.ExitError, code)
	require.Contains(t, errs, "NotFound")
}

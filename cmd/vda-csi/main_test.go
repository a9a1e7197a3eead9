package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/vda-io/vda/csi"
)

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--mode", "sideways"},
		{"--mode", "node", "--host-nqn", "not-an-nqn"},
		{"--mode", "node", "--host-nqn", "nqn.2016-06.io.vda:a", "--node-id", "nqn.2016-06.io.vda:b"},
		{"--mode", "controller", "--insecure", "--endpoint", "http://x"},
		{"extra"},
		{"--mode", "node", "--host-nqn", "nqn.2016-06.io.vda:a", "--log-level", "loud"},
		{"--mode", "node", "--host-nqn", "nqn.2016-06.io.vda:a", "--log-format", "xml"},
		{"--mode", "node", "--host-nqn", "nqn.2016-06.io.vda:a", "--location", "not a label value"},
		{"--mode", "node", "--host-nqn", "nqn.2016-06.io.vda:a", "--location-file", "/"},
	} {
		var stderr bytes.Buffer
		require.Equal(t, 2, run(context.Background(), args, &stderr, nil), "%v", args)
		require.Contains(t, stderr.String(), "Error", "%v", args)
	}
}

// Both modes on one unix socket: the identity and node services answer
// with the node's host NQN as its ID.
func TestServes(t *testing.T) {
	dir, err := os.MkdirTemp("", "vda-csi")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	sock := filepath.Join(dir, "csi.sock")
	loc := filepath.Join(dir, "location")
	require.NoError(t, os.WriteFile(loc, []byte("zone-a\n"), 0o600))
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	code := make(chan int, 1)
	var stderr bytes.Buffer
	go func() {
		code <- run(ctx, []string{"--mode", "both", "--insecure", "--addr-port", "127.0.0.1:1",
			"--endpoint", "unix://" + sock, "--host-nqn", "nqn.2016-06.io.vda:n1", "--location-file", loc,
			"--log-level", "debug", "--log-format", "json"}, &stderr, ready)
	}()
	select {
	case <-ready:
	case c := <-code:
		t.Fatalf("exited %d: %s", c, stderr.String())
	}
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	info, err := csipb.NewIdentityClient(conn).GetPluginInfo(ctx, &csipb.GetPluginInfoRequest{})
	require.NoError(t, err)
	require.Equal(t, csi.DriverName, info.GetName())
	ni, err := csipb.NewNodeClient(conn).NodeGetInfo(ctx, &csipb.NodeGetInfoRequest{})
	require.NoError(t, err)
	require.Equal(t, "nqn.2016-06.io.vda:n1", ni.GetNodeId())
	require.Equal(t, map[string]string{csi.TopologyKey: "zone-a"}, ni.GetAccessibleTopology().GetSegments(), "the location file's")
	_, err = csipb.NewControllerClient(conn).ControllerGetCapabilities(ctx, &csipb.ControllerGetCapabilitiesRequest{})
	require.NoError(t, err)
	cancel()
	require.Equal(t, 0, <-code)
	// JSON lines: the start, every call at debug, the stop.
	var msgs []string
	for _, l := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		var e struct {
			Msg    string `json:"@message"`
			Method string `json:"method"`
		}
		require.NoError(t, json.Unmarshal([]byte(l), &e), l)
		msgs = append(msgs, e.Msg+" "+e.Method)
	}
	require.Contains(t, msgs, "serving ")
	require.Contains(t, msgs, "csi call /csi.v1.Node/NodeGetInfo")
	require.Contains(t, msgs, "stopped ")
}

// The driver binary links no test fake, no dev cluster and no testing.
func TestLeanImports(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("needs the go command: ", err)
	}
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	require.NoError(t, err)
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"github.com/vda-io/vda/spdk/spdktest", "github.com/vda-io/vda/devcluster",
			"testing", "github.com/kubernetes-csi/csi-test"} {
			if dep == banned || strings.HasPrefix(dep, banned+"/") {
				t.Errorf("vda-csi imports %s", dep)
			}
		}
	}
}

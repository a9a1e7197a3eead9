package csi_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kubernetes-csi/csi-test/v5/pkg/sanity"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/vda-io/vda/api/portalpb"
	"github.com/vda-io/vda/csi"
	"github.com/vda-io/vda/devcluster"
	"github.com/vda-io/vda/failover"
)

const nodeNQN = "nqn.2016-06.io.vda:csi-sanity-node"

// startCluster runs a dev cluster (fake SPDK) and returns a portal client.
func startCluster(t *testing.T) pb.PortalClient {
	t.Helper()
	c, err := devcluster.New(devcluster.Config{DataDir: t.TempDir(), AnyPorts: true, Register: true, Insecure: true,
		PDSizeBytes: 1 << 30, Failover: failover.Config{Interval: 500 * time.Millisecond, MissThreshold: 6,
			Window: 5 * time.Second, SlowTimeout: 10 * time.Second, HoldDown: 30 * time.Second}})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	select {
	case <-c.Ready():
	case err := <-done:
		cancel()
		t.Fatalf("cluster did not start: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	conn, err := grpc.NewClient(c.PortalAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return pb.NewPortalClient(conn)
}

// serve serves d on a unix socket in dir and returns its endpoint.
func serve(t *testing.T, d *csi.Driver, sock string) string {
	t.Helper()
	l, err := net.Listen("unix", sock)
	require.NoError(t, err)
	s := grpc.NewServer()
	d.Register(s)
	go func() { _ = s.Serve(l) }()
	t.Cleanup(s.Stop)
	return "unix://" + sock
}

// csi-sanity against the controller and node, each on its own socket,
// on a dev cluster with the loop connector: formatting, mounting and
// binding are real. Needs root (mount, losetup).
func TestSanity(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("csi-sanity mounts and attaches loop devices: run as root (sudo go test ./csi -run TestSanity)")
	}
	ctx := context.Background()
	portal := startCluster(t)
	ctrl, err := csi.New(csi.Config{Portal: portal, DefaultVolumeBytes: 16 << 20})
	require.NoError(t, err)
	loops := t.TempDir()
	loop := &csi.LoopConnector{Dir: loops, Size: func(ctx context.Context, id string) (int64, error) {
		da, clone, _ := csi.SplitVolumeID(id)
		if clone != "" {
			cl, err := portal.GetClone(ctx, &pb.GetCloneRequest{DaName: da, CloneName: clone})
			return int64(cl.GetCloneMsg().GetSize()), err
		}
		got, err := portal.GetDa(ctx, &pb.GetDaRequest{DaName: da})
		return int64(got.GetDaMsg().GetDaSize()), err
	}}
	// Topology: the CNs in zone-a and zone-b, the node in zone-a, so that
	// the volumes csi-sanity creates with the node's topology as requisite
	// get their controller in zone-a.
	cns, err := portal.ListCn(ctx, &pb.ListCnRequest{})
	require.NoError(t, err)
	require.Len(t, cns.GetCnMsgList(), 2)
	for i, cn := range cns.GetCnMsgList() {
		_, err := portal.ModifyCn(ctx, &pb.ModifyCnRequest{CnName: cn.GetCnName(), Location: new([]string{"zone-a", "zone-b"}[i])})
		require.NoError(t, err)
	}
	node, err := csi.New(csi.Config{NodeID: nodeNQN, Connector: loop, Location: "zone-a"})
	require.NoError(t, err)
	// Unix socket paths are short (108 bytes): not under t.TempDir's long name.
	sockDir, err := os.MkdirTemp("", "vda-csi")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(sockDir) })
	dir := t.TempDir()
	cfg := sanity.NewTestConfig()
	cfg.ControllerAddress = serve(t, ctrl, filepath.Join(sockDir, "c.sock"))
	cfg.Address = serve(t, node, filepath.Join(sockDir, "n.sock"))
	cfg.TargetPath = filepath.Join(dir, "target")
	cfg.StagingPath = filepath.Join(dir, "staging")
	cfg.TestVolumeSize = 16 << 20
	cfg.TestVolumeExpandSize = 32 << 20
	cfg.IdempotentCount = 2
	// Room to grow: a DA grows up to what its physical size holds.
	cfg.TestVolumeParameters = map[string]string{csi.ParamPhysicalSizeFactor: "3"}
	sanity.Test(t, cfg)
}

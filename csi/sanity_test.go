package csi_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
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
	stop, err := c.Start(context.Background())
	require.NoError(t, err, "cluster did not start")
	t.Cleanup(func() { require.NoError(t, stop()) })
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
	// passthrough, not unix: csi-test's Connect then dials with
	// sanityDial instead of its own dialer.
	return "passthrough:///" + sock
}

// sanityDial dials the sanity tests' sockets, refusing the first dial of
// each. csi-test v5.4.0's utils.Connect waits for the connection's state
// to change before it looks at it, so a connection that is already READY
// when it first looks is never seen ready, and every spec fails after a
// minute ("Connection timed out"; it happened once in CI). With the first
// dial refused, the connection becomes READY only after gRPC's reconnect
// backoff (about a second), long after Connect's first look. (v5.6.0
// fixes Connect, but its new specs need work of their own.)
// It also returns how many sockets it has dialed.
func sanityDial() (grpc.DialOption, func() int) {
	var mu sync.Mutex
	dialed := map[string]bool{}
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(dialed)
	}
	return grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
		mu.Lock()
		first := !dialed[addr]
		dialed[addr] = true
		mu.Unlock()
		if first {
			return nil, errors.New("csi sanity: the first dial of a socket is refused (sanityDial)")
		}
		return (&net.Dialer{}).DialContext(ctx, "unix", addr)
	}), count
}

// csi-sanity against the controller and node, each on its own socket,
// on a dev cluster with the loop connector: formatting, mounting and
// binding are real. Needs root (mount, losetup).
func TestSanity(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("csi-sanity mounts and attaches loop devices: run as root (sudo go test ./csi -run TestSanity)")
	}
	portal := startCluster(t)
	ctrl, err := csi.New(csi.Config{Portal: portal, DefaultVolumeBytes: 16 << 20})
	require.NoError(t, err)
	loop := loopConnector(t, portal)
	zoneCNs(t, portal)
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
	dial, dialed := sanityDial()
	cfg.DialOptions = append(cfg.DialOptions, dial)
	cfg.ControllerDialOptions = append(cfg.ControllerDialOptions, dial)
	cfg.TargetPath = filepath.Join(dir, "target")
	cfg.StagingPath = filepath.Join(dir, "staging")
	cfg.TestVolumeSize = 16 << 20
	cfg.TestVolumeExpandSize = 32 << 20
	cfg.IdempotentCount = 2
	// Room to grow: a DA grows up to what its physical size holds.
	cfg.TestVolumeParameters = map[string]string{csi.ParamPhysicalSizeFactor: "3"}
	// A VolumeAttributesClass: the ModifyVolume specs create volumes with
	// it and modify volumes to it.
	cfg.TestVolumeMutableParameters = map[string]string{csi.ParamQoSRwIOPS: "2000", csi.ParamQoSWMBps: "100"}
	// TestNodeVolumeAttachLimit stays off: its spec wants ControllerPublish
	// to refuse a node's volume past NodeGetInfo's max_volumes_per_node,
	// which Kubernetes enforces in the scheduler; the controller does not
	// know a node's limit (README, the skip table).
	sanity.Test(t, cfg)
	require.Equal(t, 2, dialed(), "csi-test reached both sockets through sanityDial")
}

// loopConnector attaches loop devices of a volume's size.
func loopConnector(t *testing.T, portal pb.PortalClient) *csi.LoopConnector {
	return &csi.LoopConnector{Dir: t.TempDir(), Size: func(ctx context.Context, id string) (int64, error) {
		da, clone, _ := csi.SplitVolumeID(id)
		if clone != "" {
			cl, err := portal.GetClone(ctx, &pb.GetCloneRequest{DaName: da, CloneName: clone})
			return int64(cl.GetCloneMsg().GetSize()), err
		}
		got, err := portal.GetDa(ctx, &pb.GetDaRequest{DaName: da})
		return int64(got.GetDaMsg().GetDaSize()), err
	}}
}

// zoneCNs puts the dev cluster's CNs in zone-a and zone-b, so that with
// the node in zone-a the volumes csi-sanity creates with the node's
// topology as requisite get their controller in zone-a.
func zoneCNs(t *testing.T, portal pb.PortalClient) {
	ctx := context.Background()
	cns, err := portal.ListCn(ctx, &pb.ListCnRequest{})
	require.NoError(t, err)
	require.Len(t, cns.GetCnMsgList(), 2)
	for i, cn := range cns.GetCnMsgList() {
		_, err := portal.ModifyCn(ctx, &pb.ModifyCnRequest{CnName: cn.GetCnName(), Location: new([]string{"zone-a", "zone-b"}[i])})
		require.NoError(t, err)
	}
}

// A volume restored from a snapshot on a node: published (the clone's
// exporter), staged (formatted, mounted), published to a target, written,
// and taken down in reverse. Needs root (mount, losetup).
func TestNodeCloneVolume(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounts and attaches loop devices: run as root (sudo go test ./csi -run TestNodeCloneVolume)")
	}
	ctx := context.Background()
	portal := startCluster(t)
	ctrl, err := csi.New(csi.Config{Portal: portal})
	require.NoError(t, err)
	node, err := csi.New(csi.Config{NodeID: nodeNQN, Connector: loopConnector(t, portal)})
	require.NoError(t, err)
	src, err := ctrl.CreateVolume(ctx, &csipb.CreateVolumeRequest{Name: "src", VolumeCapabilities: mountCap,
		CapacityRange: &csipb.CapacityRange{RequiredBytes: 32 << 20}, Parameters: map[string]string{csi.ParamPhysicalSizeFactor: "3"}})
	require.NoError(t, err)
	snap, err := ctrl.CreateSnapshot(ctx, &csipb.CreateSnapshotRequest{Name: "s", SourceVolumeId: src.GetVolume().GetVolumeId()})
	require.NoError(t, err)
	vol, err := ctrl.CreateVolume(ctx, &csipb.CreateVolumeRequest{Name: "restored", VolumeCapabilities: mountCap,
		VolumeContentSource: &csipb.VolumeContentSource{Type: &csipb.VolumeContentSource_Snapshot{
			Snapshot: &csipb.VolumeContentSource_SnapshotSource{SnapshotId: snap.GetSnapshot().GetSnapshotId()}}}})
	require.NoError(t, err)
	id := vol.GetVolume().GetVolumeId()
	pub, err := ctrl.ControllerPublishVolume(ctx, &csipb.ControllerPublishVolumeRequest{VolumeId: id, NodeId: nodeNQN, VolumeCapability: mountCap[0]})
	require.NoError(t, err)
	dir := t.TempDir()
	staging, target := filepath.Join(dir, "staging"), filepath.Join(dir, "target")
	require.NoError(t, os.Mkdir(staging, 0o750))
	t.Cleanup(func() { // after a failure too: no mount or loop device left behind
		_, _ = node.NodeUnpublishVolume(ctx, &csipb.NodeUnpublishVolumeRequest{VolumeId: id, TargetPath: target})
		_, _ = node.NodeUnstageVolume(ctx, &csipb.NodeUnstageVolumeRequest{VolumeId: id, StagingTargetPath: staging})
	})
	_, err = node.NodeStageVolume(ctx, &csipb.NodeStageVolumeRequest{VolumeId: id, StagingTargetPath: staging,
		VolumeCapability: mountCap[0], PublishContext: pub.GetPublishContext()})
	require.NoError(t, err)
	_, err = node.NodePublishVolume(ctx, &csipb.NodePublishVolumeRequest{VolumeId: id, StagingTargetPath: staging, TargetPath: target,
		VolumeCapability: mountCap[0], PublishContext: pub.GetPublishContext()})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(target, "f"), []byte("on the clone"), 0o600))
	st, err := node.NodeGetVolumeStats(ctx, &csipb.NodeGetVolumeStatsRequest{VolumeId: id, VolumePath: target})
	require.NoError(t, err)
	require.Greater(t, st.GetUsage()[0].GetTotal(), int64(24<<20), "a filesystem of the clone's 32 MiB")
	_, err = node.NodeUnpublishVolume(ctx, &csipb.NodeUnpublishVolumeRequest{VolumeId: id, TargetPath: target})
	require.NoError(t, err)
	_, err = node.NodeUnstageVolume(ctx, &csipb.NodeUnstageVolumeRequest{VolumeId: id, StagingTargetPath: staging})
	require.NoError(t, err)
	_, err = ctrl.ControllerUnpublishVolume(ctx, &csipb.ControllerUnpublishVolumeRequest{VolumeId: id, NodeId: nodeNQN})
	require.NoError(t, err)
	for _, del := range []func() error{
		func() error { _, err := ctrl.DeleteVolume(ctx, &csipb.DeleteVolumeRequest{VolumeId: id}); return err },
		func() error {
			_, err := ctrl.DeleteSnapshot(ctx, &csipb.DeleteSnapshotRequest{SnapshotId: snap.GetSnapshot().GetSnapshotId()})
			return err
		},
		func() error {
			_, err := ctrl.DeleteVolume(ctx, &csipb.DeleteVolumeRequest{VolumeId: src.GetVolume().GetVolumeId()})
			return err
		},
	} {
		require.NoError(t, del())
	}
}

package csi_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/vda-io/vda/api/portalpb"
	"github.com/vda-io/vda/csi"
	"github.com/vda-io/vda/nvmeof"
)

var mountCap = []*csipb.VolumeCapability{{AccessType: &csipb.VolumeCapability_Mount{Mount: &csipb.VolumeCapability_MountVolume{}},
	AccessMode: &csipb.VolumeCapability_AccessMode{Mode: csipb.VolumeCapability_AccessMode_SINGLE_NODE_WRITER}}}

func requireCode(t *testing.T, want codes.Code, err error, why ...string) {
	t.Helper()
	require.Equal(t, want, status.Code(err), "%s: error %v", strings.Join(why, " "), err)
}

// zone is the topology of location loc.
func zone(loc string) *csipb.Topology {
	return &csipb.Topology{Segments: map[string]string{csi.TopologyKey: loc}}
}

// zonedCluster is a dev cluster whose two CNs are in zone-a and zone-b,
// and a controller for it.
func zonedCluster(t *testing.T) (pb.PortalClient, *csi.Driver, map[string]string) {
	ctx := context.Background()
	portal := startCluster(t)
	cns, err := portal.ListCn(ctx, &pb.ListCnRequest{})
	require.NoError(t, err)
	require.Len(t, cns.GetCnMsgList(), 2)
	zoneOf := map[string]string{}
	for i, cn := range cns.GetCnMsgList() {
		z := []string{"zone-a", "zone-b"}[i]
		_, err := portal.ModifyCn(ctx, &pb.ModifyCnRequest{CnName: cn.GetCnName(), Location: &z})
		require.NoError(t, err)
		zoneOf[cn.GetCnName()] = z
	}
	ctrl, err := csi.New(csi.Config{Portal: portal, DefaultVolumeBytes: 16 << 20})
	require.NoError(t, err)
	return portal, ctrl, zoneOf
}

// Snapshots and the volumes made from them and from volumes, against a
// dev cluster (no root needed): IDs, idempotency, sizes, publishing a
// clone volume, expansion, listing, and the delete order VDA imposes.
func TestControllerSnapshotsAndClones(t *testing.T) {
	ctx := context.Background()
	portal, ctrl, _ := zonedCluster(t)
	params := map[string]string{csi.ParamPhysicalSizeFactor: "4"}
	src, err := ctrl.CreateVolume(ctx, &csipb.CreateVolumeRequest{Name: "src", VolumeCapabilities: mountCap, Parameters: params,
		CapacityRange: &csipb.CapacityRange{RequiredBytes: 16 << 20}})
	require.NoError(t, err)
	srcID := src.GetVolume().GetVolumeId()
	require.Equal(t, csi.VolumeName("src"), srcID, "DA volume IDs are as before")

	snapReq := &csipb.CreateSnapshotRequest{Name: "snap1", SourceVolumeId: srcID}
	snap, err := ctrl.CreateSnapshot(ctx, snapReq)
	require.NoError(t, err)
	s := snap.GetSnapshot()
	require.Equal(t, srcID+"."+csi.SnapshotName("snap1"), s.GetSnapshotId())
	require.Equal(t, srcID, s.GetSourceVolumeId())
	require.EqualValues(t, 16<<20, s.GetSizeBytes())
	require.NotNil(t, s.GetCreationTime())
	again, err := ctrl.CreateSnapshot(ctx, snapReq)
	require.NoError(t, err)
	require.Equal(t, s.GetSnapshotId(), again.GetSnapshot().GetSnapshotId())

	other, err := ctrl.CreateVolume(ctx, &csipb.CreateVolumeRequest{Name: "other", VolumeCapabilities: mountCap})
	require.NoError(t, err)
	_, err = ctrl.CreateSnapshot(ctx, &csipb.CreateSnapshotRequest{Name: "snap1", SourceVolumeId: other.GetVolume().GetVolumeId()})
	requireCode(t, codes.AlreadyExists, err)
	_, err = ctrl.CreateSnapshot(ctx, &csipb.CreateSnapshotRequest{Name: "snap2", SourceVolumeId: csi.VolumeName("missing")})
	requireCode(t, codes.NotFound, err)
	_, err = ctrl.CreateSnapshot(ctx, &csipb.CreateSnapshotRequest{Name: "snap2", SourceVolumeId: srcID, Parameters: map[string]string{"x": "y"}})
	requireCode(t, codes.InvalidArgument, err)

	// A volume from the snapshot, larger than it: a clone, grown.
	fromSnap := &csipb.CreateVolumeRequest{Name: "restored", VolumeCapabilities: mountCap,
		CapacityRange:       &csipb.CapacityRange{RequiredBytes: 40 << 20},
		VolumeContentSource: &csipb.VolumeContentSource{Type: &csipb.VolumeContentSource_Snapshot{Snapshot: &csipb.VolumeContentSource_SnapshotSource{SnapshotId: s.GetSnapshotId()}}}}
	restored, err := ctrl.CreateVolume(ctx, fromSnap)
	require.NoError(t, err)
	rv := restored.GetVolume()
	require.Equal(t, srcID+"."+csi.VolumeName("restored"), rv.GetVolumeId())
	require.GreaterOrEqual(t, rv.GetCapacityBytes(), int64(40<<20))
	require.NotNil(t, rv.GetContentSource().GetSnapshot())
	da, clone, ok := csi.SplitVolumeID(rv.GetVolumeId())
	require.True(t, ok)
	cl, err := portal.GetClone(ctx, &pb.GetCloneRequest{DaName: da, CloneName: clone})
	require.NoError(t, err)
	require.Equal(t, csi.SnapshotName("snap1"), cl.GetCloneMsg().GetSnapName())
	require.EqualValues(t, rv.GetCapacityBytes(), cl.GetCloneMsg().GetSize())
	again2, err := ctrl.CreateVolume(ctx, fromSnap)
	require.NoError(t, err, "idempotent")
	require.Equal(t, rv.GetVolumeId(), again2.GetVolume().GetVolumeId())
	fromSnap.CapacityRange = &csipb.CapacityRange{RequiredBytes: 8 << 20, LimitBytes: 8 << 20}
	fromSnap.Name = "too-small"
	_, err = ctrl.CreateVolume(ctx, fromSnap)
	requireCode(t, codes.OutOfRange, err, "smaller than the snapshot")
	fromSnap.CapacityRange = nil
	fromSnap.VolumeContentSource.GetSnapshot().SnapshotId = srcID + "." + csi.SnapshotName("nope")
	_, err = ctrl.CreateVolume(ctx, fromSnap)
	requireCode(t, codes.NotFound, err)

	// Publishing the clone volume exports the clone.
	const node = "nqn.2016-06.io.vda:node1"
	pub, err := ctrl.ControllerPublishVolume(ctx, &csipb.ControllerPublishVolumeRequest{VolumeId: rv.GetVolumeId(), NodeId: node,
		VolumeCapability: mountCap[0]})
	require.NoError(t, err)
	require.NotEmpty(t, pub.GetPublishContext()["nqn"])
	exp, err := portal.GetExp(ctx, &pb.GetExpRequest{DaName: da, ExpName: clone})
	require.NoError(t, err)
	require.Equal(t, clone, exp.GetExpMsg().GetCloneName())
	require.Equal(t, pub.GetPublishContext()["nqn"], exp.GetExpMsg().GetExpNqn())
	nqn, err := nvmeof.ExpNQN(da, clone)
	require.NoError(t, err)
	require.Equal(t, string(nqn), exp.GetExpMsg().GetExpNqn(), "the NQN a node derives from the volume ID (NodeStage checks it)")
	_, err = ctrl.ControllerUnpublishVolume(ctx, &csipb.ControllerUnpublishVolumeRequest{VolumeId: rv.GetVolumeId(), NodeId: node})
	require.NoError(t, err)
	_, err = portal.GetExp(ctx, &pb.GetExpRequest{DaName: da, ExpName: clone})
	requireCode(t, codes.NotFound, err)

	// Expanding the clone volume grows the clone.
	ex, err := ctrl.ControllerExpandVolume(ctx, &csipb.ControllerExpandVolumeRequest{VolumeId: rv.GetVolumeId(),
		CapacityRange: &csipb.CapacityRange{RequiredBytes: 48 << 20}, VolumeCapability: mountCap[0]})
	require.NoError(t, err)
	require.GreaterOrEqual(t, ex.GetCapacityBytes(), int64(48<<20))
	require.True(t, ex.GetNodeExpansionRequired())

	// A volume from the volume: a clone of a hidden snapshot.
	fromVol := &csipb.CreateVolumeRequest{Name: "copy", VolumeCapabilities: mountCap,
		VolumeContentSource: &csipb.VolumeContentSource{Type: &csipb.VolumeContentSource_Volume{Volume: &csipb.VolumeContentSource_VolumeSource{VolumeId: srcID}}}}
	cp, err := ctrl.CreateVolume(ctx, fromVol)
	require.NoError(t, err)
	require.EqualValues(t, 16<<20, cp.GetVolume().GetCapacityBytes())
	fromVol.Name = "copy-of-copy"
	fromVol.GetVolumeContentSource().GetVolume().VolumeId = cp.GetVolume().GetVolumeId()
	_, err = ctrl.CreateVolume(ctx, fromVol)
	requireCode(t, codes.InvalidArgument, err, "a clone volume is no source")

	// Listing: volumes (DA and clone volumes), snapshots (not the hidden one).
	lv, err := ctrl.ListVolumes(ctx, &csipb.ListVolumesRequest{})
	require.NoError(t, err)
	var ids []string
	for _, e := range lv.GetEntries() {
		ids = append(ids, e.GetVolume().GetVolumeId())
	}
	require.ElementsMatch(t, []string{srcID, other.GetVolume().GetVolumeId(), rv.GetVolumeId(), cp.GetVolume().GetVolumeId()}, ids)
	ids = nil
	tok := ""
	for range 10 {
		page, err := ctrl.ListVolumes(ctx, &csipb.ListVolumesRequest{MaxEntries: 1, StartingToken: tok})
		require.NoError(t, err)
		require.LessOrEqual(t, len(page.GetEntries()), 1)
		for _, e := range page.GetEntries() {
			ids = append(ids, e.GetVolume().GetVolumeId())
		}
		if tok = page.GetNextToken(); tok == "" {
			break
		}
	}
	require.Len(t, ids, 4, "paging one at a time lists every volume once")
	ls, err := ctrl.ListSnapshots(ctx, &csipb.ListSnapshotsRequest{SourceVolumeId: srcID})
	require.NoError(t, err)
	require.Len(t, ls.GetEntries(), 1)
	require.Equal(t, s.GetSnapshotId(), ls.GetEntries()[0].GetSnapshot().GetSnapshotId())
	ls, err = ctrl.ListSnapshots(ctx, &csipb.ListSnapshotsRequest{SnapshotId: s.GetSnapshotId()})
	require.NoError(t, err)
	require.Len(t, ls.GetEntries(), 1)

	// Delete order: the source DA has a snapshot and clones.
	_, err = ctrl.DeleteVolume(ctx, &csipb.DeleteVolumeRequest{VolumeId: srcID})
	requireCode(t, codes.FailedPrecondition, err)
	_, err = ctrl.DeleteSnapshot(ctx, &csipb.DeleteSnapshotRequest{SnapshotId: s.GetSnapshotId()})
	requireCode(t, codes.FailedPrecondition, err, "a volume was made from it")
	for _, id := range []string{rv.GetVolumeId(), cp.GetVolume().GetVolumeId()} {
		for range 2 { // idempotent
			_, err = ctrl.DeleteVolume(ctx, &csipb.DeleteVolumeRequest{VolumeId: id})
			require.NoError(t, err)
		}
	}
	hidden, err := portal.ListSnap(ctx, &pb.ListSnapRequest{DaName: srcID})
	require.NoError(t, err)
	require.Len(t, hidden.GetSnapMsgList(), 1, "the hidden snapshot went with its volume")
	_, err = ctrl.DeleteSnapshot(ctx, &csipb.DeleteSnapshotRequest{SnapshotId: s.GetSnapshotId()})
	require.NoError(t, err)
	_, err = ctrl.DeleteVolume(ctx, &csipb.DeleteVolumeRequest{VolumeId: srcID})
	require.NoError(t, err)
	_, err = portal.GetDa(ctx, &pb.GetDaRequest{DaName: srcID})
	requireCode(t, codes.NotFound, err)
}

// Topology: requirements become the DA's CN locations (preferred first,
// then requisite), the answer's accessible topology is where its
// controllers are, GetCapacity is per segment, NodeGetInfo reports the
// node's location.
func TestControllerTopology(t *testing.T) {
	ctx := context.Background()
	portal, ctrl, zoneOf := zonedCluster(t)
	create := func(name string, cntlrs string, r *csipb.TopologyRequirement) (*csipb.CreateVolumeResponse, error) {
		return ctrl.CreateVolume(ctx, &csipb.CreateVolumeRequest{Name: name, VolumeCapabilities: mountCap,
			Parameters: map[string]string{csi.ParamCntlrCnt: cntlrs}, AccessibilityRequirements: r})
	}
	v, err := create("b", "1", &csipb.TopologyRequirement{Requisite: []*csipb.Topology{zone("zone-a"), zone("zone-b")},
		Preferred: []*csipb.Topology{zone("zone-b"), zone("zone-a")}})
	require.NoError(t, err)
	require.Equal(t, []*csipb.Topology{zone("zone-b")}, v.GetVolume().GetAccessibleTopology(), "the first preferred segment")
	da, err := portal.GetDa(ctx, &pb.GetDaRequest{DaName: v.GetVolume().GetVolumeId()})
	require.NoError(t, err)
	require.Equal(t, []string{"zone-b"}, da.GetDaMsg().GetCnLocations())
	require.Equal(t, "zone-b", zoneOf[da.GetDaMsg().GetCntlrList()[0].GetCnName()])

	// Two controllers do not fit zone-a alone: the requisite set.
	v, err = create("ab", "2", &csipb.TopologyRequirement{Requisite: []*csipb.Topology{zone("zone-a"), zone("zone-b")},
		Preferred: []*csipb.Topology{zone("zone-a")}})
	require.NoError(t, err)
	require.ElementsMatch(t, []*csipb.Topology{zone("zone-a"), zone("zone-b")}, v.GetVolume().GetAccessibleTopology())

	_, err = create("c", "1", &csipb.TopologyRequirement{Requisite: []*csipb.Topology{zone("zone-c")}})
	requireCode(t, codes.ResourceExhausted, err)
	require.Contains(t, status.Convert(err).Message(), "zone-c")
	_, err = create("bad", "1", &csipb.TopologyRequirement{Requisite: []*csipb.Topology{{Segments: map[string]string{"kubernetes.io/hostname": "x"}}}})
	requireCode(t, codes.InvalidArgument, err)

	// Without requirements: no constraint, accessible from everywhere.
	v, err = create("any", "1", nil)
	require.NoError(t, err)
	require.Nil(t, v.GetVolume().GetAccessibleTopology())

	capOf := func(top *csipb.Topology, params map[string]string) int64 {
		got, err := ctrl.GetCapacity(ctx, &csipb.GetCapacityRequest{AccessibleTopology: top, Parameters: params})
		require.NoError(t, err)
		return got.GetAvailableCapacity()
	}
	all := capOf(nil, nil)
	require.Positive(t, all)
	require.Equal(t, all, capOf(zone("zone-a"), nil))
	require.Zero(t, capOf(zone("zone-c"), nil), "no CN in zone-c")
	dns, err := portal.ListDn(ctx, &pb.ListDnRequest{})
	require.NoError(t, err)
	loc := dns.GetDnMsgList()[0].GetLocation()
	one := capOf(nil, map[string]string{csi.ParamDNLocations: loc})
	require.Positive(t, one)
	require.Less(t, one, all, "one of two DNs")
	require.Zero(t, capOf(nil, map[string]string{csi.ParamDNLocations: "nowhere"}))

	// dnLocations keeps the VDs there.
	v, err = ctrl.CreateVolume(ctx, &csipb.CreateVolumeRequest{Name: "dn", VolumeCapabilities: mountCap,
		Parameters: map[string]string{csi.ParamDNLocations: loc}})
	require.NoError(t, err)
	da, err = portal.GetDa(ctx, &pb.GetDaRequest{DaName: v.GetVolume().GetVolumeId()})
	require.NoError(t, err)
	require.Equal(t, dns.GetDnMsgList()[0].GetDnName(), da.GetDaMsg().GetVdList()[0].GetDnName())

	// A volume from a snapshot lives in its source's DA: it must fit.
	src, err := create("src", "1", &csipb.TopologyRequirement{Requisite: []*csipb.Topology{zone("zone-b")}})
	require.NoError(t, err)
	snap, err := ctrl.CreateSnapshot(ctx, &csipb.CreateSnapshotRequest{Name: "s", SourceVolumeId: src.GetVolume().GetVolumeId()})
	require.NoError(t, err)
	fromSnap := func(r *csipb.TopologyRequirement) (*csipb.CreateVolumeResponse, error) {
		return ctrl.CreateVolume(ctx, &csipb.CreateVolumeRequest{Name: "restored", VolumeCapabilities: mountCap, AccessibilityRequirements: r,
			VolumeContentSource: &csipb.VolumeContentSource{Type: &csipb.VolumeContentSource_Snapshot{
				Snapshot: &csipb.VolumeContentSource_SnapshotSource{SnapshotId: snap.GetSnapshot().GetSnapshotId()}}}})
	}
	_, err = fromSnap(&csipb.TopologyRequirement{Requisite: []*csipb.Topology{zone("zone-a")}})
	requireCode(t, codes.ResourceExhausted, err)
	r, err := fromSnap(&csipb.TopologyRequirement{Requisite: []*csipb.Topology{zone("zone-a"), zone("zone-b")}})
	require.NoError(t, err)
	require.Equal(t, []*csipb.Topology{zone("zone-b")}, r.GetVolume().GetAccessibleTopology())

	// The node side.
	node, err := csi.New(csi.Config{NodeID: nodeNQN, Connector: &csi.LoopConnector{Dir: t.TempDir()}, Location: "zone-a"})
	require.NoError(t, err)
	info, err := node.NodeGetInfo(ctx, &csipb.NodeGetInfoRequest{})
	require.NoError(t, err)
	require.Equal(t, zone("zone-a").GetSegments(), info.GetAccessibleTopology().GetSegments())
	for _, bad := range []string{"rack 1", "10.0.0.1:9820", strings.Repeat("a", 64), "-a"} {
		_, err := csi.New(csi.Config{NodeID: nodeNQN, Connector: &csi.LoopConnector{Dir: t.TempDir()}, Location: bad})
		require.Error(t, err, bad)
	}
	caps, err := ctrl.GetPluginCapabilities(ctx, &csipb.GetPluginCapabilitiesRequest{})
	require.NoError(t, err)
	require.Contains(t, caps.String(), "VOLUME_ACCESSIBILITY_CONSTRAINTS")
}

// QoS through mutable parameters (a VolumeAttributesClass): at creation,
// over the StorageClass's; modified online, a key absent keeping its
// limit and 0 removing one; bad names and values refused before anything
// changes; a volume made from a snapshot takes none.
func TestControllerModifyVolume(t *testing.T) {
	ctx := context.Background()
	portal, ctrl, _ := zonedCluster(t)
	caps, err := ctrl.ControllerGetCapabilities(ctx, &csipb.ControllerGetCapabilitiesRequest{})
	require.NoError(t, err)
	require.Contains(t, caps.String(), csipb.ControllerServiceCapability_RPC_MODIFY_VOLUME.String())
	requireQoS := func(id string, iops, rw, r, w uint64) {
		t.Helper()
		got, err := portal.GetDa(ctx, &pb.GetDaRequest{DaName: id})
		require.NoError(t, err)
		q := got.GetDaMsg().GetQos()
		require.Equal(t, []uint64{iops, rw, r, w},
			[]uint64{q.GetRwIosPerSec(), q.GetRwMbytesPerSec(), q.GetRMbytesPerSec(), q.GetWMbytesPerSec()})
	}
	vol, err := ctrl.CreateVolume(ctx, &csipb.CreateVolumeRequest{Name: "gold", VolumeCapabilities: mountCap,
		Parameters:        map[string]string{csi.ParamQoSRwIOPS: "2000", csi.ParamQoSRMBps: "10", csi.ParamPhysicalSizeFactor: "2"},
		MutableParameters: map[string]string{csi.ParamQoSRwIOPS: "3000", csi.ParamQoSWMBps: "100"}})
	require.NoError(t, err)
	id := vol.GetVolume().GetVolumeId()
	requireQoS(id, 3000, 0, 10, 100)

	modify := func(m map[string]string) error {
		_, err := ctrl.ControllerModifyVolume(ctx, &csipb.ControllerModifyVolumeRequest{VolumeId: id, MutableParameters: m})
		return err
	}
	require.NoError(t, modify(map[string]string{csi.ParamQoSRMBps: "50", csi.ParamQoSRwMBps: "200"}))
	requireQoS(id, 3000, 200, 50, 100)
	require.NoError(t, modify(map[string]string{csi.ParamQoSRwIOPS: "0"}), "0 removes a limit")
	requireQoS(id, 0, 200, 50, 100)
	require.NoError(t, modify(nil), "nothing to change")
	requireQoS(id, 0, 200, 50, 100)
	for _, m := range []map[string]string{
		{"XXX_FakeKey": "x"},
		{csi.ParamCntlrCnt: "2"}, // a StorageClass parameter, not a mutable one
		{csi.ParamQoSRwIOPS: "1500"},
		{csi.ParamQoSRwIOPS: "-1000"},
		{csi.ParamQoSWMBps: "1073741825"}, // past vda.MaxQoSMBytesPerSec
		{csi.ParamQoSRMBps: "1.5"},
		{csi.ParamQoSRMBps: "7", "csi.storage.k8s.io/fstype": "xfs"},
	} {
		requireCode(t, codes.InvalidArgument, modify(m), fmt.Sprint(m))
		_, err := ctrl.CreateVolume(ctx, &csipb.CreateVolumeRequest{Name: "bad", VolumeCapabilities: mountCap, MutableParameters: m})
		requireCode(t, codes.InvalidArgument, err, "create", fmt.Sprint(m))
	}
	requireQoS(id, 0, 200, 50, 100)
	_, err = portal.GetDa(ctx, &pb.GetDaRequest{DaName: csi.VolumeName("bad")})
	requireCode(t, codes.NotFound, err, "no DA for a refused create")

	_, err = ctrl.ControllerModifyVolume(ctx, &csipb.ControllerModifyVolumeRequest{MutableParameters: map[string]string{csi.ParamQoSRMBps: "1"}})
	requireCode(t, codes.InvalidArgument, err, "no volume ID")
	for _, missing := range []string{csi.VolumeName("missing"), "not-a-vda-id"} {
		_, err = ctrl.ControllerModifyVolume(ctx, &csipb.ControllerModifyVolumeRequest{VolumeId: missing,
			MutableParameters: map[string]string{csi.ParamQoSRMBps: "1"}})
		requireCode(t, codes.NotFound, err, missing)
	}

	// A retry of a create that made the DA but did not get to its QoS
	// (the first call here sets none) finishes the job.
	req := &csipb.CreateVolumeRequest{Name: "retried", VolumeCapabilities: mountCap}
	_, err = ctrl.CreateVolume(ctx, req)
	require.NoError(t, err)
	requireQoS(csi.VolumeName("retried"), 0, 0, 0, 0)
	req.MutableParameters = map[string]string{csi.ParamQoSRwIOPS: "1000"}
	_, err = ctrl.CreateVolume(ctx, req)
	require.NoError(t, err)
	requireQoS(csi.VolumeName("retried"), 1000, 0, 0, 0)

	snap, err := ctrl.CreateSnapshot(ctx, &csipb.CreateSnapshotRequest{Name: "s", SourceVolumeId: id})
	require.NoError(t, err)
	src := &csipb.VolumeContentSource{Type: &csipb.VolumeContentSource_Snapshot{
		Snapshot: &csipb.VolumeContentSource_SnapshotSource{SnapshotId: snap.GetSnapshot().GetSnapshotId()}}}
	_, err = ctrl.CreateVolume(ctx, &csipb.CreateVolumeRequest{Name: "restored", VolumeCapabilities: mountCap, VolumeContentSource: src,
		MutableParameters: map[string]string{csi.ParamQoSRwIOPS: "1000"}})
	requireCode(t, codes.InvalidArgument, err, "a clone has no QoS of its own")
	restored, err := ctrl.CreateVolume(ctx, &csipb.CreateVolumeRequest{Name: "restored", VolumeCapabilities: mountCap, VolumeContentSource: src})
	require.NoError(t, err)
	_, err = ctrl.ControllerModifyVolume(ctx, &csipb.ControllerModifyVolumeRequest{VolumeId: restored.GetVolume().GetVolumeId(),
		MutableParameters: map[string]string{csi.ParamQoSRwIOPS: "1000"}})
	requireCode(t, codes.InvalidArgument, err, "a clone has no QoS of its own")
	require.ErrorContains(t, err, "no QoS limits of its own")
	requireQoS(id, 0, 200, 50, 100) // the source DA's are untouched
}

func TestCheckMutableParameters(t *testing.T) {
	require.NoError(t, csi.CheckMutableParameters(nil))
	require.NoError(t, csi.CheckMutableParameters(map[string]string{csi.ParamQoSRwIOPS: "1000000000000",
		csi.ParamQoSRwMBps: "1073741824", csi.ParamQoSRMBps: "0", csi.ParamQoSWMBps: "1"}))
	require.ErrorContains(t, csi.CheckMutableParameters(map[string]string{csi.ParamQoSRwIOPS: "1000000001000"}), "0..1000000000000")
	require.ErrorContains(t, csi.CheckMutableParameters(map[string]string{csi.ParamStripeCount: "2"}), "not one VDA can change")
	// The StorageClass takes the same QoS keys with the same bounds.
	require.ErrorContains(t, csi.CheckParameters(map[string]string{csi.ParamQoSRwIOPS: "999"}), "multiple of 1000")
	require.ErrorContains(t, csi.CheckParameters(map[string]string{csi.ParamQoSRwMBps: "1073741825"}), "0..1073741824")
}

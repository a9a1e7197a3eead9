package monitor

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/api/agentpb"
)

// The DA volume size the primary reports becomes the DA's applied size:
// only the current primary's controller on its own node counts, only from
// a report of the DA's current record (a report built before a resize is
// dropped), an unknown size (0) keeps the recorded one, and a resync that
// reports the same writes nothing.
func TestStatusRecordsAppliedSize(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 2)
	m := f.statusMonitor(2)
	primary, _ := f.da.Primary()
	var secondary vda.Cntlr
	for _, c := range f.da.Cntlrs {
		if c.ID != primary.ID {
			secondary = c
		}
	}
	report := func(s *Snapshot, plan *Plan, cn string, objs ...*agentpb.ObjectStatus) bool {
		t.Helper()
		edits, _ := reportEdits(s, nodeByName(t, plan, cn), &agentpb.SyncReply{Objects: objs})
		stale, err := m.writeAll(ctx, edits)
		require.NoError(t, err)
		return len(stale) > 0
	}
	cntlr := func(c vda.Cntlr, size uint64) *agentpb.ObjectStatus {
		return &agentpb.ObjectStatus{Kind: agentpb.Kind_KIND_CNTLR, Id: c.ID, Ok: true, DaInitialized: true, SizeBytes: size}
	}
	applied := func() uint64 {
		t.Helper()
		da, err := f.c.GetDiskArray(ctx, "da0")
		require.NoError(t, err)
		return da.Status.AppliedSizeBytes
	}

	s, plan := f.plan(t)
	report(s, plan, secondary.CNName, cntlr(secondary, 1<<30), cntlr(primary, 1<<30))
	require.Zero(t, applied(), "not from a secondary, nor from another node naming the primary")
	report(s, plan, primary.CNName, cntlr(primary, f.da.SizeBytes))
	require.Equal(t, f.da.SizeBytes, applied())
	rev, err := f.s.Revision(ctx)
	require.NoError(t, err)
	report(s, plan, primary.CNName, cntlr(primary, f.da.SizeBytes))
	report(s, plan, primary.CNName, cntlr(primary, 0))
	after, err := f.s.Revision(ctx)
	require.NoError(t, err)
	require.Equal(t, rev, after, "a resync that reports the same (or no) size writes nothing")
	require.Equal(t, f.da.SizeBytes, applied())

	size := f.da.MaxSizeBytes()
	_, err = f.c.ModifyDiskArray(ctx, "da0", vda.DiskArrayUpdate{SizeBytes: &size})
	require.NoError(t, err)
	require.True(t, report(s, plan, primary.CNName, cntlr(primary, size)), "a report of the record before the resize is dropped")
	require.Equal(t, f.da.SizeBytes, applied())
	s, plan = f.plan(t)
	report(s, plan, primary.CNName, cntlr(primary, size))
	require.Equal(t, size, applied())
	da, err := f.c.GetDiskArray(ctx, "da0")
	require.NoError(t, err)
	require.Equal(t, size, da.Status.AppliedSizeBytes)
	require.True(t, vda.Resized(size)(vda.DiskArray{Status: vda.Status{Health: vda.HealthHealthy, AppliedSizeBytes: size}}, nil))
	require.False(t, vda.Resized(size)(vda.DiskArray{Status: vda.Status{Health: vda.HealthHealthy, AppliedSizeBytes: size - 1}}, nil))
}

// A clone's reported lvol size and inflated state become its status; a
// ModifyClone clears them and a report of the older record is dropped.
func TestStatusRecordsCloneApplied(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 2)
	m := f.statusMonitor(2)
	primary, _ := f.da.Primary()
	_, err := f.c.CreateSnapshot(ctx, vda.SnapshotSpec{DAName: "da0", Name: "s0"})
	require.NoError(t, err)
	cl, err := f.c.CreateClone(ctx, vda.CloneSpec{DAName: "da0", Name: "c0", SnapName: "s0"})
	require.NoError(t, err)
	report := func(size uint64, inflated bool) bool {
		t.Helper()
		s, plan := f.plan(t)
		edits, _ := reportEdits(s, nodeByName(t, plan, primary.CNName), &agentpb.SyncReply{Objects: []*agentpb.ObjectStatus{
			{Kind: agentpb.Kind_KIND_CLONE, Id: cl.ID, Ok: true, SizeBytes: size, Inflated: inflated}}})
		require.Len(t, edits, 1)
		stale, err := m.writeAll(ctx, edits)
		require.NoError(t, err)
		return len(stale) > 0
	}
	get := func() vda.Clone {
		t.Helper()
		c, err := f.c.GetClone(ctx, "da0", "c0")
		require.NoError(t, err)
		return c
	}
	report(cl.SizeBytes, false)
	got := get()
	require.True(t, got.Applied())
	require.Equal(t, cl.SizeBytes, got.Status.AppliedSizeBytes)
	require.False(t, got.Status.Inflated)

	size := cl.SizeBytes // the fixture's DA has no room to grow a clone
	s, plan := f.plan(t)
	_, err = f.c.ModifyClone(ctx, "da0", "c0", vda.CloneUpdate{Inflate: true})
	require.NoError(t, err)
	edits, _ := reportEdits(s, nodeByName(t, plan, primary.CNName), &agentpb.SyncReply{Objects: []*agentpb.ObjectStatus{
		{Kind: agentpb.Kind_KIND_CLONE, Id: cl.ID, Ok: true, SizeBytes: size}}})
	stale, err := m.writeAll(ctx, edits)
	require.NoError(t, err)
	require.NotEmpty(t, stale, "a report of the record before the modify is dropped")
	got = get()
	require.False(t, got.Applied())
	require.Zero(t, got.Status.AppliedSizeBytes, "the modify cleared the status")

	report(size, true)
	got = get()
	require.True(t, got.Applied())
	require.Equal(t, size, got.Status.AppliedSizeBytes)
	require.True(t, got.Status.Inflated)
	report(0, false) // unknown: kept; never un-inflated
	got = get()
	require.Equal(t, size, got.Status.AppliedSizeBytes)
	require.True(t, got.Status.Inflated)
}

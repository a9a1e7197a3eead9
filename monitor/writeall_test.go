package monitor

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda"
)

// writeAll commits a push's edits together: one store transaction for
// several objects, an edit whose spec changed since the snapshot dropped
// (stale) without dropping the others, one of a deleted spec ignored, and
// the snapshot's decoded specs give the same overall health as the store's.
func TestWriteAllBatches(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 2)
	snap, _ := f.plan(t)
	m := f.statusMonitor(4)
	da := snap.DAs["da0"]
	exp := snap.Exps[vda.KeyExp("da0", "exp0")]
	require.NotNil(t, exp)
	healthy := vda.Status{Health: vda.HealthHealthy}
	var edits []statusEdit
	for _, vd := range da.Spec.VDs {
		edits = append(edits, statusEdit{specKey: da.Key, guard: da.ModRevision, edit: setPart(vd.ID, healthy),
			da: &da.Spec, daRev: da.ModRevision})
	}
	for _, c := range da.Spec.Cntlrs {
		edits = append(edits, statusEdit{specKey: da.Key, guard: da.ModRevision, edit: setPart(c.ID, healthy)})
	}
	for _, p := range exp.Spec.Ports {
		edits = append(edits, statusEdit{specKey: exp.Key, guard: exp.ModRevision, edit: setPart(p.ID, healthy),
			exp: &exp.Spec, da: &da.Spec, daRev: da.ModRevision})
	}
	edits = append(edits,
		statusEdit{specKey: exp.Key, guard: exp.ModRevision - 1, edit: setPart("stale", healthy)}, // dropped: stale
		statusEdit{specKey: vda.KeyDA("gone"), guard: 1, edit: setPart("x", healthy)})             // no spec: ignored
	rev, err := f.s.Revision(ctx)
	require.NoError(t, err)
	stale, err := m.writeAll(ctx, edits)
	require.NoError(t, err)
	require.True(t, stale)
	after, err := f.s.Revision(ctx)
	require.NoError(t, err)
	require.Equal(t, rev+1, after, "one transaction for the DA's and the exporter's statuses")

	got, err := f.c.GetDiskArray(ctx, "da0")
	require.NoError(t, err)
	require.Equal(t, vda.HealthHealthy, got.Status.Health, "%+v", got.Status)
	gotExp, err := f.c.GetExporter(ctx, "da0", "exp0")
	require.NoError(t, err)
	require.Equal(t, vda.HealthHealthy, gotExp.Status.Health, "%+v", gotExp.Status)
	require.NotContains(t, gotExp.Status.Parts, "stale")

	// The same edits again change nothing: nothing is written.
	_, err = m.writeAll(ctx, edits)
	require.NoError(t, err)
	again, err := f.s.Revision(ctx)
	require.NoError(t, err)
	require.Equal(t, after, again)
}

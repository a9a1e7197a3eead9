package monitor

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/store"
)

// Every controller's ExpSpec names every host of the exporter.
func TestPlanExporterHosts(t *testing.T) {
	f := newFixture(t, 3)
	hosts := []string{"nqn.2016-06.io.spdk:host0", "nqn.2016-06.io.spdk:host1", "nqn.2016-06.io.spdk:host2"}
	_, err := f.c.ModifyExporter(context.Background(), "da0", "exp0", vda.ExporterUpdate{AddHostNQNs: hosts[1:]})
	require.NoError(t, err)
	_, plan := f.plan(t)
	require.Empty(t, plan.Problems)
	for _, c := range f.da.Cntlrs {
		exps := nodeByName(t, plan, c.CNName).Request.GetCn().GetCntlrs()[0].GetExps()
		require.Len(t, exps, 1)
		require.Equal(t, hosts, exps[0].GetHostNqns(), "controller %d", c.Idx)
		require.Equal(t, hosts[0], exps[0].GetInitiatorNqn())
	}
}

// Exporters of one volume stored by an older version: only the one
// created first is pushed, on every controller, whatever the names; the
// next one takes over when it is deleted.
func TestPlanOldDuplicateExporters(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 2)
	dup := f.exp
	nqn, err := nvmeof.ExpNQN("da0", "a-newer")
	require.NoError(t, err)
	dup.ID, dup.Name, dup.NQN = nvmeof.NewID(), "a-newer", nqn.String()
	dup.Ports = nil
	for _, p := range f.exp.Ports {
		dup.Ports = append(dup.Ports, vda.ExpPort{ID: nvmeof.NewID(), CntlrIdx: p.CntlrIdx})
	}
	require.NoError(t, store.Update(ctx, f.s, func(tx *store.Tx) error {
		b, err := json.Marshal(dup)
		if err != nil {
			return err
		}
		tx.Put(vda.KeyExp("da0", "a-newer"), b)
		return nil
	}))
	pushed := func() map[string][]string { // CN -> exporter IDs
		_, plan := f.plan(t)
		require.Empty(t, plan.Problems)
		out := map[string][]string{}
		for _, c := range f.da.Cntlrs {
			for _, e := range nodeByName(t, plan, c.CNName).Request.GetCn().GetCntlrs()[0].GetExps() {
				out[c.CNName] = append(out[c.CNName], e.GetId())
			}
		}
		return out
	}
	for cn, ids := range pushed() {
		require.Equal(t, []string{f.exp.ID}, ids, "on %s only the first exporter is pushed", cn)
	}
	require.NoError(t, f.c.DeleteExporter(ctx, "da0", "exp0"))
	for cn, ids := range pushed() {
		require.Equal(t, []string{dup.ID}, ids, "on %s the remaining exporter serves", cn)
	}
}

package monitor

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/spdk"
	"github.com/vda-io/vda/spdk/spdktest/fabric"
	"github.com/vda-io/vda/store"
)

// A second exporter of da0's volume stored by an older version, which had
// also taken the namespace on the primary (what a switchover did there):
// the first exporter is served again, on every controller and across
// switchovers, the second one's subsystems go and its status says why,
// and the DA is healthy.
func TestOldDuplicateExporterNeverBreaksTheFirst(t *testing.T) {
	ctx := context.Background()
	s := newMemStore(t)
	rc := newRealCluster(t, s, 2, 2)
	rc.createDA("da0", 2, 2)
	_, stop := startMonitor(t, testConfig(s, "m0"))
	waitServed(t, rc, "da0")
	p, _ := rc.da("da0").Primary()
	conn, err := rc.dialExport(rc.node(p.CNName), "da0")
	require.NoError(t, err)
	data := blockData(7)
	_, err = conn.WriteAt(1, data, 0)
	require.NoError(t, err)
	stop()

	// The old version's state: exporter a-newer stored, and on the primary
	// its subsystem holds the DA lvol while exp0's has no namespace.
	const dupHost = "nqn.2016-06.io.spdk:host1"
	dupNQN, err := nvmeof.ExpNQN("da0", "a-newer")
	require.NoError(t, err)
	require.NoError(t, store.Update(ctx, s, func(tx *store.Tx) error {
		kv, err := tx.Get(vda.KeyExp("da0", "exp0"))
		require.NoError(t, err)
		var e vda.Exporter
		require.NoError(t, json.Unmarshal(kv.Value, &e))
		e.ID, e.Name, e.NQN, e.InitiatorNQN, e.HostNQNs = nvmeof.NewID(), "a-newer", dupNQN.String(), dupHost, nil
		for i := range e.Ports {
			e.Ports[i].ID = nvmeof.NewID()
		}
		b, err := json.Marshal(e)
		require.NoError(t, err)
		tx.Put(vda.KeyExp("da0", "a-newer"), b)
		dkv, err := tx.Get(vda.KeyDA("da0"))
		require.NoError(t, err)
		var da vda.DiskArray
		require.NoError(t, json.Unmarshal(dkv.Value, &da))
		da.ExpCount++ // as CreateExporter counted it
		b, err = json.Marshal(da)
		require.NoError(t, err)
		tx.Put(vda.KeyDA("da0"), b)
		return nil
	}))
	pc := rc.node(p.CNName).spdk
	subs, err := pc.NvmfGetSubsystems(ctx, spdk.NvmfGetSubsystemsParams{NQN: expNQN(t, "da0")})
	require.NoError(t, err)
	lvol := subs[0].Namespaces[0].BdevName
	require.NoError(t, pc.NvmfSubsystemRemoveNs(ctx, spdk.NvmfSubsystemRemoveNsParams{NQN: expNQN(t, "da0"), NSID: 1}))
	require.NoError(t, pc.NvmfCreateSubsystem(ctx, spdk.NvmfCreateSubsystemParams{NQN: dupNQN.String(),
		SerialNumber: nvmeof.SerialNumber(dupNQN), ModelNumber: nvmeof.ModelNumber, AllowAnyHost: new(false), ANAReporting: new(true)}))
	_, err = pc.NvmfSubsystemAddNs(ctx, spdk.NvmfSubsystemAddNsParams{NQN: dupNQN.String(),
		Namespace: spdk.Namespace{NSID: 1, BdevName: lvol}})
	require.NoError(t, err)
	require.NoError(t, pc.NvmfSubsystemAddHost(ctx, spdk.NvmfSubsystemHostParams{NQN: dupNQN.String(), Host: dupHost}))

	startMonitor(t, testConfig(s, "m0"))
	for round, to := range []int{-1, 1, 0} { // as found, then switch over and back
		if to >= 0 {
			_, err := rc.c.SwitchoverDiskArray(ctx, "da0", to)
			require.NoError(t, err)
		}
		eventually(t, func() bool {
			da := rc.da("da0")
			p, _ := da.Primary()
			return (to < 0 || p.Idx == to) && rc.served("da0")
		}, wait, 10*time.Millisecond, "round %d", round)
		for _, cn := range rc.cns {
			eventually(t, func() bool {
				ss, err := cn.spdk.NvmfGetSubsystems(ctx, spdk.NvmfGetSubsystemsParams{})
				if err != nil {
					return false
				}
				served := false
				for _, s := range ss {
					if s.NQN == dupNQN.String() {
						return false
					}
					// The agent adds the host after the namespace: served once both are in.
					served = served || (s.NQN == expNQN(t, "da0") && len(s.Namespaces) == 1 &&
						slices.Contains(s.Hosts, spdk.SubsystemHost{NQN: initiator}))
				}
				return served
			}, wait, 10*time.Millisecond, "round %d: on %s the first exporter has no namespace or host, or the second a subsystem", round, cn.Addr)
			conn, err := rc.dialExport(cn, "da0")
			require.NoError(t, err, "round %d: the first exporter through %s", round, cn.Addr)
			got := make([]byte, len(data))
			_, err = conn.ReadAt(1, got, 0)
			require.NoError(t, err)
			require.True(t, bytes.Equal(data, got), "round %d through %s", round, cn.Addr)
			dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err = fabric.Dial(dctx, cn.trid(), dupNQN.String(), dupHost)
			cancel()
			require.Error(t, err, "round %d: the second exporter is not served", round)
		}
		dup, err := rc.c.GetExporter(ctx, "da0", "a-newer")
		require.NoError(t, err)
		require.Equal(t, vda.HealthFailed, dup.Status.Health)
		require.Contains(t, dup.Status.ErrorMsg, `exporter "exp0", created first`)
	}
	da := rc.da("da0")
	require.Equal(t, vda.HealthHealthy, da.Status.Health, da.Status.ErrorMsg)
}

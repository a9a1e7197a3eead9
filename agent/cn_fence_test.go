package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/spdk"
)

// A primary fenced while its agent is away (hung, partitioned) is left to
// itself: SPDK keeps its VD controllers (they never give up), and host I/O
// still arriving through its export fails instead of crashing it. Once its
// agent returns as a secondary it takes the stack down in the safe order;
// promoted again later, it attaches as the host of the new epoch. The fake
// SPDK dies where real SPDK v24.01 does (a raid0 member lost under a loaded
// lvstore), so this fails with the old finite loss timeout or order.
func TestCNFencedPrimaryFailsIOUntilItsAgentReturns(t *testing.T) {
	cl := newCNCluster(t, 2, 2, 2)
	old := newRecordedCNEnv(t)
	cl.cns[0] = old
	cl.build()
	data := cnPattern(256<<10, 0x42)
	viaOld := cl.host(0)
	cnWrite(t, viaOld, data)
	for _, q := range old.rec.take() {
		if q.Method != "bdev_nvme_attach_controller" {
			continue
		}
		var p spdk.BdevNvmeAttachControllerParams
		require.NoError(t, json.Unmarshal(q.Params, &p))
		require.NotNil(t, p.CtrlrLossTimeoutSec)
		require.Equal(t, int32(-1), *p.CtrlrLossTimeoutSec, "%s never gives up", p.Name)
		require.Equal(t, string(nvmeof.PrimaryHostNQN(cl.cntlrs[0], uint64(cl.epoch))), p.HostNQN)
	}

	// The failover, as the monitor does it, without the old primary's agent.
	cl.down[0] = true
	cl.primary, cl.epoch = 1, cl.epoch+1
	cl.syncDNs()
	cl.syncCNs()
	ctx := context.Background()
	require.Eventually(t, func() bool {
		ctrls, err := old.c.BdevNvmeGetControllers(ctx, spdk.BdevNvmeGetControllersParams{})
		require.NoError(t, err)
		down := 0
		for _, c := range ctrls {
			if len(c.Ctrlrs) == 1 && c.Ctrlrs[0].State != spdk.CtrlrEnabled {
				down++
			}
		}
		return down == len(cl.vds)
	}, 10*time.Second, 10*time.Millisecond, "the fenced paths are down, the controllers kept")
	_, err := viaOld.WriteAt(1, cnPattern(64<<10, 0x01), cnDataOff)
	require.Error(t, err, "a fenced primary fails I/O")
	require.Empty(t, old.fake.Crashes())
	require.True(t, bytes.Equal(data, cnRead(t, cl.host(1), len(data))), "the new primary has the data")

	// Its agent returns and is told it is a secondary.
	cl.down[0] = false
	old.rec.take()
	old.syncCNOK(cl.cnState(0))
	require.Empty(t, old.fake.Crashes())
	reqs := cnMutating(old.rec.take())
	raidAt := cnIndex(reqs, "bdev_raid_delete", nvmeof.RaidName(cl.daID))
	require.Greater(t, raidAt, cnIndex(reqs, "nvmf_subsystem_remove_ns", ""), "%v", cnMethods(reqs))
	for _, vd := range cl.vds {
		require.Greater(t, cnIndex(reqs, "bdev_nvme_detach_controller", nvmeof.VDControllerName(vd)), raidAt)
	}
	require.Equal(t, cl.wantSecondaryObjects(), old.cnOwned())
	require.True(t, bytes.Equal(data, cnRead(t, cl.host(0), len(data))), "through the demoted controller, now a proxy")

	// Promoted again at a later epoch: it attaches as that epoch's host.
	cl.failover(0)
	ctrls, err := old.c.BdevNvmeGetControllers(ctx, spdk.BdevNvmeGetControllersParams{})
	require.NoError(t, err)
	require.Len(t, ctrls, len(cl.vds))
	for _, c := range ctrls {
		require.Equal(t, string(nvmeof.PrimaryHostNQN(cl.cntlrs[0], uint64(cl.epoch))), c.Ctrlrs[0].Host.NQN)
	}
	require.True(t, bytes.Equal(data, cnRead(t, cl.host(0), len(data))))
	require.Empty(t, old.fake.Crashes())
}

// A secondary that still forwards to a fenced primary (its agent has not
// been told of the failover yet) fails I/O instead of answering with what
// the old primary had: after the new primary took a write, a read through
// the stale path errors, and once the secondary is re-pointed it reads the
// new data.
func TestCNStaleSecondaryPathFailsInsteadOfServingOldData(t *testing.T) {
	cl := newCNCluster(t, 2, 2, 3)
	cl.build()
	old := cnPattern(128<<10, 0x10)
	cnWrite(t, cl.host(0), old)
	stale := cl.host(2) // proxies to controller 0

	cl.down[0], cl.down[2] = true, true // neither agent hears of the failover
	cl.primary, cl.epoch = 1, cl.epoch+1
	cl.syncDNs()
	cl.syncCNs()
	fresh := cnPattern(128<<10, 0x20)
	cnWrite(t, cl.host(1), fresh)

	got := make([]byte, len(fresh))
	_, err := stale.ReadAt(1, got, cnDataOff)
	require.Error(t, err, "the stale path must fail, not serve the old primary's view")
	require.NotEqual(t, old, got)

	cl.down[2] = false
	cl.cns[2].syncCNOK(cl.cnState(2))
	require.True(t, bytes.Equal(fresh, cnRead(t, cl.host(2), len(fresh))), "re-pointed, it serves the new data")
	for _, cn := range cl.cns {
		require.Empty(t, cn.fake.Crashes())
	}
}

// A role change never takes a namespace away from a path hosts may use:
// the node's listener goes ANA inaccessible first (hosts retry elsewhere or
// wait, where a missing namespace would fail their I/O with do-not-retry),
// and once the new namespace is in, the path is back in its new state.
func TestCNRoleChangesWithdrawThePathFirst(t *testing.T) {
	cl := newCNCluster(t, 2, 2, 2)
	old, next := newRecordedCNEnv(t), newRecordedCNEnv(t)
	cl.cns[0], cl.cns[1] = old, next
	cl.build()
	old.rec.take()
	next.rec.take()
	cl.failover(1)
	for name, e := range map[string]*cnNodeEnv{"demoted": old, "promoted": next} {
		reqs := cnMutating(e.rec.take())
		withdrawn := false
		for _, q := range reqs {
			var p struct {
				NQN      string `json:"nqn"`
				ANAState string `json:"ana_state"`
			}
			require.NoError(t, json.Unmarshal(q.Params, &p))
			switch {
			case q.Method == "nvmf_subsystem_listener_set_ana_state" && p.ANAState == "inaccessible":
				withdrawn = true
			case q.Method == "nvmf_subsystem_remove_ns":
				require.True(t, withdrawn, "%s: the namespace left %s before its path was withdrawn: %v", name, p.NQN, cnMethods(reqs))
			}
		}
		require.True(t, withdrawn, "%s: %v", name, cnMethods(reqs))
	}
	require.Equal(t, spdk.ANANonOptimized, old.anaState(cl.nqn))
	require.Equal(t, spdk.ANAOptimized, next.anaState(cl.nqn))
	data := cnPattern(64<<10, 0x77)
	cnWrite(t, cl.host(0), data)
	require.True(t, bytes.Equal(data, cnRead(t, cl.host(1), len(data))))
}

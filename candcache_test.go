package vda_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/store"
)

func oneVD(name string) vda.DiskArraySpec {
	return vda.DiskArraySpec{Name: name, CntlrCount: 1, SizeBytes: 8 << 20, Conf: vda.DAConf{StripeCount: 1, StripeSizeKB: 64}}
}

// TestCreateSeesOtherClusters: a Cluster whose candidate cache is loaded
// places every create on what other Clusters (and the monitor, through
// status keys) committed before it: offline and failed PDs and CNs are
// avoided, and room freed elsewhere is used.
func TestCreateSeesOtherClusters(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	admin, placer := newCluster(t, s), newCluster(t, s)
	t.Cleanup(func() { require.NoError(t, placer.Close()) })
	tutorialCluster(t, admin)
	const dn0, dn1, cn0, cn1 = "192.168.0.14:9720", "192.168.0.15:9720", "192.168.0.16:9820", "192.168.0.17:9820"
	_, err := placer.CreateDiskArray(ctx, oneVD("first")) // loads the cache
	require.NoError(t, err)

	setStatus := func(key string, st vda.Status) {
		b, err := json.Marshal(st)
		require.NoError(t, err)
		_, err = s.Txn(ctx, store.Txn{Ops: []store.Op{{Key: vda.KeyStatus(key), Value: b}}})
		require.NoError(t, err)
	}
	off := true
	for i := range 4 {
		// PD of dn0 offline, then back online with dn1's failed; cn1
		// failed, then cn0 offline.
		on := i%2 == 1
		_, err := admin.ModifyPhysicalDisk(ctx, dn0, "pd0", vda.PhysicalDiskUpdate{Offline: &[]bool{!on}[0]})
		require.NoError(t, err)
		health := vda.HealthHealthy
		if on {
			health = vda.HealthFailed
		}
		setStatus(vda.KeyPD(dn1, "pd0"), vda.Status{Health: health})
		wantPD, wantCN := dn1, cn0
		if on {
			wantPD = dn0
			setStatus(vda.KeyCN(cn1), vda.Status{Health: vda.HealthHealthy})
			_, err := admin.ModifyControllerNode(ctx, cn0, vda.NodeUpdate{Offline: &off})
			require.NoError(t, err)
			wantCN = cn1
		} else {
			setStatus(vda.KeyCN(cn1), vda.Status{Health: vda.HealthFailed})
			_, err := admin.ModifyControllerNode(ctx, cn0, vda.NodeUpdate{Offline: &[]bool{false}[0]})
			require.NoError(t, err)
		}
		da, err := placer.CreateDiskArray(ctx, oneVD(fmt.Sprintf("da%d", i)))
		require.NoError(t, err)
		require.Equal(t, wantPD, da.VDs[0].DNName, "create %d", i)
		require.Equal(t, wantCN, da.Cntlrs[0].CNName, "create %d", i)
	}

	// Fill the only usable PD (dn0's; dn1's failed) through the placer,
	// free room through the other Cluster: the placer uses it at once.
	var last string
	for i := 0; ; i++ {
		last = fmt.Sprintf("fill%d", i)
		if _, err := placer.CreateDiskArray(ctx, oneVD(last)); err != nil {
			require.ErrorIs(t, err, vda.ErrResourceExhausted)
			break
		}
	}
	require.NoError(t, admin.DeleteDiskArray(ctx, "fill0"))
	_, err = placer.CreateDiskArray(ctx, oneVD(last))
	require.NoError(t, err)

	// After Close, the next create loads the cache again.
	require.NoError(t, placer.Close())
	require.NoError(t, admin.DeleteDiskArray(ctx, "fill1"))
	_, err = placer.CreateDiskArray(ctx, oneVD("after-close"))
	require.NoError(t, err)
}

// TestCreateAfterStoreClosed: a create on a closed store fails with the
// store's error, whether the cache was loaded or not.
func TestCreateAfterStoreClosed(t *testing.T) {
	ctx := context.Background()
	for _, loaded := range []bool{false, true} {
		s := newStore(t)
		c := newCluster(t, s)
		tutorialCluster(t, c)
		if loaded {
			_, err := c.CreateDiskArray(ctx, oneVD("first"))
			require.NoError(t, err)
		}
		require.NoError(t, s.Close())
		_, err := c.CreateDiskArray(ctx, oneVD("second"))
		require.ErrorIs(t, err, store.ErrClosed)
	}
}

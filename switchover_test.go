package vda_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/store"
)

func threeControllerDA(t *testing.T, c *vda.Cluster) vda.DiskArray {
	ctx := context.Background()
	_, err := c.CreateControllerNode(ctx, vda.NodeSpec{Name: "192.168.0.18:9820", Listener: listener("192.168.0.18", "4430")})
	require.NoError(t, err)
	da, err := c.CreateDiskArray(ctx, vda.DiskArraySpec{Name: "da0", CntlrCount: 3, SizeBytes: 32 << 20,
		Conf: vda.DAConf{StripeCount: 2, StripeSizeKB: 64}})
	require.NoError(t, err)
	return da
}

func TestSwitchoverDiskArray(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	c := newCluster(t, s)
	tutorialCluster(t, c)
	before := threeControllerDA(t, c)
	require.EqualValues(t, 1, before.Epoch)

	da, err := c.SwitchoverDiskArray(ctx, "da0", 2)
	require.NoError(t, err)
	require.EqualValues(t, 2, da.Epoch)
	require.Equal(t, before.Cntlrs[2].ID, da.PrimaryCntlrID)
	for _, cn := range da.Cntlrs {
		require.Equal(t, cn.Idx == 2, cn.Primary, "exactly the target is primary")
	}
	got, err := c.GetDiskArray(ctx, "da0")
	require.NoError(t, err)
	require.Equal(t, da.PrimaryCntlrID, got.PrimaryCntlrID)
	require.EqualValues(t, 2, got.Epoch)
	// Nothing else changed, but the record says a switchover made epoch 2.
	require.EqualValues(t, 2, got.SwitchoverEpoch)
	got.Epoch, got.PrimaryCntlrID, got.Cntlrs, got.SwitchoverEpoch = before.Epoch, before.PrimaryCntlrID, before.Cntlrs, 0
	require.Equal(t, before, got)

	// And back.
	da, err = c.SwitchoverDiskArray(ctx, "da0", 0)
	require.NoError(t, err)
	require.EqualValues(t, 3, da.Epoch)
	require.Equal(t, before.Cntlrs[0].ID, da.PrimaryCntlrID)
}

func TestSwitchoverDiskArrayRefuses(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	c := newCluster(t, s)
	tutorialCluster(t, c)
	da := threeControllerDA(t, c)
	offline := true
	_, err := c.ModifyControllerNode(ctx, da.Cntlrs[1].CNName, vda.NodeUpdate{Offline: &offline})
	require.NoError(t, err)
	failed, _ := json.Marshal(vda.Status{Health: vda.HealthFailed})
	_, err = s.Txn(ctx, store.Txn{Ops: []store.Op{{Key: vda.KeyStatus(vda.KeyCN(da.Cntlrs[2].CNName)), Value: failed}}})
	require.NoError(t, err)
	for name, tc := range map[string]struct {
		da   string
		idx  int
		want error
		msg  string
	}{
		"already primary": {"da0", 0, vda.ErrFailedPrecondition, "already the primary"},
		"offline CN":      {"da0", 1, vda.ErrFailedPrecondition, "offline"},
		"failed CN":       {"da0", 2, vda.ErrFailedPrecondition, "failed"},
		"no such index":   {"da0", 3, vda.ErrInvalidArgument, "no controller 3"},
		"negative index":  {"da0", -1, vda.ErrInvalidArgument, "not in 0..64"},
		"huge index":      {"da0", 1 << 20, vda.ErrInvalidArgument, "not in 0..64"},
		"unknown DA":      {"da9", 1, vda.ErrNotFound, "da9"},
		"bad DA name":     {"da 0", 1, vda.ErrInvalidArgument, "disk array name"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := c.SwitchoverDiskArray(ctx, tc.da, tc.idx)
			require.ErrorIs(t, err, tc.want)
			require.Contains(t, err.Error(), tc.msg)
		})
	}
	got, err := c.GetDiskArray(ctx, "da0")
	require.NoError(t, err)
	require.EqualValues(t, 1, got.Epoch, "a refused switchover changes nothing")
	require.Equal(t, da.PrimaryCntlrID, got.PrimaryCntlrID)
}

// Concurrent switchovers serialise: every success bumps the epoch exactly
// once, and the DA always has exactly one primary.
func TestSwitchoverDiskArrayConcurrent(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	c := newCluster(t, s)
	tutorialCluster(t, c)
	threeControllerDA(t, c)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for i := 0; i < 12; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := newCluster(t, s)
			if _, err := cl.SwitchoverDiskArray(ctx, "da0", i%3); err == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			} else {
				require.ErrorIs(t, err, vda.ErrFailedPrecondition)
			}
		}()
	}
	wg.Wait()
	da, err := c.GetDiskArray(ctx, "da0")
	require.NoError(t, err)
	require.EqualValues(t, 1+ok, da.Epoch)
	primaries := 0
	for _, cn := range da.Cntlrs {
		if cn.Primary {
			primaries++
			require.Equal(t, cn.ID, da.PrimaryCntlrID)
		}
	}
	require.Equal(t, 1, primaries)
}

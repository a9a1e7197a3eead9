package vda_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/store"
)

// putStatus writes a status as the monitor does.
func putStatus(t *testing.T, s store.Store, specKey string, st vda.Status) {
	t.Helper()
	b, err := json.Marshal(st)
	require.NoError(t, err)
	_, err = s.Txn(context.Background(), store.Txn{Ops: []store.Op{{Key: vda.KeyStatus(specKey), Value: b}}})
	require.NoError(t, err)
}

func TestWaitDiskArray(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	c := newCluster(t, s)
	tutorialCluster(t, c)
	spec := vda.DiskArraySpec{Name: "da0", CntlrCount: 2, SizeBytes: 32 << 20, PhysicalSizeBytes: 32 << 20,
		Conf: vda.DAConf{StripeCount: 2, StripeSizeKB: 64}}

	// Waiting for an array that does not exist yet: its creation and then
	// its status wake the wait; a status at an older epoch does not count.
	type result struct {
		da  vda.DiskArray
		err error
	}
	healthy := make(chan result, 1)
	started := make(chan struct{})
	go func() {
		close(started)
		da, err := c.WaitDiskArray(ctx, "da0", vda.Healthy[vda.DiskArray])
		healthy <- result{da, err}
	}()
	<-started
	da, err := c.CreateDiskArray(ctx, spec)
	require.NoError(t, err)
	// A longer name with the same prefix wakes nobody for da0.
	spec1 := spec
	spec1.Name = "da01"
	_, err = c.CreateDiskArray(ctx, spec1)
	require.NoError(t, err)
	putStatus(t, s, vda.KeyDA("da01"), vda.Status{Health: vda.HealthHealthy, Epoch: da.Epoch})
	putStatus(t, s, vda.KeyDA("da0"), vda.Status{Health: vda.HealthHealthy, Epoch: da.Epoch - 1})
	putStatus(t, s, vda.KeyDA("da0"), vda.Status{Health: vda.HealthHealthy, Epoch: da.Epoch})
	r := <-healthy
	require.NoError(t, r.err)
	require.Equal(t, vda.HealthHealthy, r.da.Status.Health)
	require.Equal(t, da.ID, r.da.ID)

	// A deadline says what the array looked like.
	putStatus(t, s, vda.KeyDA("da0"), vda.Status{Health: vda.HealthDegraded, ErrorMsg: "cn1 unreachable", Epoch: da.Epoch})
	dctx, cancel := context.WithCancel(ctx)
	_, err = c.WaitDiskArray(dctx, "da0", func(vda.DiskArray, error) bool {
		cancel() // the caller gives up after the first read
		return false
	})
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorContains(t, err, "cn1 unreachable")

	// Gone: the delete wakes the wait.
	gone := make(chan error, 1)
	go func() {
		_, err := c.WaitDiskArray(ctx, "da0", vda.Gone[vda.DiskArray])
		gone <- err
	}()
	require.NoError(t, c.DeleteDiskArray(ctx, "da0"))
	require.ErrorIs(t, <-gone, vda.ErrNotFound)

	_, err = c.WaitDiskArray(ctx, "bad name", vda.Gone[vda.DiskArray])
	require.ErrorIs(t, err, vda.ErrInvalidArgument)
}

func TestWatchReportsSpecsAndStatuses(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s := newStore(t)
	c := newCluster(t, s)
	changes, werr, err := c.Watch(ctx, vda.PrefixDN)
	require.NoError(t, err)
	_, err = c.CreateDiskNode(ctx, vda.NodeSpec{Name: "192.168.0.14:9720", Listener: listener("192.168.0.14", "4420")})
	require.NoError(t, err)
	putStatus(t, s, vda.KeyDN("192.168.0.14:9720"), vda.Status{Health: vda.HealthHealthy})
	require.NoError(t, c.DeleteDiskNode(ctx, "192.168.0.14:9720"))
	var got []vda.Change
	for len(got) < 3 {
		got = append(got, <-changes)
	}
	key := vda.KeyDN("192.168.0.14:9720")
	require.Equal(t, key, got[0].Key)
	require.False(t, got[0].Status || got[0].Deleted)
	require.Equal(t, key, got[1].Key)
	require.True(t, got[1].Status)
	require.Equal(t, key, got[2].Key)
	require.True(t, got[2].Deleted)
	require.Less(t, got[0].Revision, got[1].Revision)
	cancel()
	for range changes {
	}
	require.NoError(t, werr())

	_, _, err = c.Watch(context.Background(), "/elsewhere/")
	require.ErrorIs(t, err, vda.ErrInvalidArgument)
}

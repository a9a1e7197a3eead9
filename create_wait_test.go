package vda_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/store"
)

// failedTxns counts the transactions whose conditions failed.
type failedTxns struct {
	store.Store
	failed atomic.Int64
}

func (s *failedTxns) Txn(ctx context.Context, t store.Txn) (store.TxnResult, error) {
	res, err := s.Store.Txn(ctx, t)
	if err == nil && !res.Succeeded {
		s.failed.Add(1)
	}
	return res, err
}

// Concurrent creates of one Cluster that need the same PDs and CNs wait
// for each other instead of committing transactions bound to fail on each
// other's guards.
func TestConcurrentCreatesWaitForEachOther(t *testing.T) {
	s := &failedTxns{Store: newStore(t)}
	c := newCluster(t, s)
	buildCluster(t, c, 2, 1, 2) // every DA of 2 VDs and 2 controllers uses all of them
	ctx := context.Background()
	_, err := c.CreateDiskArray(ctx, daSpec("warmup")) // loads the candidate cache
	require.NoError(t, err)
	s.failed.Store(0)
	var wg sync.WaitGroup
	errs := make([]error, 4) // with the warmup, 5 VDs of 20 MiB on each 128 MiB PD
	for i := range errs {
		wg.Go(func() { _, errs[i] = c.CreateDiskArray(ctx, daSpec(fmt.Sprintf("da%d", i))) })
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	require.Zero(t, s.failed.Load(), "creates conflicted")
	for _, cn := range []string{"cn000:9820", "cn001:9820"} {
		n, err := c.GetControllerNode(ctx, cn)
		require.NoError(t, err)
		require.Equal(t, 5, n.CntlrCount, cn)
	}
	pd, err := c.GetPhysicalDisk(ctx, "dn000:9720", "pd0")
	require.NoError(t, err)
	require.Equal(t, 5, pd.VDCount)
}

package monitor

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/store"
)

// conflictOnce makes the first failover commit conflict: just before it,
// another writer rewrites the first DA it moves (same value, new revision).
type conflictOnce struct {
	store.Store
	commits, conflicts atomic.Int64
}

func (c *conflictOnce) Txn(ctx context.Context, t store.Txn) (store.TxnResult, error) {
	if isFailoverCommit(t) && c.commits.Add(1) == 1 {
		for _, op := range t.Ops {
			if kv, err := c.Store.Get(ctx, op.Key); err == nil && strings.HasPrefix(op.Key, vda.PrefixDA) {
				if _, err := c.Store.Txn(ctx, store.Txn{Ops: []store.Op{{Key: kv.Key, Value: kv.Value}}}); err != nil {
					return store.TxnResult{}, err
				}
				break
			}
		}
	}
	res, err := c.Store.Txn(ctx, t)
	if err == nil && !res.Succeeded && isFailoverCommit(t) {
		c.conflicts.Add(1)
	}
	return res, err
}

// A failover commit that conflicts is decided again on a snapshot that has
// the write it conflicted with (the cache waits for the store's revision),
// so the second commit succeeds.
func TestFailoverReloadsAfterConflict(t *testing.T) {
	s := newMemStore(t)
	tc := newTestCluster(t, s, 2, 2)
	tc.createDA("da0", 2, 2)
	cs := &conflictOnce{Store: s}
	startMonitor(t, testConfig(cs, "m0"))
	eventually(t, func() bool { return tc.da("da0").Initialized && tc.allConverged(tc.all()...) }, wait, 5*time.Millisecond)
	old, _ := tc.da("da0").Primary()
	tc.agent(old.CNName).Stop()
	eventually(t, func() bool {
		p, _ := tc.da("da0").Primary()
		return p.CNName != old.CNName
	}, wait, 5*time.Millisecond)
	require.EqualValues(t, 2, cs.commits.Load(), "one conflict, one commit")
	require.EqualValues(t, 1, cs.conflicts.Load())
}

package monitor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/store"
	"github.com/vda-io/vda/store/memstore"
)

func TestOwnerRendezvous(t *testing.T) {
	require.Equal(t, "", Owner(nil, "n"))
	members := []string{"m1", "m2", "m3"}
	counts := map[string]int{}
	moved := 0
	for i := 0; i < 3000; i++ {
		node := fmt.Sprintf("node-%d", i)
		o := Owner(members, node)
		require.Equal(t, o, Owner([]string{"m3", "m1", "m2"}, node), "order of members must not matter")
		counts[o]++
		after := Owner([]string{"m1", "m2"}, node)
		if o != "m3" {
			require.Equal(t, o, after, "removing m3 must only move m3's nodes")
		} else {
			moved++
		}
	}
	for _, m := range members {
		require.InDelta(t, 1000, counts[m], 150, "member %s got %d nodes", m, counts[m])
	}
	require.Equal(t, counts["m3"], moved)
}

// partitioned wraps a store and fails every call while down is set.
type partitioned struct {
	store.Store
	down atomic.Bool
}

var errPartitioned = errors.New("test: partitioned from the store")

func (p *partitioned) KeepAlive(ctx context.Context, id store.LeaseID) error {
	if p.down.Load() {
		return errPartitioned
	}
	return p.Store.KeepAlive(ctx, id)
}

func (p *partitioned) List(ctx context.Context, prefix string, o store.ListOptions) (store.ListResult, error) {
	if p.down.Load() {
		return store.ListResult{}, errPartitioned
	}
	return p.Store.List(ctx, prefix, o)
}

func (p *partitioned) Grant(ctx context.Context, ttl time.Duration) (store.LeaseID, error) {
	if p.down.Load() {
		return 0, errPartitioned
	}
	return p.Store.Grant(ctx, ttl)
}

func newMemStore(t testing.TB) store.Store {
	s, err := memstore.New(memstore.Config{ExpiryInterval: 10 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func startMember(t *testing.T, s store.Store, id string, ttl time.Duration) (*Membership, context.CancelFunc) {
	m, err := NewMembership(s, MembershipConfig{ID: id, TTL: ttl})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = m.Run(ctx) }()
	stop := func() { cancel(); wg.Wait() }
	t.Cleanup(stop)
	return m, stop
}

func nodes(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("cn%d", i)
	}
	return out
}

func TestMembershipSplitsAndHandsOver(t *testing.T) {
	s := newMemStore(t)
	a, stopA := startMember(t, s, "a", 300*time.Millisecond)
	b, _ := startMember(t, s, "b", 300*time.Millisecond)
	eventually(t, func() bool {
		return len(a.Members()) == 2 && len(b.Members()) == 2
	}, 5*time.Second, 5*time.Millisecond)
	ownedA, ownedB := 0, 0
	for _, n := range nodes(200) {
		require.NotEqual(t, a.Owns(n), b.Owns(n), "node %s must have exactly one owner", n)
		if a.Owns(n) {
			ownedA++
		} else {
			ownedB++
		}
	}
	require.Positive(t, ownedA)
	require.Positive(t, ownedB)

	changed := b.Changed()
	stopA() // a clean stop revokes a's lease: b takes everything at once
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("b was not told about a leaving")
	}
	eventually(t, func() bool { return len(b.Members()) == 1 }, 5*time.Second, 5*time.Millisecond)
	for _, n := range nodes(200) {
		require.True(t, b.Owns(n))
		require.False(t, a.Owns(n))
		require.ErrorIs(t, a.Guard(n), ErrNotMember)
		require.NoError(t, b.Guard(n))
	}
}

// A monitor cut off from the store stops owning nodes before its lease can
// expire in the store, so the survivor never owns a node at the same moment.
func TestMembershipPartitionNeverDoubleOwns(t *testing.T) {
	s := newMemStore(t)
	p := &partitioned{Store: s}
	ttl := 300 * time.Millisecond
	a, _ := startMember(t, p, "a", ttl)
	b, _ := startMember(t, s, "b", ttl)
	eventually(t, func() bool {
		return len(a.Members()) == 2 && len(b.Members()) == 2
	}, 5*time.Second, 5*time.Millisecond)

	p.down.Store(true)
	all := nodes(100)
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, n := range all {
			require.False(t, a.Owns(n) && b.Owns(n), "node %s owned twice", n)
		}
		done := true
		for _, n := range all {
			done = done && b.Owns(n)
		}
		if done {
			break
		}
		require.True(t, time.Now().Before(deadline), "b never took over a's nodes")
		time.Sleep(time.Millisecond) // sampling interval of the invariant check, not synchronisation
	}
	require.Empty(t, a.Members(), "a must consider itself fenced")

	// When the partition heals, a registers again with a new lease and the
	// nodes are split again.
	p.down.Store(false)
	eventually(t, func() bool {
		return len(a.Members()) == 2 && len(b.Members()) == 2
	}, 5*time.Second, 5*time.Millisecond)
}

func TestNewMembershipValidates(t *testing.T) {
	s := newMemStore(t)
	for _, id := range []string{"", "a/b", "x\x00"} {
		_, err := NewMembership(s, MembershipConfig{ID: id})
		require.Error(t, err, id)
	}
	_, err := NewMembership(s, MembershipConfig{ID: "a", TTL: -time.Second})
	require.Error(t, err)
	_, err = NewMembership(nil, MembershipConfig{ID: "a"})
	require.Error(t, err)
}

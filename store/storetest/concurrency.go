package storetest

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/store"
)

const (
	workers      = 8
	perWorker    = 10
	counterTotal = workers * perWorker
)

// casIncrement adds one to the integer at key with a compare-and-swap loop
// and returns how many attempts lost a race.
func casIncrement(ctx context.Context, s store.Store, key string) (conflicts int, err error) {
	for {
		var n int
		kv, err := s.Get(ctx, key)
		switch {
		case err == nil:
			if n, err = strconv.Atoi(string(kv.Value)); err != nil {
				return conflicts, err
			}
		case !isNotFound(err):
			return conflicts, err
		}
		res, err := s.Txn(ctx, store.Txn{
			Conds: []store.Cond{{Key: key, ModRevision: kv.ModRevision}},
			Ops:   []store.Op{{Key: key, Value: []byte(strconv.Itoa(n + 1))}},
		})
		if err != nil {
			return conflicts, err
		}
		if res.Succeeded {
			return conflicts, nil
		}
		conflicts++
	}
}

func testConcurrentTxnCounter(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	var wg sync.WaitGroup
	var conflicts atomic.Int64
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for range perWorker {
				c, err := casIncrement(ctx, s, "counter")
				conflicts.Add(int64(c))
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assertCounter(t, s, "counter", counterTotal)
	t.Logf("%d increments, %d lost races", counterTotal, conflicts.Load())
}

func assertCounter(t *testing.T, s store.Store, key string, want int) {
	t.Helper()
	kv, err := s.Get(ctxT(t), key)
	require.NoError(t, err)
	assert.Equal(t, strconv.Itoa(want), string(kv.Value))
	assert.Equal(t, int64(want), kv.Version, "one write per increment")
}

func increment(tx *store.Tx, key string) error {
	n := 0
	kv, err := tx.Get(key)
	switch {
	case err == nil:
		if n, err = strconv.Atoi(string(kv.Value)); err != nil {
			return err
		}
	case !isNotFound(err):
		return err
	}
	tx.Put(key, []byte(strconv.Itoa(n+1)))
	return nil
}

func testUpdateCounter(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for range perWorker {
				err := store.Update(ctx, s, func(tx *store.Tx) error {
					// Two keys moved together in one transaction.
					if err := increment(tx, "a"); err != nil {
						return err
					}
					return increment(tx, "b")
				})
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assertCounter(t, s, "a", counterTotal)
	assertCounter(t, s, "b", counterTotal)
}

func testUpdateRetriesOnConflict(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	put(t, s, "n", "10")
	attempts := 0
	err := store.Update(ctx, s, func(tx *store.Tx) error {
		attempts++
		kv, err := tx.Get("n")
		if err != nil {
			return err
		}
		if attempts == 1 {
			// Someone else writes between our read and our commit.
			put(t, s, "n", "20")
		}
		n, err := strconv.Atoi(string(kv.Value))
		if err != nil {
			return err
		}
		tx.Put("n", []byte(strconv.Itoa(n+1)))
		tx.Put("seen", kv.Value)
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, 2, attempts, "the conflicting attempt must be re-run once")
	kv, err := s.Get(ctx, "n")
	require.NoError(t, err)
	assert.Equal(t, "21", string(kv.Value), "the re-run saw the other writer's value")
	kv, err = s.Get(ctx, "seen")
	require.NoError(t, err)
	assert.Equal(t, "20", string(kv.Value))

	// A key read as absent is guarded too.
	attempts = 0
	err = store.Update(ctx, s, func(tx *store.Tx) error {
		attempts++
		if _, err := tx.Get("lock"); !isNotFound(err) {
			return err
		}
		if attempts == 1 {
			put(t, s, "lock", "theirs")
			tx.Put("lock", []byte("mine"))
		}
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, 2, attempts)
	kv, err = s.Get(ctx, "lock")
	require.NoError(t, err)
	assert.Equal(t, "theirs", string(kv.Value), "the first attempt's write must not land")
}

func testUpdateReadYourWrites(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	put(t, s, "r/1", "1")
	put(t, s, "r/2", "2")
	err := store.Update(ctx, s, func(tx *store.Tx) error {
		tx.Put("r/3", []byte("3"))
		tx.Delete("r/1")
		kv, err := tx.Get("r/3")
		require.NoError(t, err)
		assert.Equal(t, "3", string(kv.Value))
		_, err = tx.Get("r/1")
		assert.ErrorIs(t, err, store.ErrNotFound)
		list, err := tx.List("r/")
		require.NoError(t, err)
		assert.Equal(t, []string{"r/2", "r/3"}, keys(list))
		return nil
	})
	require.NoError(t, err)
	res, err := s.List(ctx, "r/", store.ListOptions{})
	require.NoError(t, err)
	assert.Equal(t, []string{"r/2", "r/3"}, keys(res.KVs))
}

func testUpdateError(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	err := store.Update(ctx, s, func(tx *store.Tx) error {
		tx.Put("u", []byte("v"))
		return errTest
	})
	require.ErrorIs(t, err, errTest)
	requireAbsent(t, s, "u")
}

// getCounter counts the Gets that reach the store.
type getCounter struct {
	store.Store
	gets int
}

func (g *getCounter) Get(ctx context.Context, key string) (store.KV, error) {
	g.gets++
	return g.Store.Get(ctx, key)
}

func testUpdateAssumed(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	rev := put(t, s, "a", "1")
	g := &getCounter{Store: s}

	// A current copy: no Get, and a commit without Ops checks it.
	var attempts []int
	err := store.Update(ctx, g, func(tx *store.Tx) error {
		attempts = append(attempts, tx.Attempt())
		if tx.Attempt() == 0 {
			tx.Assume(store.KV{Key: "a", ModRevision: rev})
			tx.Assume(store.KV{Key: "none"}) // known absent
		}
		kv, err := tx.Get("a")
		require.NoError(t, err)
		assert.Equal(t, rev, kv.ModRevision)
		_, err = tx.Get("none")
		assert.ErrorIs(t, err, store.ErrNotFound)
		return nil // nothing to write: the guards are still committed
	})
	require.NoError(t, err)
	assert.Equal(t, []int{0}, attempts)
	assert.Zero(t, g.gets, "assumed keys are not read from the store")

	// A stale copy fails the commit, even one without Ops, and the next
	// attempt reads the store.
	rev2 := put(t, s, "a", "2")
	put(t, s, "none", "x")
	for _, stale := range []store.KV{{Key: "a", ModRevision: rev}, {Key: "none"}} {
		attempts = nil
		var seen []string
		err = store.Update(ctx, g, func(tx *store.Tx) error {
			attempts = append(attempts, tx.Attempt())
			if tx.Attempt() == 0 {
				tx.Assume(stale)
			}
			kv, err := tx.Get(stale.Key)
			if err != nil {
				seen = append(seen, "absent")
				return nil
			}
			seen = append(seen, strconv.FormatInt(kv.ModRevision, 10))
			return nil
		})
		require.NoError(t, err)
		assert.Equal(t, []int{0, 1}, attempts, "%s: the stale copy's commit must fail once", stale.Key)
		if stale.Key == "a" {
			assert.Equal(t, []string{strconv.FormatInt(rev, 10), strconv.FormatInt(rev2, 10)}, seen)
		} else {
			assert.Equal(t, "absent", seen[0])
			assert.NotEqual(t, "absent", seen[1])
		}
	}

	// UpdateRev returns the revision of the writes it committed.
	rev3, err := store.UpdateRev(ctx, s, func(tx *store.Tx) error {
		tx.Put("a", []byte("3"))
		return nil
	})
	require.NoError(t, err)
	kv, err := s.Get(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, rev3, kv.ModRevision)

	// A key already read or written keeps what the Tx has.
	err = store.Update(ctx, s, func(tx *store.Tx) error {
		kv, err := tx.Get("a")
		require.NoError(t, err)
		tx.Assume(store.KV{Key: "a", ModRevision: rev})
		again, err := tx.Get("a")
		require.NoError(t, err)
		assert.Equal(t, kv, again)
		tx.Put("b", []byte("mine"))
		tx.Assume(store.KV{Key: "b"})
		b, err := tx.Get("b")
		require.NoError(t, err)
		assert.Equal(t, "mine", string(b.Value))
		return nil
	})
	require.NoError(t, err)
}

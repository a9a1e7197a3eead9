package storetest

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/store"
)

func testBadInput(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	badKeys := map[string]string{
		"empty":    "",
		"too long": strings.Repeat("k", store.MaxKeyBytes+1),
		"not utf8": "bad\xff",
		"nul":      "a\x00b",
	}
	for name, k := range badKeys {
		_, err := s.Get(ctx, k)
		assert.ErrorIs(t, err, store.ErrInvalidKey, "get %s", name)
		_, err = s.Txn(ctx, store.Txn{Ops: []store.Op{{Key: k, Value: []byte("v")}}})
		assert.ErrorIs(t, err, store.ErrInvalidKey, "put %s", name)
		_, err = s.Txn(ctx, store.Txn{Conds: []store.Cond{{Key: k}}})
		assert.ErrorIs(t, err, store.ErrInvalidKey, "cond %s", name)
		if k != "" {
			_, err = s.List(ctx, k, store.ListOptions{})
			assert.ErrorIs(t, err, store.ErrInvalidKey, "list %s", name)
			_, err = s.Watch(ctx, k, 0)
			assert.ErrorIs(t, err, store.ErrInvalidKey, "watch %s", name)
		}
	}
	maxKey := strings.Repeat("k", store.MaxKeyBytes)
	put(t, s, maxKey, "v")
	kv, err := s.Get(ctx, maxKey)
	require.NoError(t, err)
	assert.Equal(t, "v", string(kv.Value))

	invalid := map[string]store.Txn{
		"duplicate key":  {Ops: []store.Op{{Key: "d", Value: []byte("1")}, {Key: "d", Delete: true}}},
		"too many ops":   {Ops: manyOps(store.MaxTxnOps + 1)},
		"negative cond":  {Conds: []store.Cond{{Key: "d", ModRevision: -1}}},
		"negative lease": {Ops: []store.Op{{Key: "d", Lease: -1}}},
	}
	for name, txn := range invalid {
		_, err := s.Txn(ctx, txn)
		assert.ErrorIs(t, err, store.ErrInvalidArgument, name)
	}
	res, err := s.Txn(ctx, store.Txn{Ops: manyOps(store.MaxTxnOps)})
	require.NoError(t, err)
	assert.True(t, res.Succeeded, "MaxTxnOps ops are allowed")

	_, err = s.List(ctx, "", store.ListOptions{Limit: -1})
	assert.ErrorIs(t, err, store.ErrInvalidArgument)
	_, err = s.Watch(ctx, "", -1)
	assert.ErrorIs(t, err, store.ErrInvalidArgument)
	_, err = s.Grant(ctx, 0)
	assert.ErrorIs(t, err, store.ErrInvalidArgument)

	requireAbsent(t, s, "d")
	all, err := s.List(ctx, "", store.ListOptions{})
	require.NoError(t, err)
	assert.Len(t, all.KVs, 1+store.MaxTxnOps, "refused requests wrote nothing")
}

func manyOps(n int) []store.Op {
	ops := make([]store.Op, n)
	for i := range ops {
		ops[i] = store.Op{Key: fmt.Sprintf("many/%04d", i), Value: []byte("v")}
	}
	return ops
}

func testLargeValues(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	big := bytes.Repeat([]byte{0, 1, 2, 0xff}, store.MaxValueBytes/4)
	require.Len(t, big, store.MaxValueBytes)
	res, err := s.Txn(ctx, store.Txn{Ops: []store.Op{{Key: "big", Value: big}}})
	require.NoError(t, err)
	require.True(t, res.Succeeded)
	kv, err := s.Get(ctx, "big")
	require.NoError(t, err)
	assert.True(t, bytes.Equal(big, kv.Value), "a value of MaxValueBytes round-trips")

	over := append(big, 'x')
	_, err = s.Txn(ctx, store.Txn{Ops: []store.Op{{Key: "over", Value: over}}})
	assert.ErrorIs(t, err, store.ErrValueTooLarge)
	requireAbsent(t, s, "over")

	// Two values that fit alone but not together in one txn.
	half := big[:store.MaxValueBytes/2+store.MaxKeyBytes*store.MaxTxnOps]
	_, err = s.Txn(ctx, store.Txn{Ops: []store.Op{{Key: "h1", Value: half}, {Key: "h2", Value: half}}})
	assert.ErrorIs(t, err, store.ErrValueTooLarge)
	requireAbsent(t, s, "h1")
}

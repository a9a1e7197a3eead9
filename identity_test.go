package vda_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/store"
	"github.com/vda-io/vda/store/memstore"
)

func TestStoreIdentity(t *testing.T) {
	ctx := context.Background()
	s, err := memstore.New(memstore.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })

	_, err = vda.ReadIdentity(ctx, s)
	require.ErrorIs(t, err, vda.ErrNoIdentity)

	id, created, err := vda.InitIdentity(ctx, s, "")
	require.NoError(t, err)
	require.True(t, created)
	require.Len(t, id.ClusterID, 32)
	require.Equal(t, vda.LayoutVersion, id.LayoutVersion)

	again, created, err := vda.InitIdentity(ctx, s, "")
	require.NoError(t, err)
	require.False(t, created, "the identity is written once")
	require.Equal(t, id, again)
	read, err := vda.ReadIdentity(ctx, s)
	require.NoError(t, err)
	require.Equal(t, id, read)
	require.NoError(t, read.Check(id.ClusterID))

	other := "0123456789abcdef0123456789abcdef"
	_, _, err = vda.InitIdentity(ctx, s, other)
	require.ErrorIs(t, err, vda.ErrFailedPrecondition)
	require.ErrorContains(t, err, "belongs to cluster "+id.ClusterID)
	require.ErrorIs(t, read.Check(other), vda.ErrFailedPrecondition)
	_, _, err = vda.InitIdentity(ctx, s, "not-an-id")
	require.ErrorIs(t, err, vda.ErrInvalidArgument)

	// A store written by a newer VDA is refused, an older layout raised.
	put := func(v string) {
		_, err := s.Txn(ctx, store.Txn{Ops: []store.Op{{Key: vda.KeyIdentity, Value: []byte(v)}}})
		require.NoError(t, err)
	}
	put(`{"cluster_id":"` + other + `","layout_version":99}`)
	_, _, err = vda.InitIdentity(ctx, s, "")
	require.ErrorIs(t, err, vda.ErrFailedPrecondition)
	require.ErrorContains(t, err, "layout version 99")
	put(`{"cluster_id":"` + other + `","layout_version":0}`)
	_, _, err = vda.InitIdentity(ctx, s, other)
	require.ErrorIs(t, err, vda.ErrFailedPrecondition, "0 is no version")
	put(`not json`)
	_, err = vda.ReadIdentity(ctx, s)
	require.ErrorIs(t, err, vda.ErrFailedPrecondition)

	// A chosen id on an empty store.
	s2, err := memstore.New(memstore.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s2.Close() })
	id, created, err = vda.InitIdentity(ctx, s2, other)
	require.NoError(t, err)
	require.True(t, created)
	require.Equal(t, other, id.ClusterID)
}

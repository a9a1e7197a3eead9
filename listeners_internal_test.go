package vda

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/store"
)

// cnListener gives what the whole spec decoded gives (a listener parsed
// once and then taken from the memo, or none), and fails as that decode
// fails: on a malformed listener, and on any other field that does not
// decode.
func TestCNListenerDecodesAsTheSpec(t *testing.T) {
	ctx := context.Background()
	s := memStore(t)
	c, err := New(DefaultConfig(s))
	require.NoError(t, err)
	l := nvmeof.TransportID{TrType: nvmeof.TrTypeTCP, AdrFam: nvmeof.AdrFamIPv4, TrAddr: "10.0.0.1", TrSvcID: "4430"}
	_, err = c.CreateControllerNode(ctx, NodeSpec{Name: "cn0:9820", Listener: l})
	require.NoError(t, err)
	for range 2 { // parsed, then from the memo
		got, err := c.cnListener(ctx, "cn0:9820")
		require.NoError(t, err)
		spec, err := getSpecJSON[ControllerNode](ctx, c, KeyCN("cn0:9820"), "cn")
		require.NoError(t, err)
		require.Equal(t, spec.Listener, got)
		require.Equal(t, l, got)
	}
	_, err = c.cnListener(ctx, "missing:9820")
	require.ErrorIs(t, err, ErrNotFound)

	put := func(raw string) {
		_, err := s.Txn(ctx, store.Txn{Ops: []store.Op{{Key: KeyCN("bad:9820"), Value: []byte(raw)}}})
		require.NoError(t, err)
	}
	for _, raw := range []string{
		`{"id":"x","name":"bad:9820","listener_conf":"{\"trtype\":\"bogus\"}"}`,
		`{"id":"x","name":"bad:9820","listener_conf":{"trtype":"tcp"}}`,
		`{"id":"x","name":"bad:9820","listener_conf":"","cntlr_count":"many"}`,
	} {
		put(raw)
		_, want := getSpecJSON[ControllerNode](ctx, c, KeyCN("bad:9820"), "cn")
		require.Error(t, want, raw)
		_, err := c.cnListener(ctx, "bad:9820")
		require.Error(t, err, raw)
	}
	put(`{"id":"x","name":"bad:9820"}`) // no listener: none, as the spec has
	got, err := c.cnListener(ctx, "bad:9820")
	require.NoError(t, err)
	require.Zero(t, got)
}

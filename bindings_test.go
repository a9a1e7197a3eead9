package vda_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/store"
	"github.com/vda-io/vda/store/memstore"
)

// bind writes a node's binding as the monitor does.
func bind(t *testing.T, s store.Store, b vda.Binding) {
	t.Helper()
	v, err := json.Marshal(b)
	require.NoError(t, err)
	res, err := s.Txn(context.Background(), store.Txn{
		Conds: []store.Cond{{Key: vda.KeyNodeBinding(b.NodeID)}, {Key: vda.KeyAgentBinding(b.AgentID)}},
		Ops:   []store.Op{{Key: vda.KeyNodeBinding(b.NodeID), Value: v}, {Key: vda.KeyAgentBinding(b.AgentID), Value: v}}})
	require.NoError(t, err)
	require.True(t, res.Succeeded)
}

func exists(t *testing.T, s store.Store, key string) bool {
	t.Helper()
	_, err := s.Get(context.Background(), key)
	return err == nil
}

func TestUnbindAndDeleteDropBindings(t *testing.T) {
	ctx := context.Background()
	s, err := memstore.New(memstore.DefaultConfig())
	require.NoError(t, err)
	defer s.Close()
	c, err := vda.New(vda.DefaultConfig(s))
	require.NoError(t, err)
	dn, err := c.CreateDiskNode(ctx, vda.NodeSpec{Name: "192.168.0.14:9720", Listener: listener("192.168.0.14", "4420")})
	require.NoError(t, err)
	cn, err := c.CreateControllerNode(ctx, vda.NodeSpec{Name: "192.168.0.16:9820",
		Listener: listener("192.168.0.16", "4430")})
	require.NoError(t, err)

	_, err = c.UnbindDiskNode(ctx, dn.Name)
	require.ErrorIs(t, err, vda.ErrFailedPrecondition, "not bound")
	_, err = c.UnbindDiskNode(ctx, "192.168.0.99:9720")
	require.ErrorIs(t, err, vda.ErrNotFound)

	const agentA, agentB = "0b6f3a52-6a0e-4d8e-9a57-1c2d3e4f5a6b", "1b6f3a52-6a0e-4d8e-9a57-1c2d3e4f5a6b"
	bind(t, s, vda.Binding{NodeID: dn.ID, NodeName: dn.Name, Role: "dn", AgentID: agentA})
	b, err := c.UnbindDiskNode(ctx, dn.Name)
	require.NoError(t, err)
	require.Equal(t, agentA, b.AgentID)
	require.False(t, exists(t, s, vda.KeyNodeBinding(dn.ID)))
	require.False(t, exists(t, s, vda.KeyAgentBinding(agentA)))

	bind(t, s, vda.Binding{NodeID: dn.ID, NodeName: dn.Name, Role: "dn", AgentID: agentA})
	bind(t, s, vda.Binding{NodeID: cn.ID, NodeName: cn.Name, Role: "cn", AgentID: agentB})
	require.NoError(t, c.DeleteDiskNode(ctx, dn.Name))
	require.False(t, exists(t, s, vda.KeyNodeBinding(dn.ID)), "a deleted node's binding goes with it")
	require.False(t, exists(t, s, vda.KeyAgentBinding(agentA)))
	require.True(t, exists(t, s, vda.KeyAgentBinding(agentB)))
	b, err = c.UnbindControllerNode(ctx, cn.Name)
	require.NoError(t, err)
	require.Equal(t, agentB, b.AgentID)
	bind(t, s, vda.Binding{NodeID: cn.ID, NodeName: cn.Name, Role: "cn", AgentID: agentB})
	require.NoError(t, c.DeleteControllerNode(ctx, cn.Name))
	require.False(t, exists(t, s, vda.KeyAgentBinding(agentB)))
}

package vda

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/store"
)

// Node bindings. A node's name is only an address, and two names can reach
// one agent (an alias: another spelling, another IP of the same server), so
// the monitor binds every node to the agent ID it first reaches there
// (each agent keeps a UUID in its state directory) and drives the node only
// through that agent. Both keys are created together and only when absent:
// one agent ID belongs to one node, and a node to one agent ID.
const (
	// PrefixBinding holds the bindings, under node/<node ID> and
	// agent/<agent ID>, with the same Binding value in both.
	PrefixBinding      = Prefix + "binding/"
	prefixBindingNode  = PrefixBinding + "node/"
	prefixBindingAgent = PrefixBinding + "agent/"
)

// KeyNodeBinding is the key of the binding of the node with ID nodeID.
func KeyNodeBinding(nodeID string) string { return prefixBindingNode + nodeID }

// KeyAgentBinding is the key of the binding of the agent with ID agentID.
func KeyAgentBinding(agentID string) string { return prefixBindingAgent + agentID }

// Binding ties a node to the agent its address reached when the monitor
// first drove it.
type Binding struct {
	NodeID   string    `json:"node_id"`
	NodeName string    `json:"node_name"`
	Role     string    `json:"role"` // "dn" or "cn"
	AgentID  string    `json:"agent_id"`
	BoundAt  time.Time `json:"bound_at"`
}

// UnbindDiskNode drops the binding of disk node name to its agent, the
// explicit step after an agent's ID legitimately changed (its state
// directory was lost, the machine replaced): the monitor then binds the
// node to the agent it reaches next. It returns the binding it dropped, or
// ErrFailedPrecondition if the node is not bound.
func (c *Cluster) UnbindDiskNode(ctx context.Context, name string) (Binding, error) {
	if err := ValidateName(nvmeof.ResourceDN, name); err != nil {
		return Binding{}, err
	}
	return c.unbind(ctx, KeyDN(name), fmt.Sprintf("disk node %q", name))
}

// UnbindControllerNode is UnbindDiskNode for controller node name.
func (c *Cluster) UnbindControllerNode(ctx context.Context, name string) (Binding, error) {
	if err := ValidateName(nvmeof.ResourceCN, name); err != nil {
		return Binding{}, err
	}
	return c.unbind(ctx, KeyCN(name), fmt.Sprintf("controller node %q", name))
}

func (c *Cluster) unbind(ctx context.Context, nodeKey, what string) (Binding, error) {
	var dropped Binding
	err := c.update(ctx, func(tx *store.Tx) error {
		node, err := txGet[struct {
			ID string `json:"id"`
		}](tx, nodeKey, what)
		if err != nil {
			return err
		}
		b, ok, err := txUnbind(tx, node.ID)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: %s is not bound to an agent", ErrFailedPrecondition, what)
		}
		dropped = b
		return nil
	})
	return dropped, err
}

// txUnbind deletes the binding of node nodeID, if any, and returns it.
func txUnbind(tx *store.Tx, nodeID string) (Binding, bool, error) {
	kv, err := tx.Get(KeyNodeBinding(nodeID))
	if errors.Is(err, store.ErrNotFound) {
		return Binding{}, false, nil
	}
	if err != nil {
		return Binding{}, false, err
	}
	tx.Delete(kv.Key)
	var b Binding
	if err := json.Unmarshal(kv.Value, &b); err != nil {
		return Binding{NodeID: nodeID}, true, nil // damaged: its agent key cannot be named
	}
	if akv, err := tx.Get(KeyAgentBinding(b.AgentID)); err == nil {
		var ab Binding
		if json.Unmarshal(akv.Value, &ab) == nil && ab.NodeID == nodeID {
			tx.Delete(akv.Key)
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return Binding{}, false, err
	}
	return b, true, nil
}

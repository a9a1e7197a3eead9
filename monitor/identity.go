package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/agent"
	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/store"
)

// ErrIdentity is wrapped when a node's address does not reach the agent the
// node is bound to: it reaches another node's agent (an alias), or the
// agent's ID changed. Such a node is not synced until an operator acts.
var ErrIdentity = errors.New("monitor: node identity")

// boundRequest returns np's request with the agent ID the node is bound to.
// A node the snapshot knows no binding of is bound first, to the agent its
// address reaches now (Health), unless that agent is bound to another node.
func (w *worker) boundRequest(np *NodePlan) (*agentpb.SyncRequest, error) {
	if np.AgentID != "" {
		return np.Request, nil
	}
	if err := w.m.members.Guard(w.id); err != nil {
		return nil, err
	}
	h, err := w.askHealth()
	if err != nil {
		return nil, err
	}
	if err := w.m.bind(w.ctx, np, h.GetAgentId()); err != nil {
		return nil, err
	}
	req := proto.Clone(np.Request).(*agentpb.SyncRequest)
	req.AgentId = h.GetAgentId()
	return req, nil
}

// askHealth calls the agent's Health with Config.HealthTimeout and checks the
// agent ID it reports.
func (w *worker) askHealth() (*agentpb.HealthReply, error) {
	ctx, cancel := context.WithTimeout(w.ctx, w.m.cfg.HealthTimeout)
	defer cancel()
	h, err := w.client.Health(ctx, &agentpb.HealthRequest{})
	if err != nil {
		return nil, fmt.Errorf("%w: health %s: %w", ErrAgent, w.name, err)
	}
	if err := agent.ValidateAgentID(h.GetAgentId()); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrAgent, w.name, err)
	}
	return h, nil
}

// bind binds np to agentID in one store transaction: both binding keys are
// created only when absent (one agent ID belongs to one node, a node to one
// agent ID), guarded by the node's spec. A binding of a node that no longer
// exists is garbage and is replaced.
func (m *Monitor) bind(ctx context.Context, np *NodePlan, agentID string) error {
	var wrote bool
	err := store.Update(ctx, m.cfg.Store, func(tx *store.Tx) error {
		wrote = false
		if ok, err := txNodeIs(tx, np.Key, np.ID); err != nil || !ok {
			if err == nil {
				err = errSpecChanged
			}
			return err
		}
		if b, ok, err := txBinding(tx, vda.KeyNodeBinding(np.ID)); err != nil {
			return err
		} else if ok {
			if b.AgentID == agentID {
				return nil
			}
			return changedAgent(np, b.AgentID, agentID)
		}
		if b, ok, err := txBinding(tx, vda.KeyAgentBinding(agentID)); err != nil {
			return err
		} else if ok && b.NodeID != np.ID {
			key := vda.KeyCN(b.NodeName)
			if b.Role == RoleDN.String() {
				key = vda.KeyDN(b.NodeName)
			}
			alive, err := txNodeIs(tx, key, b.NodeID)
			if err != nil {
				return err
			}
			if alive {
				return fmt.Errorf("%w: address %s reaches the agent of node %s (agent %s): not synced; "+
					"if both names are one server, delete this node", ErrIdentity, np.Address, b.NodeName, agentID)
			}
			tx.Delete(vda.KeyNodeBinding(b.NodeID)) // of a deleted node
		}
		v, err := json.Marshal(vda.Binding{NodeID: np.ID, NodeName: np.Name, Role: np.Role.String(), AgentID: agentID,
			BoundAt: m.cfg.Now().UTC()})
		if err != nil {
			return err
		}
		tx.Put(vda.KeyNodeBinding(np.ID), v)
		tx.Put(vda.KeyAgentBinding(agentID), v)
		wrote = true
		return nil
	})
	if err != nil {
		return err
	}
	if wrote {
		m.log.Info("node bound to its agent", "node", np.Name, "agent_id", agentID)
	}
	return nil
}

// changedAgent is the error of a node whose address reaches another agent
// than the one it is bound to.
func changedAgent(np *NodePlan, bound, found string) error {
	return fmt.Errorf("%w: the agent at %s is agent %s, but node %s is bound to agent %s: not synced; "+
		"if its state directory was lost or the machine replaced, run `vda %s unbind --%s-name %s`",
		ErrIdentity, np.Address, found, np.Name, bound, np.Role, np.Role, np.Name)
}

// txNodeIs reports whether the spec at key exists with ID id.
func txNodeIs(tx *store.Tx, key, id string) (bool, error) {
	kv, err := tx.Get(key)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var n struct {
		ID string `json:"id"`
	}
	return json.Unmarshal(kv.Value, &n) == nil && n.ID == id, nil
}

// txBinding reads the binding at key.
func txBinding(tx *store.Tx, key string) (vda.Binding, bool, error) {
	var b vda.Binding
	kv, err := tx.Get(key)
	if errors.Is(err, store.ErrNotFound) {
		return b, false, nil
	}
	if err != nil {
		return b, false, err
	}
	if err := json.Unmarshal(kv.Value, &b); err != nil {
		return b, false, fmt.Errorf("%w: %s: %w", ErrMalformed, key, err)
	}
	return b, true, nil
}

// recheck looks at the agent after it refused req as stale or as not its
// own (FailedPrecondition): another agent than the node is bound to is an
// ErrIdentity error; a guard holding a generation or an epoch above the
// store's revision (which no monitor can have issued) is re-anchored to
// req's values. It returns nil when neither applies (then the snapshot is
// what is stale).
func (w *worker) recheck(np *NodePlan, req *agentpb.SyncRequest) error {
	h, err := w.askHealth()
	if err != nil {
		return err
	}
	if h.GetAgentId() != req.GetAgentId() {
		return changedAgent(np, req.GetAgentId(), h.GetAgentId())
	}
	ctx, cancel := context.WithTimeout(w.ctx, w.m.cfg.HealthTimeout)
	defer cancel()
	rev, err := w.m.cfg.Store.Revision(ctx)
	if err != nil {
		return fmt.Errorf("monitor: store revision: %w", err)
	}
	if h.GetGuardGeneration() <= rev && h.GetGuardMaxEpoch() <= rev {
		return nil
	}
	return w.reanchor(h, rev, req)
}

// reanchor resets the agent's guard to req's generation and epochs (store
// values, at most rev). It returns errReanchored so that the push is
// retried.
func (w *worker) reanchor(h *agentpb.HealthReply, rev int64, req *agentpb.SyncRequest) error {
	if err := w.m.members.Guard(w.id); err != nil {
		return err
	}
	w.log.Warn("agent holds a generation or an epoch no monitor issued: re-anchoring it to the store",
		"guard_generation", h.GetGuardGeneration(), "guard_max_epoch", h.GetGuardMaxEpoch(), "store_revision", rev,
		"generation", req.GetGeneration())
	ctx, cancel := context.WithTimeout(w.ctx, w.m.cfg.SyncTimeout)
	defer cancel()
	_, err := w.client.Reanchor(ctx, &agentpb.ReanchorRequest{AgentId: req.GetAgentId(), NodeId: req.GetNodeId(),
		NodeName: req.GetNodeName(), StoreRevision: rev, ExpectGeneration: h.GetGuardGeneration(),
		ExpectMaxEpoch: h.GetGuardMaxEpoch(), Generation: req.GetGeneration(), Epochs: req.DAEpochs()})
	if err != nil {
		return fmt.Errorf("%w: reanchor %s: %w", ErrAgent, w.name, err)
	}
	return errReanchored
}

// errReanchored: the agent's guard was reset; the push is retried.
var errReanchored = errors.New("monitor: agent re-anchored to the store")

// sawHealth looks at every Health reply of the node's agent (the probe's
// included) and forces a push when the agent holds state this monitor did
// not give it: a guard above the newest snapshot (a forged generation or
// epoch, to be re-anchored, or a newer monitor's), or an applied generation
// newer than this worker's push (applied, or in flight).
func (w *worker) sawHealth(h *agentpb.HealthReply) {
	w.mu.Lock()
	snap := w.snap
	w.mu.Unlock()
	if snap == nil {
		return
	}
	applied := w.applied.Load()
	beyond := h.GetGuardGeneration() > snap.Revision || h.GetGuardMaxEpoch() > snap.Revision
	// The generation of this worker's push in flight is its own, not
	// foreign: forcing it again cost the node a second whole sync (a
	// failover's fence and promotion pushes were each repeated).
	foreign := applied > 0 && h.GetGeneration() > max(applied, w.sending.Load())
	if (beyond || foreign) && w.suspect.CompareAndSwap(false, true) {
		w.log.Debug("agent holds state this monitor did not push: pushing again", "guard_generation",
			h.GetGuardGeneration(), "guard_max_epoch", h.GetGuardMaxEpoch(), "generation", h.GetGeneration(),
			"pushed", applied, "snapshot", snap.Revision)
		w.forcePush()
	}
}

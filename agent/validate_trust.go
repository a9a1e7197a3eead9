package agent

import (
	"maps"
	"slices"

	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/mtls"
	"github.com/vda-io/vda/nvmeof"
)

// maxReanchorEpochs bounds the disk arrays of one ReanchorRequest (a node
// serves at most a few thousand).
const maxReanchorEpochs = 1 << 16

// validateBounds checks what ties a request to a store and an agent: the
// agent ID, the node name, and that the generation and every epoch (from
// validateRequest) are at most the store revision the monitor read, since
// neither a revision nor an epoch can exceed the store's revision. Errors
// wrap ErrInvalidArgument.
func validateBounds(req *agentpb.SyncRequest, epochs map[string]int64) error {
	if err := ValidateAgentID(req.GetAgentId()); err != nil {
		return invalid("agent_id", "%v", err)
	}
	if err := validateNodeName(req.GetNodeName()); err != nil {
		return err
	}
	rev := req.GetStoreRevision()
	if rev < 1 {
		return invalid("store_revision", "%d is not positive", rev)
	}
	if g := req.GetGeneration(); g > rev {
		return invalid("generation", "%d is above store_revision %d: no store revision is", g, rev)
	}
	for _, da := range sortedKeys(epochs) {
		if e := epochs[da]; e > rev {
			return invalid("epoch", "%d of disk array %s is above store_revision %d: no epoch in the store is", e, da, rev)
		}
	}
	return nil
}

// validateNodeName checks an optional node name (an agent identity's name).
func validateNodeName(name string) error {
	if name == "" {
		return nil
	}
	if err := (mtls.Identity{Role: mtls.RoleAgent, Name: name}).Validate(); err != nil {
		return invalid("node_name", "%v", err)
	}
	return nil
}

// validateReanchor checks every field of a ReanchorRequest.
func validateReanchor(req *agentpb.ReanchorRequest) error {
	if err := ValidateAgentID(req.GetAgentId()); err != nil {
		return invalid("agent_id", "%v", err)
	}
	if err := nvmeof.ValidateID(req.GetNodeId()); err != nil {
		return invalid("node_id", "%v", err)
	}
	if err := validateNodeName(req.GetNodeName()); err != nil {
		return err
	}
	rev := req.GetStoreRevision()
	switch {
	case rev < 1:
		return invalid("store_revision", "%d is not positive", rev)
	case req.GetGeneration() < 1 || req.GetGeneration() > rev:
		return invalid("generation", "%d is not within 1 and store_revision %d", req.GetGeneration(), rev)
	case req.GetExpectGeneration() < 0 || req.GetExpectMaxEpoch() < 0:
		return invalid("expect_generation", "%d or expect_max_epoch %d is negative", req.GetExpectGeneration(), req.GetExpectMaxEpoch())
	case len(req.GetEpochs()) > maxReanchorEpochs:
		return invalid("epochs", "%d disk arrays, at most %d", len(req.GetEpochs()), maxReanchorEpochs)
	}
	for _, da := range sortedKeys(req.GetEpochs()) {
		if err := nvmeof.ValidateID(da); err != nil {
			return invalid("epochs", "%v", err)
		}
		if e := req.GetEpochs()[da]; e < 1 || e > rev {
			return invalid("epochs", "epoch %d of disk array %s is not within 1 and store_revision %d", e, da, rev)
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

package monitor

import (
	"reflect"
	"slices"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/nvmeof"
)

// Planner builds plans like Build, but rebuilds only the states of the
// nodes whose inputs changed since its last plan: a node's state (the
// DnState or CnState of its request) is reused when none of the objects
// it is made of changed. The snapshots of a SnapshotCache share their
// maps and objects while nothing changes (a put stores a new object), so
// what changed is found by comparing map entries by pointer, and nothing
// at all is compared for a map the two snapshots share.
//
// The checks that hold nodes are redone every plan, but the check of
// unique IDs while the PDs, DAs, exporters, snapshots and clones are the
// same maps, and the check of each DA's references (and the exporters
// served) for the DAs none of whose inputs changed. Each request's
// envelope (generation and store revision, node and agent) is redone every
// plan: a reused state goes out under the new snapshot's generation, as
// Build's would. A DA change its disk nodes' states do not read (its
// initialization, its QoS) rebuilds its controller nodes' states only.
//
// A Planner is not safe for concurrent use; plans it returned stay valid
// (states are never modified once built).
type Planner struct {
	prev   *Snapshot
	states map[nodeKey]nodeState // of prev's plan, by node
	// ids is what the check of unique IDs found, reused while the objects
	// it reads are unchanged (it was the largest part of a round).
	ids *idFindings
	// checks is what the check of every DA's references found, redone
	// only for the DAs whose inputs changed (see planner.checkDAs).
	checks *daChecks
	// waiting is what the last plan's secondaries waited for (see
	// admission): rechecked every plan.
	waiting map[string]waitEntry
}

// nodeKey names a node by role and name, as the snapshot's maps do.
type nodeKey struct {
	role Role
	name string
}

// nodeState is one node's state: dn or cn is set.
type nodeState struct {
	dn *agentpb.DnState
	cn *agentpb.CnState
}

// Build returns the plan of s. s should be newer than the last snapshot
// planned; any snapshot is planned correctly, only more slowly.
func (pl *Planner) Build(s *Snapshot) *Plan {
	var dirty *dirtySet
	reuse := pl.states
	if pl.prev == nil {
		reuse = nil
	} else {
		dirty = changedNodes(pl.prev, s)
	}
	plan, ids, checks := build(s, reuse, dirty, pl.ids, pl.checks, pl.waiting)
	pl.prev, pl.states, pl.ids, pl.checks, pl.waiting = s, statesOf(plan), ids, checks, plan.waiting
	return plan
}

// statesOf returns the states of plan's pushed nodes.
func statesOf(plan *Plan) map[nodeKey]nodeState {
	states := make(map[nodeKey]nodeState, len(plan.Nodes))
	for _, np := range plan.Nodes {
		if np.Request == nil {
			continue
		}
		k := nodeKey{np.Role, np.Name}
		if dn := np.Request.GetDn(); dn != nil {
			states[k] = nodeState{dn: dn}
		} else {
			states[k] = nodeState{cn: np.Request.GetCn()}
		}
	}
	return states
}

// dirtySet is the nodes whose state must be rebuilt, by name and by ID
// (a VD names its DN by both; a state filters by the ID).
type dirtySet struct {
	names map[nodeKey]bool
	ids   map[nodeKey]bool // name is the node ID
	// das names the DAs whose controllers' specs may have changed; a CN
	// dirty only through them (not in whole) keeps its other DAs' specs.
	das   map[string]bool
	whole map[nodeKey]bool // CNs whose own spec changed, by name and by ID
}

// patchable reports whether the CN of k and id changed only through the
// DAs of d.das.
func (d *dirtySet) patchable(k nodeKey, id string) bool {
	return d != nil && !d.whole[k] && !d.whole[nodeKey{k.role, id}]
}

// has reports whether the node of k and id must be rebuilt (all of them
// if d is nil).
func (d *dirtySet) has(k nodeKey, id string) bool {
	return d == nil || d.names[k] || d.ids[nodeKey{k.role, id}]
}

func (d *dirtySet) node(role Role, name, id string) {
	d.names[nodeKey{role, name}] = true
	d.ids[nodeKey{role, id}] = true
}

// da marks the nodes da is part of.
func (d *dirtySet) da(da *Object[vda.DiskArray]) {
	if da == nil {
		return
	}
	for _, vd := range da.Spec.VDs {
		d.node(RoleDN, vd.DNName, vd.DNID)
	}
	for _, c := range da.Spec.Cntlrs {
		d.node(RoleCN, c.CNName, c.CNID)
	}
}

// cns marks the controller nodes of da.
func (d *dirtySet) cns(da *Object[vda.DiskArray]) {
	for _, c := range da.Spec.Cntlrs {
		d.node(RoleCN, c.CNName, c.CNID)
	}
}

// sameVDs reports whether a and b give their disk nodes the same state:
// dnState reads a DA's ID, epoch, primary and VDs only.
func sameVDs(a, b *vda.DiskArray) bool {
	return a.ID == b.ID && a.Epoch == b.Epoch && a.PrimaryCntlrID == b.PrimaryCntlrID && slices.Equal(a.VDs, b.VDs)
}

// changedNodes returns the nodes whose state may differ between prev and
// s: what a node's state is built from (dnState, cnState, cntlrSpec) is
// its own spec; for a DN its PDs and the VDs of every DA on it; for a CN
// the DAs it has a controller of, with their exporters, snapshots and
// clones, and the listeners of their DNs and CNs. Statuses and bindings
// are no part of a state.
func changedNodes(prev, s *Snapshot) *dirtySet {
	d := &dirtySet{names: map[nodeKey]bool{}, ids: map[nodeKey]bool{}, das: map[string]bool{}, whole: map[nodeKey]bool{}}
	dirtyDA := func(name string) { d.das[name] = true; d.da(prev.DAs[name]); d.da(s.DAs[name]) }
	// Nodes whose listener, name or ID changed: every DA on them changes
	// its CNs' states (a primary dials its DNs, a secondary its primary).
	moved := map[nodeKey]bool{}
	nodeChanged := func(role Role, name string, a, b *nodeFields) {
		if a != nil && b != nil && *a == *b {
			return // e.g. its location or address: no state holds them
		}
		for _, n := range []*nodeFields{a, b} {
			if n != nil {
				d.node(role, name, n.ID)
				d.whole[nodeKey{role, name}], d.whole[nodeKey{role, n.ID}] = true, true
			}
		}
		moved[nodeKey{role, name}] = true
	}
	eachChanged(prev.DNs, s.DNs, func(name string, a, b *Object[vda.DiskNode]) {
		nodeChanged(RoleDN, name, nodeSpec(a), nodeSpec(b))
	})
	eachChanged(prev.CNs, s.CNs, func(name string, a, b *Object[vda.ControllerNode]) {
		nodeChanged(RoleCN, name, nodeSpec(a), nodeSpec(b))
	})
	eachChanged(prev.PDs, s.PDs, func(_ string, a, b *Object[vda.PhysicalDisk]) {
		for _, pd := range []*Object[vda.PhysicalDisk]{a, b} {
			if pd != nil {
				d.node(RoleDN, pd.Spec.DNName, pd.Spec.DNID)
			}
		}
	})
	eachChanged(prev.DAs, s.DAs, func(name string, a, b *Object[vda.DiskArray]) {
		if a != nil && b != nil && sameVDs(&a.Spec, &b.Spec) {
			// E.g. marked initialized, or its QoS: no DN state reads
			// them, only its CNs' do.
			d.das[name] = true
			d.cns(a)
			d.cns(b)
			return
		}
		dirtyDA(name)
	})
	eachChanged(prev.Exps, s.Exps, func(_ string, a, b *Object[vda.Exporter]) {
		for _, o := range []*Object[vda.Exporter]{a, b} {
			if o != nil {
				dirtyDA(o.Spec.DAName)
			}
		}
	})
	eachChanged(prev.Snaps, s.Snaps, func(_ string, a, b *Object[vda.Snapshot]) {
		for _, o := range []*Object[vda.Snapshot]{a, b} {
			if o != nil {
				dirtyDA(o.Spec.DAName)
			}
		}
	})
	eachChanged(prev.Clones, s.Clones, func(_ string, a, b *Object[vda.Clone]) {
		for _, o := range []*Object[vda.Clone]{a, b} {
			if o != nil {
				dirtyDA(o.Spec.DAName)
			}
		}
	})
	if len(moved) > 0 {
		for _, da := range s.DAs {
			if onMoved(da, moved) {
				d.das[da.Spec.Name] = true
				d.da(da)
			}
		}
	}
	return d
}

// onMoved reports whether da has a VD or controller on a node of moved.
func onMoved(da *Object[vda.DiskArray], moved map[nodeKey]bool) bool {
	for _, vd := range da.Spec.VDs {
		if moved[nodeKey{RoleDN, vd.DNName}] {
			return true
		}
	}
	for _, c := range da.Spec.Cntlrs {
		if moved[nodeKey{RoleCN, c.CNName}] {
			return true
		}
	}
	return false
}

// nodeFields is what states read of a DN or CN.
type nodeFields struct {
	ID, Name string
	Listener nvmeof.TransportID
}

// nodeSpec returns the fields states read of a DN or CN (nil if o is nil).
func nodeSpec[T vda.DiskNode | vda.ControllerNode](o *Object[T]) *nodeFields {
	if o == nil {
		return nil
	}
	switch n := any(&o.Spec).(type) {
	case *vda.DiskNode:
		return &nodeFields{ID: n.ID, Name: n.Name, Listener: n.Listener}
	case *vda.ControllerNode:
		return &nodeFields{ID: n.ID, Name: n.Name, Listener: n.Listener}
	}
	return nil
}

// eachChanged calls fn for every key whose value differs between a and b
// (by pointer; nil where absent). Two snapshots that share a map share
// every value in it: nothing is compared.
func eachChanged[V comparable](a, b map[string]V, fn func(key string, old, cur V)) {
	if reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer() {
		return
	}
	var zero V
	for k, v := range b {
		if old, ok := a[k]; !ok || old != v {
			fn(k, old, v)
		}
	}
	for k, v := range a {
		if _, ok := b[k]; !ok {
			fn(k, v, zero)
		}
	}
}

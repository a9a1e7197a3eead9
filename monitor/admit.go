package monitor

import (
	"slices"
	"sort"
	"strings"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/api/agentpb"
)

// Secondaries wait for their primary.
//
// A secondary controller re-exports its primary's export: pushed before
// the primary exports, its attach is refused, and every retry is a whole
// sync of its controller node (at 100 new arrays a second, about six
// refused connects per secondary). So a secondary controller enters its
// node's state only once the DA's primary reported its controller healthy
// at the DA's epoch, and each exporter enters a secondary's spec only once
// the primary reported that exporter's port healthy at the epoch (an
// exporter made after its DA waits on its own), or, once the DA is
// initialized, exported to the secondaries only at the epoch: a primary
// exports to its secondaries while the DA waits for its initialized mark
// (and to the hosts from the sync after it), so the secondaries attach
// beside that sync instead of after it.
//
// Leaving an object out of a node's state tears it down, so this applies
// to the first appearance only: what a node already has stays in whatever
// the primary reports (a primary that is not ready any more, a failover's
// new primary that has not exported yet). A node has an object when the
// store shows that the node reported it (the DA's or exporter's status
// holds a part for it with a health: written from the node's replies, or
// marked failed with its node) or when this planner put it in a plan of
// the node before (its memory: the push may have gone out before the
// status was written). A new monitor has no memory and goes by the store.
// Admitting too early is always safe (it is what every secondary did
// before); only what a node never had is ever held back.

// waitEntry is what one secondary controller waits for: the IDs it is
// left out of its node's state by (its own ID, or its exporter ports'),
// each for the primary's part named in the same place of gates.
type waitEntry struct {
	da    string
	left  []string
	gates []partGate
}

// partGate opens when the part of the status of specKey is reported
// healthy at epoch or later (an exporter's port: see exportReadyAt).
type partGate struct {
	specKey, part string
	epoch         int64
}

// open reports whether st has the gate's part healthy at its epoch.
func (g partGate) open(st vda.Status) bool { return readyAt(st, g.part, g.epoch) }

func readyAt(st vda.Status, part string, epoch int64) bool {
	p, ok := st.Parts[part]
	return ok && p.Health == vda.HealthHealthy && p.Epoch >= epoch
}

// exportReadyAt reports whether st, an exporter's status, has the
// primary's port part reported at epoch or later either healthy or
// exported to the secondaries only: a secondary's attach of it is not
// refused. It is for a DA that is initialized: before the mark a
// secondary re-exports nothing.
func exportReadyAt(st vda.Status, part string, epoch int64) bool {
	p, ok := st.Parts[part]
	return ok && (p.Health == vda.HealthHealthy || p.SecondariesOnly) && p.Epoch >= epoch
}

// vdsReady reports whether st, da's status, has every VD of da reported
// healthy: each disk node exports it (VD parts carry no epoch: a fence
// changes who may connect, not whether the export is there).
func vdsReady(st vda.Status, da *vda.DiskArray) bool {
	for _, vd := range da.VDs {
		if !readyAt(st, vd.ID, 0) {
			return false
		}
	}
	return true
}

// reported reports whether st holds a part id with a health: its node
// reported it (or it was marked failed with its node).
func reported(st vda.Status, id string) bool {
	p, ok := st.Parts[id]
	return ok && p.Health != vda.HealthUnknown
}

// admission decides what of DA da's controller c (on a node whose last
// planned spec of c is had, nil if none) enters the node's state: whether
// the controller does, and then which of the DA's exporters. The primary
// and what the node has are always in. It records what is left out in
// p.waiting.
func (p *planner) admission(da *Object[vda.DiskArray], c vda.Cntlr, had *agentpb.CntlrSpec) (bool, []*vda.Exporter) {
	exps := p.exps[da.Spec.Name]
	primary, _ := da.Spec.Primary()
	st := p.s.Statuses[da.Key]
	if c.ID == primary.ID {
		if had != nil || da.Spec.Initialized || reported(st, c.ID) || vdsReady(st, &da.Spec) {
			delete(p.waiting, c.ID)
			return true, exps
		}
		w := waitEntry{da: da.Spec.Name, left: []string{c.ID}}
		for _, vd := range da.Spec.VDs {
			w.gates = append(w.gates, partGate{specKey: da.Key, part: vd.ID})
		}
		p.waiting[c.ID] = w
		return false, nil
	}
	epoch := da.Spec.Epoch
	if had == nil && !reported(st, c.ID) && !readyAt(st, primary.ID, epoch) {
		p.waiting[c.ID] = waitEntry{da: da.Spec.Name, left: []string{c.ID},
			gates: []partGate{{specKey: da.Key, part: primary.ID, epoch: epoch}}}
		return false, nil
	}
	var in []*vda.Exporter
	var w waitEntry
	for _, exp := range exps {
		port, _ := portOf(exp, c.Idx)        // checked by checkDA
		pport, _ := portOf(exp, primary.Idx) // likewise
		key := vda.KeyExp(exp.DAName, exp.Name)
		est := p.s.Statuses[key]
		if hasExp(had, exp.ID) || reported(est, port.ID) || readyAt(est, pport.ID, epoch) ||
			da.Spec.Initialized && exportReadyAt(est, pport.ID, epoch) {
			in = append(in, exp)
			continue
		}
		w.left = append(w.left, port.ID)
		w.gates = append(w.gates, partGate{specKey: key, part: pport.ID, epoch: epoch})
	}
	if len(w.left) == 0 {
		delete(p.waiting, c.ID)
		return true, exps
	}
	w.da = da.Spec.Name
	p.waiting[c.ID] = w
	return true, in
}

func hasExp(spec *agentpb.CntlrSpec, id string) bool {
	return slices.ContainsFunc(spec.GetExps(), func(e *agentpb.ExpSpec) bool { return e.GetId() == id })
}

// hadSpec returns the spec of controller id in st (sorted by controller
// ID, as planned), nil if none.
func hadSpec(st *agentpb.CnState, id string) *agentpb.CntlrSpec {
	cs := st.GetCntlrs()
	i := sort.Search(len(cs), func(i int) bool { return cs[i].GetCntlrId() >= id })
	if i < len(cs) && cs[i].GetCntlrId() == id {
		return cs[i]
	}
	return nil
}

// recheckWaiting carries the entries of waiting (the last plan's) over to
// p, and marks dirty the DAs whose admission changed since: a primary that
// became ready is a change of its secondaries' nodes' inputs that no spec
// shows. Entries of controllers gone are dropped.
func (p *planner) recheckWaiting(waiting map[string]waitEntry, reuse map[nodeKey]nodeState, dirty *dirtySet) {
	for id, w := range waiting {
		da := p.s.DAs[w.da]
		if da == nil {
			continue
		}
		i := slices.IndexFunc(da.Spec.Cntlrs, func(c vda.Cntlr) bool { return c.ID == id })
		if i < 0 {
			continue
		}
		c := da.Spec.Cntlrs[i]
		p.waiting[id] = w
		if dirty == nil || dirty.das[w.da] {
			continue // rebuilt anyway
		}
		had := hadSpec(reuse[nodeKey{RoleCN, c.CNName}].cn, id)
		if p.admission(da, c, had); !slices.Equal(p.waiting[id].left, w.left) {
			dirty.das[w.da] = true
			dirty.cns(da)
		}
	}
}

// opensGate reports whether a status change from old to cur makes a
// primary ready that was not: the DA's primary controller part (a DA's
// status) or the primary's port (an exporter's) reported healthy at the
// DA's epoch, or that port exported to the secondaries only once the DA
// is initialized (exportReadyAt; the mark itself is a spec change, which
// replans the DA). Secondaries may wait for it: a round admits them.
// specs are the current specs (the cache's).
func opensGate(specKey string, old, cur vda.Status, das map[string]*Object[vda.DiskArray], exps map[string]*Object[vda.Exporter]) bool {
	if len(cur.Parts) == 0 {
		return false
	}
	var da *Object[vda.DiskArray]
	part, port := "", false
	if exp := exps[specKey]; exp != nil {
		if da = das[exp.Spec.DAName]; da == nil {
			return false
		}
		primary, _ := da.Spec.Primary()
		pport, ok := portOf(&exp.Spec, primary.Idx)
		if !ok {
			return false
		}
		part, port = pport.ID, true
	} else if name, ok := strings.CutPrefix(specKey, vda.PrefixDA); ok {
		if da = das[name]; da == nil {
			return false
		}
		if !da.Spec.Initialized && vdsReady(cur, &da.Spec) && !vdsReady(old, &da.Spec) {
			return true // a fresh DA's primary may wait for them
		}
		part = da.Spec.PrimaryCntlrID
	} else {
		return false
	}
	if len(da.Spec.Cntlrs) < 2 {
		return false // no secondary waits
	}
	ready := func(st vda.Status) bool {
		return readyAt(st, part, da.Spec.Epoch) || port && da.Spec.Initialized && exportReadyAt(st, part, da.Spec.Epoch)
	}
	return ready(cur) && !ready(old)
}

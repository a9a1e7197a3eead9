package monitor

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/nvmeof"
)

// Role says whether a node is a disk node or a controller node.
type Role int

// Node roles.
const (
	RoleDN Role = iota + 1
	RoleCN
)

func (r Role) String() string {
	switch r {
	case RoleDN:
		return "dn"
	case RoleCN:
		return "cn"
	default:
		return "unknown"
	}
}

// NodePlan is one node's complete desired state.
type NodePlan struct {
	ID   string // the node's stable ID (what monitors split by)
	Name string // the node's name: the identity its agent proves
	// Address is where its agent is reached: the node's Address, or its
	// name when it has none.
	Address string
	Role    Role
	Key     string // the node's spec key
	// AgentID is the agent the node is bound to ("" while unbound: the
	// worker binds it to the agent its address reaches, and Request then
	// names none yet).
	AgentID string
	// Request is what the node's agent is sent; nil when Held.
	Request *agentpb.SyncRequest
	// Held is why the node must not be pushed (an object it may hold is
	// malformed: a push deletes what the state does not name).
	Held error
}

// Plan is every node's desired state, built from one Snapshot.
type Plan struct {
	Revision int64
	Nodes    map[string]*NodePlan // by node ID
	Problems []Problem
	// waiting is what the plan's secondaries wait for (see admission),
	// by secondary controller ID.
	waiting map[string]waitEntry
}

// planner builds a Plan from a Snapshot; it is pure.
type planner struct {
	s        *Snapshot
	problems []Problem
	hold     holds // the snapshot's, plus what the cross-checks find
	// listeners caches parsed node listeners by node name.
	listeners map[string]*agentpb.Transport
	// exps lists each DA's exporters by DA name, sorted by ID.
	exps map[string][]*vda.Exporter
	vols volumes  // each DA's snapshots and clones
	das  []string // the DAs' names, sorted (see sortedDAs)
	// on lists, by node ID, the names of the DAs with a VD or controller
	// there and the keys of its PDs, each sorted (see nodeIndex).
	on map[string]*nodeObjects
	// reuse is the last plan's state of each node (nil for Build): what
	// the planner put in a node's state before stays in it (admission).
	reuse map[nodeKey]nodeState
	// waiting is what this plan's secondaries wait for, by controller ID.
	waiting map[string]waitEntry
}

// Build turns a snapshot into one SyncRequest per node, with generation
// and store revision = the snapshot's revision, naming the node and the
// agent it is bound to. It never fails: problems are reported in
// Plan.Problems and hold the nodes they may concern.
func Build(s *Snapshot) *Plan {
	plan, _, _ := build(s, nil, nil, nil, nil, nil)
	return plan
}

// build is Build, reusing from reuse the state of each node that dirty
// does not name (see Planner), ids (what checkUniqueIDs found) if it was
// found on the same objects as s's, and of checks (what checkDAs found)
// the exporters served and the verdict of every DA none of whose inputs
// changed; waiting is what the last plan's secondaries waited for. It
// returns the plan and what checkUniqueIDs and checkDAs found.
func build(s *Snapshot, reuse map[nodeKey]nodeState, dirty *dirtySet, ids *idFindings, checks *daChecks,
	waiting map[string]waitEntry) (*Plan, *idFindings, *daChecks) {
	p := &planner{s: s, problems: slices.Clone(s.Problems), hold: s.hold.clone(), listeners: map[string]*agentpb.Transport{},
		exps: map[string][]*vda.Exporter{}, reuse: reuse, waiting: make(map[string]waitEntry, len(waiting))}
	if checks != nil && sameMap(checks.from.Exps, s.Exps) {
		p.exps = checks.exps // servedExps reads the exporters only
	} else {
		p.servedExps()
	}
	p.indexVolumes()
	checks = p.checkDAs(checks)
	if ids == nil || !ids.of(s) && !p.extendIDs(ids) {
		ids = p.checkUniqueIDs()
	}
	p.problems = append(p.problems, ids.problems...)
	for _, name := range sortedKeys(ids.hold.nodes) {
		p.hold.node(name, ids.hold.nodes[name])
	}
	p.recheckWaiting(waiting, reuse, dirty)
	state := func(k nodeKey, id string, fresh func() nodeState) nodeState {
		if st, ok := reuse[k]; ok && !dirty.has(k, id) {
			return st
		}
		return fresh()
	}
	plan := &Plan{Revision: s.Revision, Nodes: map[string]*NodePlan{}}
	for _, name := range sortedKeys(s.DNs) {
		dn := s.DNs[name]
		np := &NodePlan{ID: dn.Spec.ID, Name: name, Address: cmp.Or(dn.Spec.Address, name), Role: RoleDN, Key: dn.Key, Held: p.hold.reason(name),
			AgentID: s.boundAgent(dn.Spec.ID)}
		if np.Held == nil {
			st := state(nodeKey{RoleDN, name}, dn.Spec.ID, func() nodeState { return nodeState{dn: p.dnState(dn.Spec)} })
			np.Request = p.request(np, st)
		}
		plan.Nodes[np.ID] = np
	}
	for _, name := range sortedKeys(s.CNs) {
		cn := s.CNs[name]
		np := &NodePlan{ID: cn.Spec.ID, Name: name, Address: cmp.Or(cn.Spec.Address, name), Role: RoleCN, Key: cn.Key, Held: p.hold.reason(name),
			AgentID: s.boundAgent(cn.Spec.ID)}
		if np.Held == nil {
			k := nodeKey{RoleCN, name}
			st := state(k, cn.Spec.ID, func() nodeState {
				if prev, ok := reuse[k]; ok && dirty.patchable(k, cn.Spec.ID) {
					return nodeState{cn: p.patchCnState(cn.Spec, prev.cn, dirty.das)}
				}
				return nodeState{cn: p.cnState(cn.Spec)}
			})
			np.Request = p.request(np, st)
		}
		if prev, dup := plan.Nodes[np.ID]; dup {
			err := fmt.Errorf("%w: node id %s is used by %s and %s", ErrMalformed, np.ID, prev.Key, np.Key)
			p.problems = append(p.problems, Problem{Key: cn.Key, Err: err})
			prev.Request, prev.Held, np.Request, np.Held = nil, err, nil, err
			np.ID = np.ID + "/" + RoleCN.String() // keep both visible, push neither
		}
		plan.Nodes[np.ID] = np
	}
	plan.Problems = p.problems
	plan.waiting = p.waiting
	return plan, ids, checks
}

// servedExps fills p.exps with the exporters the controllers serve: of
// exporters of one volume (stored by an older version), only the one
// created first (vda.SupersededExporters); the others are not pushed, so
// their subsystems go, and their status says why.
func (p *planner) servedExps() {
	recs := map[string][]vda.ExporterRecord{}
	for _, key := range sortedKeys(p.s.Exps) {
		o := p.s.Exps[key]
		recs[o.Spec.DAName] = append(recs[o.Spec.DAName], vda.ExporterRecord{Exporter: &o.Spec, CreateRevision: o.CreateRevision})
	}
	for da, rs := range recs {
		sup := vda.SupersededExporters(rs)
		for _, r := range rs {
			if _, ok := sup[r.Exporter.ID]; !ok {
				p.exps[da] = append(p.exps[da], r.Exporter)
			}
		}
	}
}

// request is np's request of state st: generation and store revision are
// the snapshot's revision (also when st is reused: agents refuse a
// generation older than one they applied, which another monitor may have
// pushed meanwhile), and it names the node and its agent.
func (p *planner) request(np *NodePlan, st nodeState) *agentpb.SyncRequest {
	req := &agentpb.SyncRequest{Generation: p.s.Revision, StoreRevision: p.s.Revision, NodeId: np.ID, NodeName: np.Name, AgentId: np.AgentID}
	if st.dn != nil {
		req.State = &agentpb.SyncRequest_Dn{Dn: st.dn}
	} else {
		req.State = &agentpb.SyncRequest_Cn{Cn: st.cn}
	}
	return req
}

// daChecks is what checkDAs found: the error of each DA whose references
// are broken (by name), the exporters served (p.exps), and the snapshot
// they were found on.
type daChecks struct {
	from *Snapshot
	errs map[string]error
	exps map[string][]*vda.Exporter
}

// checkDAs verifies every reference a DA makes and holds its nodes if one
// is broken. With prev (found on an earlier snapshot) and the same DNs,
// CNs, PDs and malformed keys, only the DAs that changed or whose
// exporters, snapshots or clones changed are checked again: a DA's check
// reads nothing else (checkDA). It returns what it found.
func (p *planner) checkDAs(prev *daChecks) *daChecks {
	c := &daChecks{from: p.s, errs: map[string]error{}, exps: p.exps}
	check := func(name string) {
		if da := p.s.DAs[name]; da != nil {
			if err := p.checkDA(&da.Spec); err != nil {
				c.errs[name] = fmt.Errorf("%w: %w", ErrMalformed, err)
			}
		}
	}
	if prev != nil && sameMap(prev.from.DNs, p.s.DNs) && sameMap(prev.from.CNs, p.s.CNs) &&
		sameMap(prev.from.PDs, p.s.PDs) && maps.Equal(prev.from.malformed, p.s.malformed) {
		dirty := map[string]bool{}
		eachChanged(prev.from.DAs, p.s.DAs, func(name string, _, _ *Object[vda.DiskArray]) { dirty[name] = true })
		eachChanged(prev.from.Exps, p.s.Exps, func(_ string, a, b *Object[vda.Exporter]) {
			for _, o := range []*Object[vda.Exporter]{a, b} {
				if o != nil {
					dirty[o.Spec.DAName] = true
				}
			}
		})
		eachChanged(prev.from.Snaps, p.s.Snaps, func(_ string, a, b *Object[vda.Snapshot]) {
			for _, o := range []*Object[vda.Snapshot]{a, b} {
				if o != nil {
					dirty[o.Spec.DAName] = true
				}
			}
		})
		eachChanged(prev.from.Clones, p.s.Clones, func(_ string, a, b *Object[vda.Clone]) {
			for _, o := range []*Object[vda.Clone]{a, b} {
				if o != nil {
					dirty[o.Spec.DAName] = true
				}
			}
		})
		for name, err := range prev.errs {
			if !dirty[name] {
				c.errs[name] = err
			}
		}
		for name := range dirty {
			check(name)
		}
	} else {
		for _, name := range p.sortedDAs() {
			check(name)
		}
	}
	for _, name := range sortedKeys(c.errs) {
		da := p.s.DAs[name]
		p.problems = append(p.problems, Problem{Key: da.Key, Err: c.errs[name]})
		p.hold.da(da.Spec, c.errs[name])
	}
	return c
}

func (p *planner) checkDA(da *vda.DiskArray) error {
	var errs []error
	for _, vd := range da.VDs {
		dn := p.s.DNs[vd.DNName]
		pd := p.s.PDs[vda.KeyPD(vd.DNName, vd.PDName)]
		switch {
		case dn == nil || dn.Spec.ID != vd.DNID:
			errs = append(errs, fmt.Errorf("vd %d: disk node %q (id %s) not found", vd.Idx, vd.DNName, vd.DNID))
		case p.s.malformed[vda.KeyPD(vd.DNName, vd.PDName)]:
			// Its DN is held; the controllers do not need the PD.
		case pd == nil || pd.Spec.ID != vd.PDID || pd.Spec.DNID != vd.DNID:
			errs = append(errs, fmt.Errorf("vd %d: physical disk %q (id %s) not found", vd.Idx, vd.PDName, vd.PDID))
		default:
			if _, err := p.listener(vd.DNName, dn.Spec.Listener); err != nil {
				errs = append(errs, fmt.Errorf("vd %d: disk node %q: %w", vd.Idx, vd.DNName, err))
			}
		}
	}
	for _, c := range da.Cntlrs {
		cn := p.s.CNs[c.CNName]
		if cn == nil || cn.Spec.ID != c.CNID {
			errs = append(errs, fmt.Errorf("controller %d: controller node %q (id %s) not found", c.Idx, c.CNName, c.CNID))
			continue
		}
		if c.ID != da.PrimaryCntlrID {
			continue
		}
		if _, err := p.listener(c.CNName, cn.Spec.Listener); err != nil {
			errs = append(errs, fmt.Errorf("primary controller node %q: %w", c.CNName, err))
		}
	}
	for _, exp := range p.exps[da.Name] {
		if exp.DAID != da.ID {
			errs = append(errs, fmt.Errorf("exporter %q belongs to disk array id %s", exp.Name, exp.DAID))
			continue
		}
		for _, c := range da.Cntlrs {
			if _, ok := portOf(exp, c.Idx); !ok {
				errs = append(errs, fmt.Errorf("exporter %q has no port for controller %d", exp.Name, c.Idx))
			}
		}
	}
	errs = append(errs, p.checkVolumes(da)...)
	return errors.Join(errs...)
}

// idFindings is what checkUniqueIDs found: problems and the nodes to
// hold, and the objects it looked at (a snapshot whose maps of them are
// the same finds the same).
type idFindings struct {
	problems []Problem
	hold     holds
	from     *Snapshot
	// When the check found no problem: the DA that has each ID ("" for
	// a PD's) and the IDs of each DA, so that a snapshot that adds, drops
	// or changes some DAs and exporters is checked by those alone
	// (extendIDs): with every create, each round's would otherwise go
	// through every ID of the cluster again. Nil after a problem.
	owner map[string]string
	byDA  map[string][]string
}

// of reports whether f holds for s: s holds the same PDs, exporters,
// snapshots and clones as the snapshot f was found on (by map identity:
// the snapshots of a SnapshotCache share a map until it is written), and
// the same DAs but for changes the check does not read (a failover's new
// primary and epoch, an initialization: not the DAs' names, IDs, VDs or
// controllers' IDs and nodes). If so, f is now of s.
func (f *idFindings) of(s *Snapshot) bool {
	a := f.from
	if !sameMap(a.PDs, s.PDs) || !sameMap(a.Exps, s.Exps) || !sameMap(a.Snaps, s.Snaps) || !sameMap(a.Clones, s.Clones) {
		return false
	}
	same := true
	eachChanged(a.DAs, s.DAs, func(_ string, old, cur *Object[vda.DiskArray]) {
		same = same && old != nil && cur != nil && sameIDs(&old.Spec, &cur.Spec)
	})
	if same {
		f.from = s
	}
	return same
}

// sameIDs reports whether a and b have the same name, IDs and nodes (what
// checkUniqueIDs reads of a DA, and holds).
func sameIDs(a, b *vda.DiskArray) bool {
	return a.Name == b.Name && a.ID == b.ID && slices.Equal(a.VDs, b.VDs) &&
		slices.EqualFunc(a.Cntlrs, b.Cntlrs, func(x, y vda.Cntlr) bool {
			return x.ID == y.ID && x.Idx == y.Idx && x.CNID == y.CNID && x.CNName == y.CNName
		})
}

// sameMap reports whether a and b are the same map (not merely equal).
func sameMap[V any](a, b map[string]V) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

// checkUniqueIDs finds the DAs whose IDs collide with another object's
// (agents name SPDK objects after IDs): they are held. It reads p.s's
// PDs, DAs and (through p.exps and p.vols) exporters, snapshots and
// clones only.
func (p *planner) checkUniqueIDs() *idFindings {
	f := &idFindings{hold: holds{nodes: map[string]error{}}, from: p.s}
	owner := map[string]string{} // id -> DA name ("" for PDs)
	dup := func(id, da string) {
		if prev, ok := owner[id]; ok {
			err := fmt.Errorf("%w: id %s is used twice", ErrMalformed, id)
			f.problems = append(f.problems, Problem{Key: vda.KeyDA(da), Err: err})
			for _, name := range []string{prev, da} {
				if o := p.s.DAs[name]; o != nil {
					f.hold.da(o.Spec, err)
				}
			}
			return
		}
		owner[id] = da
	}
	for _, key := range sortedKeys(p.s.PDs) {
		pd := p.s.PDs[key].Spec
		if _, ok := owner[pd.ID]; ok {
			err := fmt.Errorf("%w: id %s is used twice", ErrMalformed, pd.ID)
			f.problems = append(f.problems, Problem{Key: key, Err: err})
			f.hold.node(pd.DNName, err)
			continue
		}
		owner[pd.ID] = ""
	}
	byDA := make(map[string][]string, len(p.s.DAs))
	for _, name := range p.sortedDAs() {
		ids := p.idsOf(name)
		for _, id := range ids {
			dup(id, name)
		}
		byDA[name] = ids
	}
	if len(f.problems) == 0 {
		f.owner, f.byDA = owner, byDA
	}
	return f
}

// idsOf lists the IDs of DA name, its snapshots, clones and served
// exporters and their ports, in the order checkUniqueIDs checks them.
func (p *planner) idsOf(name string) []string {
	da := p.s.DAs[name].Spec
	ids := make([]string, 0, 1+len(da.VDs)+len(da.Cntlrs)+len(p.exps[name])*(1+len(da.Cntlrs)))
	ids = append(ids, da.ID)
	for _, vd := range da.VDs {
		ids = append(ids, vd.ID)
	}
	for _, c := range da.Cntlrs {
		ids = append(ids, c.ID)
	}
	ids = append(ids, p.volumeIDs(name)...)
	for _, exp := range p.exps[name] {
		ids = append(ids, exp.ID)
		for _, port := range exp.Ports {
			ids = append(ids, port.ID)
		}
	}
	return ids
}

// extendIDs brings f, which found no problem, up to p.s if p.s differs
// from the snapshot f was found on only in DAs and exporters (and in PDs
// by what the check does not read), by checking the IDs of the DAs that
// changed, or whose exporters did, against the others and each other. It
// returns false, and leaves f as it was, if it cannot or if an ID is used
// twice: checkUniqueIDs then finds what it finds on any snapshot. Without
// a collision the findings do not depend on the order of the check.
func (p *planner) extendIDs(f *idFindings) bool {
	a, s := f.from, p.s
	if f.owner == nil || !sameMap(a.Snaps, s.Snaps) || !sameMap(a.Clones, s.Clones) {
		return false
	}
	same := true
	eachChanged(a.PDs, s.PDs, func(_ string, old, cur *Object[vda.PhysicalDisk]) {
		same = same && old != nil && cur != nil && old.Spec.ID == cur.Spec.ID
	})
	if !same {
		return false
	}
	touched := map[string]bool{}
	eachChanged(a.DAs, s.DAs, func(name string, old, cur *Object[vda.DiskArray]) {
		if old == nil || cur == nil || !sameIDs(&old.Spec, &cur.Spec) {
			touched[name] = true
		}
	})
	eachChanged(a.Exps, s.Exps, func(_ string, old, cur *Object[vda.Exporter]) {
		for _, o := range []*Object[vda.Exporter]{old, cur} {
			if o != nil {
				touched[o.Spec.DAName] = true
			}
		}
	})
	fresh := make(map[string][]string, len(touched))
	seen := map[string]bool{}
	for name := range touched {
		if _, ok := s.DAs[name]; !ok {
			continue
		}
		ids := p.idsOf(name)
		for _, id := range ids {
			if o, ok := f.owner[id]; ok && (o == "" || !touched[o]) || seen[id] {
				return false // a collision: checked in full
			}
			seen[id] = true
		}
		fresh[name] = ids
	}
	for name := range touched {
		for _, id := range f.byDA[name] {
			if f.owner[id] == name {
				delete(f.owner, id)
			}
		}
		delete(f.byDA, name)
	}
	for name, ids := range fresh {
		for _, id := range ids {
			f.owner[id] = name
		}
		f.byDA[name] = ids
	}
	f.from = s
	return true
}

// listener returns a node's listener as an agent Transport.
func (p *planner) listener(node string, l nvmeof.TransportID) (*agentpb.Transport, error) {
	if t, ok := p.listeners[node]; ok {
		return t, nil
	}
	t, err := ListenerTransport(l)
	if err != nil {
		return nil, err
	}
	p.listeners[node] = t
	return t, nil
}

// ListenerTransport converts a node's Listener to the agent API's
// Transport, in SPDK's spelling ("TCP", "IPv4"). The listener must be
// valid and normalised, as nodes store it (a record with an empty one
// decodes to the zero TransportID, which is refused here).
func ListenerTransport(tid nvmeof.TransportID) (*agentpb.Transport, error) {
	if err := tid.Validate(); err != nil {
		return nil, err
	}
	spell := map[string]string{nvmeof.TrTypeTCP: "TCP", nvmeof.TrTypeRDMA: "RDMA",
		nvmeof.AdrFamIPv4: "IPv4", nvmeof.AdrFamIPv6: "IPv6"}
	return &agentpb.Transport{Trtype: spell[tid.TrType], Adrfam: spell[tid.AdrFam], Traddr: tid.TrAddr,
		Trsvcid: tid.TrSvcID}, nil
}

// sortedDAs returns the DAs' names, sorted once per plan: every node's
// state reads them.
func (p *planner) sortedDAs() []string {
	if p.das == nil {
		p.das = sortedKeys(p.s.DAs)
	}
	return p.das
}

// nodeObjects is what nodeIndex lists for one node ID.
type nodeObjects struct {
	vdDAs, cntlrDAs, pds []string
}

// nodeIndex returns the objects on the node of id, grouping every DA and
// PD by node once per plan: otherwise each node's state would scan them all.
func (p *planner) nodeIndex(id string) *nodeObjects {
	if p.on == nil {
		p.on = map[string]*nodeObjects{}
		of := func(id string) *nodeObjects {
			o := p.on[id]
			if o == nil {
				o = &nodeObjects{}
				p.on[id] = o
			}
			return o
		}
		add := func(list *[]string, name string) {
			if n := len(*list); n == 0 || (*list)[n-1] != name {
				*list = append(*list, name)
			}
		}
		for _, name := range p.sortedDAs() {
			da := &p.s.DAs[name].Spec
			for _, vd := range da.VDs {
				o := of(vd.DNID)
				add(&o.vdDAs, name)
			}
			for _, c := range da.Cntlrs {
				o := of(c.CNID)
				add(&o.cntlrDAs, name)
			}
		}
		for _, key := range sortedKeys(p.s.PDs) {
			o := of(p.s.PDs[key].Spec.DNID)
			o.pds = append(o.pds, key)
		}
	}
	if o := p.on[id]; o != nil {
		return o
	}
	return &nodeObjects{}
}

func (p *planner) dnState(dn vda.DiskNode) *agentpb.DnState {
	vdsByPD := map[string][]*agentpb.VdSpec{}
	on := p.nodeIndex(dn.ID)
	for _, name := range on.vdDAs {
		da := p.s.DAs[name].Spec
		for _, vd := range da.VDs {
			if vd.DNID != dn.ID {
				continue
			}
			vdsByPD[vd.PDID] = append(vdsByPD[vd.PDID], &agentpb.VdSpec{Id: vd.ID, DaId: da.ID, Epoch: da.Epoch,
				SizeBytes: vd.SizeBytes, HostNqn: nvmeof.PrimaryHostNQN(da.PrimaryCntlrID, uint64(da.Epoch)).String()})
		}
	}
	st := &agentpb.DnState{}
	for _, key := range on.pds {
		pd := p.s.PDs[key].Spec
		if pd.DNID != dn.ID || pd.DNName != dn.Name {
			continue
		}
		spec := &agentpb.PdSpec{Id: pd.ID, Vds: vdsByPD[pd.ID]}
		switch pd.Conf.Type {
		case vda.PDMalloc:
			spec.Conf = &agentpb.PdSpec_Malloc{Malloc: &agentpb.MallocConf{SizeBytes: pd.Conf.SizeBytes}}
		case vda.PDAio:
			spec.Conf = &agentpb.PdSpec_Aio{Aio: &agentpb.AioConf{Filename: pd.Conf.Filename, Force: pd.Force}}
		case vda.PDNVMe:
			spec.Conf = &agentpb.PdSpec_Nvme{Nvme: &agentpb.NvmeConf{Traddr: pd.Conf.TrAddr}}
		}
		sort.Slice(spec.Vds, func(i, j int) bool { return spec.Vds[i].Id < spec.Vds[j].Id })
		st.Pds = append(st.Pds, spec)
	}
	sort.Slice(st.Pds, func(i, j int) bool { return st.Pds[i].Id < st.Pds[j].Id })
	return st
}

func (p *planner) cnState(cn vda.ControllerNode) *agentpb.CnState {
	st := &agentpb.CnState{}
	prev := p.reuse[nodeKey{RoleCN, cn.Name}].cn
	for _, name := range p.nodeIndex(cn.ID).cntlrDAs {
		o := p.s.DAs[name]
		da := o.Spec
		for _, c := range da.Cntlrs {
			if c.CNID != cn.ID || c.CNName != cn.Name {
				continue
			}
			if in, exps := p.admission(o, c, hadSpec(prev, c.ID)); in {
				st.Cntlrs = append(st.Cntlrs, p.cntlrSpec(&da, c, exps))
			}
		}
	}
	sort.Slice(st.Cntlrs, func(i, j int) bool { return st.Cntlrs[i].CntlrId < st.Cntlrs[j].CntlrId })
	return st
}

// patchCnState is cnState, taking the controller specs of the DAs that
// changed from nothing they are made of (not in das) from prev, the CN's
// state in the last plan: a DA marked initialized does not rebuild the
// specs of every other DA on its CNs.
func (p *planner) patchCnState(cn vda.ControllerNode, prev *agentpb.CnState, das map[string]bool) *agentpb.CnState {
	old := make(map[string]*agentpb.CntlrSpec, len(prev.GetCntlrs()))
	for _, c := range prev.GetCntlrs() {
		old[c.CntlrId] = c
	}
	st := &agentpb.CnState{}
	for _, name := range p.nodeIndex(cn.ID).cntlrDAs {
		o := p.s.DAs[name]
		da := o.Spec
		for _, c := range da.Cntlrs {
			if c.CNID != cn.ID || c.CNName != cn.Name {
				continue
			}
			if spec, ok := old[c.ID]; ok && !das[name] {
				st.Cntlrs = append(st.Cntlrs, spec)
			} else if in, exps := p.admission(o, c, old[c.ID]); in {
				st.Cntlrs = append(st.Cntlrs, p.cntlrSpec(&da, c, exps))
			}
		}
	}
	sort.Slice(st.Cntlrs, func(i, j int) bool { return st.Cntlrs[i].CntlrId < st.Cntlrs[j].CntlrId })
	return st
}

// cntlrSpec is the spec of DA da's controller c exporting exps (of the
// DA's exporters, those admitted: see admission).
func (p *planner) cntlrSpec(da *vda.DiskArray, c vda.Cntlr, exps []*vda.Exporter) *agentpb.CntlrSpec {
	primary, _ := da.Primary()
	spec := &agentpb.CntlrSpec{CntlrId: c.ID, CntlrIdx: uint32(c.Idx), Primary: c.ID == primary.ID, Epoch: da.Epoch,
		Da: &agentpb.DaSpec{Id: da.ID, SizeBytes: da.SizeBytes, ClusterBytes: da.ClusterBytes,
			StripeSizeKb: uint32(da.StripeSizeKB), Initialized: da.Initialized, Qos: qosSpec(da.QoS)}}
	var secondaries []string
	for _, o := range sortedCntlrs(da.Cntlrs) {
		if o.ID != primary.ID {
			secondaries = append(secondaries, nvmeof.HostNQN(o.ID).String())
		}
	}
	if spec.Primary {
		vds := slices.Clone(da.VDs)
		sort.Slice(vds, func(i, j int) bool { return vds[i].Idx < vds[j].Idx })
		for _, vd := range vds {
			l, _ := p.listener(vd.DNName, p.s.DNs[vd.DNName].Spec.Listener) // checked by checkDA
			spec.Vds = append(spec.Vds, &agentpb.VdRef{Id: vd.ID, Idx: uint32(vd.Idx), DnListener: l})
		}
	} else {
		spec.PrimaryCntlrId = primary.ID
		spec.PrimaryListener, _ = p.listener(primary.CNName, p.s.CNs[primary.CNName].Spec.Listener)
	}
	for _, exp := range exps {
		port, _ := portOf(exp, c.Idx) // checked by checkDA
		e := &agentpb.ExpSpec{Id: exp.ID, PortId: port.ID, Nqn: exp.NQN, InitiatorNqn: exp.InitiatorNQN, HostNqns: slices.Clone(exp.HostNQNs)}
		if spec.Primary {
			e.SecondaryHostNqns = slices.Clone(secondaries)
		}
		expVolume(exp, e, spec.Primary)
		spec.Exps = append(spec.Exps, e)
	}
	p.addVolumes(da, spec)
	return spec
}

func portOf(exp *vda.Exporter, idx int) (vda.ExpPort, bool) {
	for _, p := range exp.Ports {
		if p.CntlrIdx == idx {
			return p, true
		}
	}
	return vda.ExpPort{}, false
}

func sortedCntlrs(cs []vda.Cntlr) []vda.Cntlr {
	out := slices.Clone(cs)
	sort.Slice(out, func(i, j int) bool { return out[i].Idx < out[j].Idx })
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, strings.Compare)
	return keys
}

// qosSpec is a DA's QoS limits as agents take them (nil: none).
func qosSpec(q vda.QoS) *agentpb.QosSpec {
	if q.IsZero() {
		return nil
	}
	return &agentpb.QosSpec{RwIosPerSec: q.RWIOsPerSec, RwMbytesPerSec: q.RWMBytesPerSec,
		RMbytesPerSec: q.ReadMBytesPerSec, WMbytesPerSec: q.WriteMBytesPerSec}
}

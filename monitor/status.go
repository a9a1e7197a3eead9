package monitor

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/store"
)

// Reasons a status write is skipped; none is an error.
var (
	errUnchanged   = errors.New("monitor: status unchanged")
	errSpecChanged = errors.New("monitor: spec changed since the snapshot")
	errSpecGone    = errors.New("monitor: spec deleted")
)

// statusEdit changes part of the status of the object at specKey. Guard,
// if not 0, is the spec's ModRevision the edit was derived from: if the
// spec changed since, the edit is dropped, so an old report never lands on
// newer desired state. Edits are merged into what is stored (other
// monitors write other parts of the same status).
type statusEdit struct {
	specKey string
	guard   int64
	// edit changes the status. Nil for an edit that only sets parts and
	// perhaps the applied size, which are then in parts and size, as data:
	// a node reports every object on every push, and a write-back tells
	// which of those change nothing without applying them to a copy of
	// each status (see unchanged).
	edit  func(st *vda.Status)
	parts []part // by ID; of two of one ID the later wins
	size  uint64 // AppliedSizeBytes, unless 0
	// Decoded specs from the snapshot the edit was derived from, so that a
	// write need not decode what the store holds when it is the same
	// revision: da (at daRev) for the edits of a DA and of an exporter,
	// exp (at guard) for an exporter's. Nil: decoded from the store.
	da    *vda.DiskArray
	daRev int64
	exp   *vda.Exporter
}

// writeStatus writes one edit as writeBatch does: it reads (or assumes)
// the spec, guarding it, and the stored status, applies the edit,
// recomputes the overall health of a DA or exporter from its parts, and
// writes only if something changed. It returns errSpecChanged if the guard
// dropped the edit.
func (m *Monitor) writeStatus(ctx context.Context, e statusEdit) error {
	dropped, err := m.writeBatch(ctx, []statusEdit{e})
	if err == nil && len(dropped) > 0 {
		return errSpecChanged
	}
	return err
}

// applyEdit is writeBatch's transaction body for one edit: it buffers the status write
// of e in tx, or returns errUnchanged, errSpecGone or errSpecChanged.
// known holds statuses (by status key) that tx assumed (see assume);
// applyEdit drops the one it writes, which tx then holds, and puts it in
// wrote.
func (m *Monitor) applyEdit(tx *store.Tx, e statusEdit, known, wrote map[string]vda.Status) error {
	spec, err := tx.Get(e.specKey)
	if errors.Is(err, store.ErrNotFound) {
		return errSpecGone
	}
	if err != nil {
		return err
	}
	if e.guard != 0 && spec.ModRevision != e.guard {
		return errSpecChanged
	}
	stKey := vda.KeyStatus(e.specKey)
	cur, ok := known[stKey]
	if !ok {
		cur = readStatus(tx, stKey)
	}
	next := cloneStatus(cur)
	e.apply(&next)
	if err := recompute(tx, e, spec, &next); err != nil {
		return err
	}
	if statusEqual(cur, next) {
		return errUnchanged
	}
	next.UpdatedAt = m.cfg.Now().UTC()
	b, err := json.Marshal(next)
	if err != nil {
		return fmt.Errorf("monitor: encode status of %s: %w", e.specKey, err)
	}
	tx.Put(stKey, b)
	delete(known, stKey)
	wrote[stKey] = next
	m.log.Trace("status", "key", e.specKey, "status", string(b))
	return nil
}

// readStatus returns the stored status (empty if absent or unreadable: the
// monitor owns statuses and rewrites a broken one).
func readStatus(tx *store.Tx, key string) vda.Status {
	var st vda.Status
	kv, err := tx.Get(key)
	if err == nil {
		if json.Unmarshal(kv.Value, &st) != nil {
			st = vda.Status{}
		}
	}
	return st
}

// recompute sets a DA's or exporter's overall health from its parts. The
// specs are e's decoded ones when the store holds the same revision.
func recompute(tx *store.Tx, e statusEdit, spec store.KV, st *vda.Status) error {
	switch {
	case strings.HasPrefix(e.specKey, vda.PrefixDA):
		da, err := decodeDA(spec, e.da, e.daRev)
		if err != nil {
			return err
		}
		daOverall(*da, st)
	case strings.HasPrefix(e.specKey, vda.PrefixExp):
		exp := e.exp
		if exp == nil || e.guard == 0 || spec.ModRevision != e.guard {
			exp = new(vda.Exporter)
			if json.Unmarshal(spec.Value, exp) != nil {
				return errSpecChanged
			}
		}
		kv, err := tx.Get(vda.KeyDA(exp.DAName))
		if err != nil {
			return errSpecGone
		}
		da, err := decodeDA(kv, e.da, e.daRev)
		if err != nil {
			return err
		}
		expOverall(*exp, *da, st)
	}
	return nil
}

// decodeDA is known if kv is at revision rev, else kv decoded.
func decodeDA(kv store.KV, known *vda.DiskArray, rev int64) (*vda.DiskArray, error) {
	if known != nil && rev != 0 && kv.ModRevision == rev && known.Name == strings.TrimPrefix(kv.Key, vda.PrefixDA) {
		return known, nil
	}
	da := new(vda.DiskArray)
	if json.Unmarshal(kv.Value, da) != nil {
		return nil, errSpecChanged // malformed: the planner reports it
	}
	return da, nil
}

// daOverall: failed when the primary controller is failed (its node
// failed), degraded when any VD or controller is not healthy, healthy when
// every part is, unknown while some part was never reported. Parts of
// objects the DA no longer has are dropped.
func daOverall(da vda.DiskArray, st *vda.Status) {
	want := map[string]string{}
	for _, vd := range da.VDs {
		want[vd.ID] = fmt.Sprintf("vd %d", vd.Idx)
	}
	for _, c := range da.Cntlrs {
		want[c.ID] = fmt.Sprintf("controller %d", c.Idx)
	}
	primary, _ := da.Primary()
	*st = st.AtEpoch(da.Epoch)
	overall(st, want, primary.ID)
}

// expOverall is daOverall for an exporter's ports; the port on the
// primary controller decides failed.
func expOverall(exp vda.Exporter, da vda.DiskArray, st *vda.Status) {
	primary, _ := da.Primary()
	want := map[string]string{}
	primaryPort := ""
	for _, p := range exp.Ports {
		want[p.ID] = fmt.Sprintf("controller %d", p.CntlrIdx)
		if p.CntlrIdx == primary.Idx {
			primaryPort = p.ID
		}
	}
	*st = st.AtEpoch(da.Epoch)
	overall(st, want, primaryPort)
}

func overall(st *vda.Status, want map[string]string, primary string) {
	maps.DeleteFunc(st.Parts, func(id string, _ vda.Status) bool { _, ok := want[id]; return !ok })
	missing, bad := false, ""
	for _, id := range sortedKeys(want) {
		p, ok := st.Parts[id]
		switch {
		case !ok || p.Health == vda.HealthUnknown:
			missing = true
		case p.Health != vda.HealthHealthy && bad == "":
			bad = want[id] + ": " + p.ErrorMsg
		}
	}
	p := st.Parts[primary]
	switch {
	case p.Health == vda.HealthFailed:
		st.Health, st.ErrorMsg = vda.HealthFailed, "primary "+want[primary]+": "+p.ErrorMsg
	case bad != "":
		st.Health, st.ErrorMsg = vda.HealthDegraded, bad
	case missing:
		st.Health, st.ErrorMsg = vda.HealthUnknown, ""
	default:
		st.Health, st.ErrorMsg = vda.HealthHealthy, ""
	}
	if len(st.Parts) == 0 {
		st.Parts = nil
	}
}

func cloneStatus(s vda.Status) vda.Status {
	s.Parts = maps.Clone(s.Parts)
	return s
}

// statusEqual compares two statuses, ignoring UpdatedAt.
func statusEqual(a, b vda.Status) bool {
	if a.Health != b.Health || a.ErrorMsg != b.ErrorMsg || a.TotalBytes != b.TotalBytes ||
		a.FreeBytes != b.FreeBytes || a.AppliedSizeBytes != b.AppliedSizeBytes || a.Inflated != b.Inflated ||
		a.SecondariesOnly != b.SecondariesOnly || len(a.Parts) != len(b.Parts) {
		return false
	}
	for id, pa := range a.Parts {
		pb, ok := b.Parts[id]
		if !ok || !statusEqual(pa, pb) {
			return false
		}
	}
	return true
}

// partFrom turns an agent's object status into a part status: healthy, or
// degraded with the agent's error (the node answers; the object has a
// problem). Failed is kept for objects whose node failed.
func partFrom(o *agentpb.ObjectStatus) vda.Status {
	if o.GetOk() {
		return vda.Status{Health: vda.HealthHealthy}
	}
	msg := o.GetError()
	if msg == "" {
		msg = "not ready"
	}
	return vda.Status{Health: vda.HealthDegraded, ErrorMsg: msg, SecondariesOnly: o.GetSecondariesOnly()}
}

// part is one part of a status that an edit sets.
type part struct {
	id string
	st vda.Status
}

// partEdit is the edit of specKey that sets part id to p.
func partEdit(specKey string, guard int64, id string, p vda.Status) statusEdit {
	return statusEdit{specKey: specKey, guard: guard, parts: []part{{id, p}}}
}

// partArena hands out the parts of partEdits from one array. Each edit's
// slice is capped at its one part: merge appends to a copy, never into the
// next edit's part.
type partArena []part

// edit is partEdit with its part in a.
func (a *partArena) edit(specKey string, guard int64, id string, p vda.Status) statusEdit {
	*a = append(*a, part{id, p})
	n := len(*a)
	return statusEdit{specKey: specKey, guard: guard, parts: (*a)[n-1 : n : n]}
}

// apply applies e to st.
func (e *statusEdit) apply(st *vda.Status) {
	if e.edit != nil {
		e.edit(st)
		return
	}
	for _, p := range e.parts {
		if st.Parts == nil {
			st.Parts = make(map[string]vda.Status, len(e.parts))
		}
		st.Parts[p.id] = p.st
	}
	if e.size != 0 {
		st.AppliedSizeBytes = e.size
	}
}

// unchanged reports whether applying e to st leaves it as it is
// (sameStatus), without a copy of st when e's parts say what it does.
func (e *statusEdit) unchanged(st vda.Status) bool {
	if e.edit != nil {
		next := cloneStatus(st)
		e.edit(&next)
		return sameStatus(st, next)
	}
	for i, p := range e.parts {
		if slices.ContainsFunc(e.parts[i+1:], func(later part) bool { return later.id == p.id }) {
			continue // the later one is what is set
		}
		if q, ok := st.Parts[p.id]; !ok || !sameStatus(q, p.st) {
			return false
		}
	}
	return e.size == 0 || st.AppliedSizeBytes == e.size
}

// is reports whether e applied to an empty status gives st (sameStatus).
func (e *statusEdit) is(st vda.Status) bool {
	if e.edit != nil || len(e.parts) != 1 {
		var part vda.Status
		e.apply(&part)
		return sameStatus(st, part)
	}
	p := e.parts[0]
	q, ok := st.Parts[p.id]
	top := st
	top.Parts = nil
	return ok && len(st.Parts) == 1 && sameStatus(q, p.st) && sameStatus(top, vda.Status{AppliedSizeBytes: e.size})
}

func setPart(id string, p vda.Status) func(*vda.Status) {
	return func(st *vda.Status) {
		if st.Parts == nil {
			st.Parts = map[string]vda.Status{}
		}
		st.Parts[id] = p
	}
}

// index maps the IDs agents report to the spec keys whose status they
// belong to.
type index struct {
	pd    map[string]string // PD ID -> PD key
	vd    map[string]string // VD ID -> DA name
	cntlr map[string]string // controller ID -> DA name
	port  map[string]string // exporter port ID -> exporter key
	snap  map[string]string // snapshot ID -> snapshot key
	clone map[string]string // clone ID -> clone key
}

func (s *Snapshot) index() *index {
	s.indexOnce.Do(func() {
		ix := &index{pd: map[string]string{}, vd: map[string]string{}, cntlr: map[string]string{}, port: map[string]string{},
			snap: map[string]string{}, clone: map[string]string{}}
		for key, sn := range s.Snaps {
			ix.snap[sn.Spec.ID] = key
		}
		for key, cl := range s.Clones {
			ix.clone[cl.Spec.ID] = key
		}
		for key, pd := range s.PDs {
			ix.pd[pd.Spec.ID] = key
		}
		for name, da := range s.DAs {
			for _, vd := range da.Spec.VDs {
				ix.vd[vd.ID] = name
			}
			for _, c := range da.Spec.Cntlrs {
				ix.cntlr[c.ID] = name
			}
		}
		for key, exp := range s.Exps {
			for _, p := range exp.Spec.Ports {
				ix.port[p.ID] = key
			}
		}
		s.ix = ix
	})
	return s.ix
}

// reportEdits turns a Sync reply into status edits, each guarded by the
// revision of the spec in the snapshot the request was built from, and
// lists the DAs whose primary on this node reported its lvstore created.
func reportEdits(s *Snapshot, np *NodePlan, reply *agentpb.SyncReply) (edits []statusEdit, initialized []string) {
	ix := s.index()
	// About one edit and one part per object, each allocated once here
	// instead of one by one: a node reports every object on every push.
	edits = make([]statusEdit, 0, len(reply.GetObjects()))
	parts := make(partArena, 0, len(reply.GetObjects()))
	for _, o := range reply.GetObjects() {
		switch o.GetKind() {
		case agentpb.Kind_KIND_PD:
			key, ok := ix.pd[o.GetId()]
			if !ok || np.Role != RoleDN || s.PDs[key].Spec.DNID != np.ID {
				continue
			}
			part := partFrom(o)
			edits = append(edits, statusEdit{specKey: key, guard: s.PDs[key].ModRevision, edit: func(st *vda.Status) {
				st.Health, st.ErrorMsg = part.Health, part.ErrorMsg
				st.TotalBytes, st.FreeBytes = o.GetTotalBytes(), o.GetFreeBytes()
			}})
		case agentpb.Kind_KIND_VD:
			if da, ok := s.DAs[ix.vd[o.GetId()]]; ok && np.Role == RoleDN {
				e := parts.edit(da.Key, da.ModRevision, o.GetId(), partFrom(o))
				e.da, e.daRev = &da.Spec, da.ModRevision
				edits = append(edits, e)
			}
		case agentpb.Kind_KIND_CNTLR:
			da, ok := s.DAs[ix.cntlr[o.GetId()]]
			if !ok || np.Role != RoleCN {
				continue
			}
			part := partFrom(o)
			part.Epoch = da.Spec.Epoch // what the node was told
			e := parts.edit(da.Key, da.ModRevision, o.GetId(), part)
			e.size = appliedSize(da.Spec, np, o)
			e.da, e.daRev = &da.Spec, da.ModRevision
			edits = append(edits, e)
			if o.GetDaInitialized() && o.GetId() == da.Spec.PrimaryCntlrID && !da.Spec.Initialized {
				initialized = append(initialized, da.Spec.Name)
			}
		case agentpb.Kind_KIND_EXP_PORT:
			if exp, ok := s.Exps[ix.port[o.GetId()]]; ok && np.Role == RoleCN {
				part := partFrom(o)
				da, ok := s.DAs[exp.Spec.DAName]
				if ok {
					part.Epoch = da.Spec.Epoch
				}
				e := parts.edit(exp.Key, exp.ModRevision, o.GetId(), part)
				e.exp = &exp.Spec
				if ok {
					e.da, e.daRev = &da.Spec, da.ModRevision
				}
				edits = append(edits, e)
			}
		case agentpb.Kind_KIND_SNAP, agentpb.Kind_KIND_CLONE:
			if e, ok := volumeEdit(s, np, o); ok {
				edits = append(edits, e)
			}
		}
	}
	return edits, initialized
}

// appliedSize is the DA volume size a controller report carries when it
// comes from the DA's primary controller on the primary's node (0: none).
// The edit it goes into is guarded by the DA's revision in the snapshot:
// dropped if the DA changed since (a new size, primary or epoch), so the
// recorded size is the current primary's at the current epoch, after it
// applied the current record. 0 (unknown, or an older agent) keeps what
// is recorded: a resync that reports the same size writes nothing.
func appliedSize(da vda.DiskArray, np *NodePlan, o *agentpb.ObjectStatus) uint64 {
	primary, ok := da.Primary()
	if !ok || o.GetId() != primary.ID || primary.CNID != np.ID || !o.GetDaInitialized() {
		return 0
	}
	return o.GetSizeBytes()
}

// markInitialized sets DiskArray.Initialized on the named DAs with a
// compare-and-swap on each DA key (the flag only ever goes from false to
// true), many DAs per transaction: every DA write wakes every monitor. A DA
// whose primary or epoch changed since s is left alone.
func (m *Monitor) markInitialized(ctx context.Context, s *Snapshot, names []string) error {
	var errs []error
	for len(names) > 0 {
		n := min(len(names), store.MaxTxnOps)
		errs = append(errs, m.markInitializedBatch(ctx, s, names[:n]))
		names = names[n:]
	}
	return errors.Join(errs...)
}

func (m *Monitor) markInitializedBatch(ctx context.Context, s *Snapshot, names []string) error {
	names = slices.DeleteFunc(slices.Clone(names), func(name string) bool {
		// The flag never goes back to false: a DA the cache has seen
		// marked is marked in the store (each report of its primary
		// asks until the snapshots show it).
		da, ok := m.snaps.diskArray(name)
		return ok && da.Spec.Initialized && da.Spec.ID == s.DAs[name].Spec.ID
	})
	if len(names) == 0 {
		return nil
	}
	var marked []string
	err := store.Update(ctx, m.cfg.Store, func(tx *store.Tx) error {
		marked = marked[:0]
		assumed := false
		for _, name := range names {
			da, fromCache, err := m.daToMark(tx, name)
			assumed = assumed || fromCache
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			was := s.DAs[name].Spec // what the reporting primary was sent
			if da == nil || da.Initialized || da.ID != was.ID ||
				da.PrimaryCntlrID != was.PrimaryCntlrID || da.Epoch != was.Epoch {
				// Only the current primary, at the epoch it reported for,
				// initializes: a deposed primary's report is stale.
				continue
			}
			da.Initialized = true
			b, err := json.Marshal(da)
			if err != nil {
				return err
			}
			tx.Put(vda.KeyDA(name), b)
			marked = append(marked, name)
		}
		if len(marked) == 0 && !assumed {
			return errUnchanged
		}
		return nil // with assumed reads, even a commit without writes: it checks them
	})
	if errors.Is(err, errUnchanged) || err == nil && len(marked) == 0 {
		return nil
	}
	if err != nil {
		return fmt.Errorf("monitor: mark disk arrays initialized: %w", err)
	}
	m.log.Info("disk arrays initialized", "count", len(marked))
	m.log.Debug("disk arrays initialized", "das", marked)
	return nil
}

// daToMark returns a copy of the DA named name as tx sees it, to be marked
// initialized: on a first attempt the snapshot cache's copy, assumed
// (fromCache; the commit checks it, a later attempt reads the store), else
// the stored one decoded (nil if it does not decode).
func (m *Monitor) daToMark(tx *store.Tx, name string) (da *vda.DiskArray, fromCache bool, _ error) {
	if o, ok := m.snaps.diskArray(name); ok && tx.Attempt() == 0 {
		tx.Assume(store.KV{Key: o.Key, ModRevision: o.ModRevision})
		cp := o.Spec
		return &cp, true, nil
	}
	kv, err := tx.Get(vda.KeyDA(name))
	if err != nil {
		return nil, false, err
	}
	da = new(vda.DiskArray)
	if json.Unmarshal(kv.Value, da) != nil {
		return nil, false, nil
	}
	return da, false, nil
}

// groupEdits merges the edits of one key into one, so that they do not
// conflict with each other.
func groupEdits(edits []statusEdit) []statusEdit {
	at := make(map[string]int, len(edits))
	out := make([]statusEdit, 0, len(edits))
	for _, e := range edits {
		i, ok := at[e.specKey]
		if !ok || out[i].guard != e.guard {
			at[e.specKey] = len(out)
			out = append(out, e)
			continue
		}
		out[i] = merge(out[i], e)
	}
	return out
}

// merge is a then b, as one edit.
func merge(a, b statusEdit) statusEdit {
	if a.edit == nil && b.edit == nil {
		a.parts = append(slices.Clip(a.parts), b.parts...)
		a.size = cmp.Or(b.size, a.size)
		return a
	}
	first, then := a, b
	a.edit = func(st *vda.Status) { first.apply(st); then.apply(st) }
	a.parts, a.size = nil, 0
	return a
}

// statusBatch is the most edits writeAll commits in one transaction: each
// reads at most three keys (spec, status, an exporter's DA) and writes one,
// within store.MaxTxnOps.
const statusBatch = 32

// writeAll applies edits in transactions of up to statusBatch edits each,
// with at most StatusConcurrency transactions in flight, and joins their
// errors. dropped holds the spec keys of the edits dropped because their
// spec changed since the snapshot. A node reports every object on every
// push: one transaction per object cost a commit (and a watch event batch
// for every monitor) each.
func (m *Monitor) writeAll(ctx context.Context, edits []statusEdit) (dropped map[string]bool, _ error) {
	n := max(1, m.cfg.StatusConcurrency)
	sem := make(chan struct{}, n)
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	grouped := groupEdits(edits)
	for len(grouped) > 0 {
		batch := grouped[:min(len(grouped), statusBatch)]
		grouped = grouped[len(batch):]
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			keys, err := m.writeBatch(ctx, batch)
			mu.Lock()
			defer mu.Unlock()
			for _, k := range keys {
				if dropped == nil {
					dropped = map[string]bool{}
				}
				dropped[k] = true
			}
			if err != nil {
				errs = append(errs, err)
			}
		}()
	}
	wg.Wait()
	return dropped, errors.Join(errs...)
}

// assume makes tx take, for each edit of batch, what the monitor already
// holds instead of reading it from the store: on a first attempt the spec
// at the revision the edit was derived from (when the edit carries that
// spec decoded, so nothing needs its value), and the status as the
// snapshot cache has it, on a later attempt only if the cache has a newer
// copy than the one tried (tried: by status key, the revisions assumed so
// far). It returns the statuses assumed by status key, nil if it assumed
// nothing at all. The transaction guards them as it guards reads: if a
// copy was stale its commit fails and the next attempt reads the store or
// a newer copy, never the same one, so the attempts end as Update's
// always do. A node reports every object on every push, so this spares
// two or three reads per edit (on etcd, 90 per DA created) and the
// decoding of each status; the commit checks them all at once.
func (m *Monitor) assume(tx *store.Tx, batch []statusEdit, tried map[string]int64) map[string]vda.Status {
	known := make(map[string]vda.Status, len(batch))
	assumed := false
	take := func(key string, rev int64) {
		tx.Assume(store.KV{Key: key, ModRevision: rev})
		assumed = true
	}
	for _, e := range batch {
		if e.guard != 0 && tx.Attempt() == 0 {
			switch {
			case strings.HasPrefix(e.specKey, vda.PrefixDA):
				if e.da != nil && e.daRev == e.guard && vda.KeyDA(e.da.Name) == e.specKey {
					take(e.specKey, e.guard)
				}
			case strings.HasPrefix(e.specKey, vda.PrefixExp):
				if e.exp != nil {
					take(e.specKey, e.guard)
					if e.da != nil && e.daRev != 0 && e.da.Name == e.exp.DAName {
						take(vda.KeyDA(e.da.Name), e.daRev)
					}
				}
			default: // recompute reads no other spec's value
				take(e.specKey, e.guard)
			}
		}
		stKey := vda.KeyStatus(e.specKey)
		if _, ok := known[stKey]; ok {
			continue
		}
		st, rev, ok := m.snaps.status(e.specKey)
		if w, mine := m.written.get(stKey); mine && (!ok || w.rev > rev) {
			st, rev, ok = w.st, w.rev, true // this monitor wrote it since
		}
		if prev, seen := tried[stKey]; !ok || seen && rev <= prev {
			continue // read from the store
		}
		tried[stKey] = rev
		take(stKey, rev)
		known[stKey] = st
	}
	if !assumed {
		return nil
	}
	return known
}

// current returns the edits of batch whose spec the snapshot cache has
// not seen change since the revision the edit was derived from (its
// guard), and the spec keys of the others: those are dropped as a read in
// the transaction would drop them (revisions only grow, so the store's is
// not the guard either), without a commit bound to fail on a guard that
// is already stale, and the reads of every other edit of the batch again.
// An exporter's edit takes the cache's copy of its DA when that is newer
// than the edit's: it recomputes the exporter's health from the DA as it
// is, which a retry after the commit failed on the older copy would read.
func (m *Monitor) current(batch []statusEdit) (live []statusEdit, moved []string) {
	live = make([]statusEdit, 0, len(batch))
	for _, e := range batch {
		if e.guard != 0 {
			if rev, ok := m.snaps.specRevision(e.specKey); ok && rev > e.guard {
				moved = append(moved, e.specKey)
				continue
			}
		}
		if e.exp != nil && e.da != nil && strings.HasPrefix(e.specKey, vda.PrefixExp) {
			if da, ok := m.snaps.diskArray(e.da.Name); ok && da.ModRevision > e.daRev {
				e.da, e.daRev = &da.Spec, da.ModRevision
			}
		}
		live = append(live, e)
	}
	return live, moved
}

// writeBatch is writeStatus for several edits in one transaction: an edit
// whose spec changed or is gone is left out (dropped names the spec keys of
// the former), the others are committed together.
func (m *Monitor) writeBatch(ctx context.Context, batch []statusEdit) (dropped []string, _ error) {
	var failed string
	tried := map[string]int64{}
	keys := make([]string, len(batch))
	for i, e := range batch {
		keys[i] = vda.KeyStatus(e.specKey)
	}
	defer m.written.lock(keys)()
	var wrote map[string]vda.Status
	rev, err := store.UpdateRev(ctx, m.cfg.Store, func(tx *store.Tx) error {
		failed = ""
		wrote = map[string]vda.Status{}
		var live []statusEdit
		live, dropped = m.current(batch)
		known := m.assume(tx, live, tried)
		for _, e := range live {
			err := m.applyEdit(tx, e, known, wrote)
			switch {
			case err == nil:
			case errors.Is(err, errSpecChanged):
				m.log.Trace("status dropped: spec changed", "key", e.specKey, "guard", e.guard)
				dropped = append(dropped, e.specKey)
			case errors.Is(err, errUnchanged), errors.Is(err, errSpecGone):
			default:
				failed = e.specKey
				return err
			}
		}
		if len(wrote) == 0 && known == nil {
			return errUnchanged
		}
		return nil // with assumed reads, even a commit without writes: it checks them
	})
	if err == nil {
		m.written.record(wrote, rev, m.snaps.revision())
	}
	switch {
	case err == nil, errors.Is(err, errUnchanged):
		return dropped, nil
	case failed != "":
		return dropped, fmt.Errorf("monitor: status of %s: %w", failed, err)
	default:
		return dropped, fmt.Errorf("monitor: status of %d objects: %w", len(batch), err)
	}
}

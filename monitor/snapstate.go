package monitor

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/vda-io/vda"
)

// state is what a Snapshot is made of, kept current one key at a time
// (state.apply) by DecodeSnapshot and by a SnapshotCache.
type state struct {
	rev      int64
	dns      cowMap[*Object[vda.DiskNode]]
	pds      cowMap[*Object[vda.PhysicalDisk]]
	cns      cowMap[*Object[vda.ControllerNode]]
	das      cowMap[*Object[vda.DiskArray]]
	exps     cowMap[*Object[vda.Exporter]]
	snaps    cowMap[*Object[vda.Snapshot]]
	clones   cowMap[*Object[vda.Clone]]
	statuses cowMap[vda.Status]
	// statusRevs is the ModRevision of each status in statuses (by spec
	// key). Views do not share it: the cache's status writes read it.
	statusRevs map[string]int64
	bindings   cowMap[vda.Binding]
	// bad is every key that did not decode. Problems, holds and the
	// malformed set are derived from it by view: it is small.
	bad map[string]badKey
}

// badKey is a key that did not decode.
type badKey struct {
	err  error  // wraps ErrMalformed
	hold *holds // the nodes it holds by itself (exporters: see view)
}

func newState() *state {
	return &state{dns: newCowMap[*Object[vda.DiskNode]](), pds: newCowMap[*Object[vda.PhysicalDisk]](),
		cns: newCowMap[*Object[vda.ControllerNode]](), das: newCowMap[*Object[vda.DiskArray]](),
		exps: newCowMap[*Object[vda.Exporter]](), snaps: newCowMap[*Object[vda.Snapshot]](), clones: newCowMap[*Object[vda.Clone]](),
		statuses: newCowMap[vda.Status](), statusRevs: map[string]int64{}, bindings: newCowMap[vda.Binding](),
		bad: map[string]badKey{}}
}

// view returns the state as an immutable Snapshot, sharing its maps (the
// state copies a map before its next write to it), and whether a PD, DA,
// exporter, snapshot or clone changed since the last view (if not, its index is the last
// view's).
func (s *state) view() (*Snapshot, bool) {
	specsChanged := s.pds.dirty || s.das.dirty || s.exps.dirty || s.snaps.dirty || s.clones.dirty
	snap := &Snapshot{Revision: s.rev, DNs: s.dns.share(), PDs: s.pds.share(), CNs: s.cns.share(), DAs: s.das.share(),
		Exps: s.exps.share(), Snaps: s.snaps.share(), Clones: s.clones.share(), Statuses: s.statuses.share(), Bindings: s.bindings.share(),
		hold: holds{nodes: map[string]error{}}, malformed: make(map[string]bool, len(s.bad))}
	// In key order, as a List returns them: the first reason to hold a
	// node is the one reported.
	for _, key := range slices.Sorted(maps.Keys(s.bad)) {
		b := s.bad[key]
		snap.Problems = append(snap.Problems, Problem{Key: key, Err: b.err})
		snap.malformed[key] = true
		if b.hold != nil {
			snap.hold.all = snap.hold.all || b.hold.all
			for node, why := range b.hold.nodes {
				snap.hold.node(node, why)
			}
		}
	}
	// A malformed exporter concerns the CNs of its DA.
	for _, p := range snap.Problems {
		if rest, ok := strings.CutPrefix(p.Key, vda.PrefixExp); ok {
			daName, _, _ := strings.Cut(rest, "/")
			if da := snap.DAs[daName]; da != nil {
				snap.hold.cns(da.Spec, fmt.Errorf("exporter %s: %w", p.Key, p.Err))
			}
		}
	}
	return snap, specsChanged
}

// cowMap is a map that views share until its next write: then it is
// copied (its entries are pointers or small values, never the objects).
type cowMap[V any] struct {
	m      map[string]V
	shared bool // a view holds m
	dirty  bool // written since the last view
}

func newCowMap[V any]() cowMap[V] { return cowMap[V]{m: map[string]V{}} }

func (c *cowMap[V]) set(k string, v V) {
	c.own()
	c.m[k] = v
}

func (c *cowMap[V]) delete(k string) {
	if _, ok := c.m[k]; ok {
		c.own()
		delete(c.m, k)
	}
}

func (c *cowMap[V]) own() {
	c.dirty = true
	if c.shared {
		c.m, c.shared = maps.Clone(c.m), false
	}
}

// share returns the map for a view: it is not written again.
func (c *cowMap[V]) share() map[string]V {
	c.shared, c.dirty = true, false
	return c.m
}

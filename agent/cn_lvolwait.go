package agent

import (
	"fmt"
	"strings"
	"sync"

	"github.com/vda-io/vda/nvmeof"
)

// cnLvolMisses remembers, between syncs, the initialized arrays whose lvol
// did not show up within cnLvolWait, so that only the first such wait is
// long.
//
// The long wait (a bdev_get_bdevs that SPDK answers when the bdev
// registers) is what lets a node that loads hundreds of lvstores at once
// skip bdev_wait_for_examine. An array whose lvstore is really gone waits
// it out, and then goes on as before: bdev_wait_for_examine, a lookup, and
// (once) its raid re-assembled and examined anew before it is reported.
// Waiting it out on every sync cost that array 10 s per sync (twice, with
// the re-assembly) and held the sync's status back by as much. Once it
// missed, the array's lvol is looked up without waiting: the fallback that
// follows is deterministic (bdev_wait_for_examine returns only when no
// examine runs, so an lvstore that examine is still loading is found), only
// slower on a node with examines in flight.
//
// The record of an array is dropped, and its next wait is long again, when
// its lvol shows up (waited for, looked up, or listed at the start of a
// sync; not its lvstore alone: an lvol SPDK failed to open stays away), when
// the parts that decide where its lvstore is found change (epoch, members,
// strip and cluster size: a failover or a new member set), or when the
// array leaves the node's desired state.
//
// It also remembers the initialized arrays whose lvstore was loaded
// without their lvol and that were re-assembled for it (buildPrimary):
// one re-assembly gives SPDK its chance to open the lvol again; repeating
// it on every sync would only take the array's snapshot and clone exports
// down each time. The record has the same life as a miss.
type cnLvolMisses struct {
	mu          sync.Mutex
	m           map[string]string // DA ID -> cnLvolKey of the spec that missed
	reassembled map[string]string // DA ID -> cnLvolKey of the spec re-assembled for its lvol
}

// cnLvolKey is what of c decides whether its lvstore can be found.
func cnLvolKey(c *cnCntlr) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d/%d/%d", c.epoch, c.stripKB, c.cluster)
	for _, vd := range c.vds {
		fmt.Fprintf(&b, "/%s@%s", vd.id, vd.listener)
	}
	return b.String()
}

// begin starts a sync: it forgets the arrays that are not wanted as
// primaries with the spec that missed, and those whose lvol the listing
// shows.
func (r *cnLvolMisses) begin(cs []*cnCntlr, snap *cnSnapshot) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.m = keepMissing(r.m, cs, snap)
	r.reassembled = keepMissing(r.reassembled, cs, snap)
}

// keepMissing returns the records of m whose array is still wanted as a
// primary with the spec recorded and whose lvol the listing does not show.
func keepMissing(m map[string]string, cs []*cnCntlr, snap *cnSnapshot) map[string]string {
	if len(m) == 0 {
		return m
	}
	keep := make(map[string]string, len(m))
	for _, c := range cs {
		key, ok := m[c.daID]
		if !ok || c.err != nil || !c.primary || key != cnLvolKey(c) {
			continue
		}
		lvs := nvmeof.DALvstoreName(c.daID)
		if snap.bdevs[nvmeof.LvolAlias(lvs, nvmeof.DALvolName(c.daID))] != nil {
			continue
		}
		keep[c.daID] = key
	}
	return keep
}

// reassemble reports whether c, an initialized array loaded without its
// lvol, is to be re-assembled for it: only the first time with this spec.
func (r *cnLvolMisses) reassemble(c *cnCntlr) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	key := cnLvolKey(c)
	if r.reassembled[c.daID] == key {
		return false
	}
	if r.reassembled == nil {
		r.reassembled = map[string]string{}
	}
	r.reassembled[c.daID] = key
	return true
}

// missed reports whether c's lvol already failed to show up within
// cnLvolWait with this spec.
func (r *cnLvolMisses) missed(c *cnCntlr) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	key, ok := r.m[c.daID]
	return ok && key == cnLvolKey(c)
}

// miss records that c's lvol did not show up within cnLvolWait.
func (r *cnLvolMisses) miss(c *cnCntlr) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string]string{}
	}
	r.m[c.daID] = cnLvolKey(c)
}

// found forgets daID: its lvol was found.
func (r *cnLvolMisses) found(daID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.m, daID)
	delete(r.reassembled, daID)
}

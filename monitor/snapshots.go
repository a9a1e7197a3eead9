package monitor

import (
	"errors"
	"fmt"
	"strings"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/api/agentpb"
)

// This file holds the monitor's part of snapshots and clones: decoding
// their records, pushing them to the DA's primary (CntlrSpec.snaps and
// clones, ExpSpec.snap_id and clone_id) and writing the primary's reports
// back as their status.

func checkSnap(tail string) func(string, *vda.Snapshot) error {
	return func(_ string, s *vda.Snapshot) error {
		return errors.Join(checkName(tail, s.DAName+"/"+s.Name), checkID("id", s.ID), checkID("da_id", s.DAID))
	}
}

func checkClone(tail string) func(string, *vda.Clone) error {
	return func(_ string, c *vda.Clone) error {
		return errors.Join(checkName(tail, c.DAName+"/"+c.Name), checkID("id", c.ID), checkID("da_id", c.DAID),
			checkID("snap_id", c.SnapID))
	}
}

// volumes are the snapshots and clones of each DA, by DA name, sorted by key.
type volumes struct {
	snaps  map[string][]*vda.Snapshot
	clones map[string][]*vda.Clone
}

// indexVolumes groups the snapshot's snapshots and clones by DA and holds
// the controller nodes of a DA one of whose snapshots or clones did not
// decode: its primary deletes the lvols the state does not name.
func (p *planner) indexVolumes() {
	p.vols = volumes{snaps: map[string][]*vda.Snapshot{}, clones: map[string][]*vda.Clone{}}
	for _, key := range sortedKeys(p.s.Snaps) {
		sn := &p.s.Snaps[key].Spec
		p.vols.snaps[sn.DAName] = append(p.vols.snaps[sn.DAName], sn)
	}
	for _, key := range sortedKeys(p.s.Clones) {
		cl := &p.s.Clones[key].Spec
		p.vols.clones[cl.DAName] = append(p.vols.clones[cl.DAName], cl)
	}
	for _, pr := range p.s.Problems {
		for _, prefix := range []string{vda.PrefixSnap, vda.PrefixClone} {
			if rest, ok := strings.CutPrefix(pr.Key, prefix); ok {
				daName, _, _ := strings.Cut(rest, "/")
				if da := p.s.DAs[daName]; da != nil {
					p.hold.cns(da.Spec, fmt.Errorf("%s: %w", pr.Key, pr.Err))
				}
			}
		}
	}
}

// checkVolumes verifies the snapshots and clones of da (called by checkDA).
func (p *planner) checkVolumes(da *vda.DiskArray) []error {
	var errs []error
	for _, sn := range p.vols.snaps[da.Name] {
		if sn.DAID != da.ID {
			errs = append(errs, fmt.Errorf("snapshot %q belongs to disk array id %s", sn.Name, sn.DAID))
		}
	}
	for _, cl := range p.vols.clones[da.Name] {
		if cl.DAID != da.ID {
			errs = append(errs, fmt.Errorf("clone %q belongs to disk array id %s", cl.Name, cl.DAID))
		}
	}
	return errs
}

// volumeIDs lists the IDs of da's snapshots and clones for checkUniqueIDs.
func (p *planner) volumeIDs(da string) []string {
	var ids []string
	for _, sn := range p.vols.snaps[da] {
		ids = append(ids, sn.ID)
	}
	for _, cl := range p.vols.clones[da] {
		ids = append(ids, cl.ID)
	}
	return ids
}

// addVolumes puts the snapshots and clones of da into its primary's spec.
func (p *planner) addVolumes(da *vda.DiskArray, spec *agentpb.CntlrSpec) {
	if !spec.Primary {
		return
	}
	for _, sn := range p.vols.snaps[da.Name] {
		spec.Snaps = append(spec.Snaps, &agentpb.SnapSpec{Id: sn.ID})
	}
	for _, cl := range p.vols.clones[da.Name] {
		spec.Clones = append(spec.Clones, &agentpb.CloneSpec{Id: cl.ID, SnapId: cl.SnapID, SizeBytes: cl.SizeBytes,
			Inflate: cl.Inflate})
	}
}

// expVolume sets the volume exporter exp carries on a primary.
func expVolume(exp *vda.Exporter, e *agentpb.ExpSpec, primary bool) {
	if primary {
		e.SnapId, e.CloneId = exp.SnapID, exp.CloneID
	}
}

// volumeEdit turns the report of a snapshot or clone into a status edit of
// its record, if the reporting node is its DA's primary in s.
func volumeEdit(s *Snapshot, np *NodePlan, o *agentpb.ObjectStatus) (statusEdit, bool) {
	ix := s.index()
	var key, daName string
	var guard int64
	switch o.GetKind() {
	case agentpb.Kind_KIND_SNAP:
		sn, ok := s.Snaps[ix.snap[o.GetId()]]
		if !ok {
			return statusEdit{}, false
		}
		key, daName, guard = sn.Key, sn.Spec.DAName, sn.ModRevision
	case agentpb.Kind_KIND_CLONE:
		cl, ok := s.Clones[ix.clone[o.GetId()]]
		if !ok {
			return statusEdit{}, false
		}
		key, daName, guard = cl.Key, cl.Spec.DAName, cl.ModRevision
	default:
		return statusEdit{}, false
	}
	da, ok := s.DAs[daName]
	if !ok || np.Role != RoleCN {
		return statusEdit{}, false
	}
	primary, ok := da.Spec.Primary()
	if !ok || primary.CNID != np.ID {
		return statusEdit{}, false // only the primary holds the lvols
	}
	part := partFrom(o)
	size, inflated := o.GetSizeBytes(), o.GetInflated()
	return statusEdit{specKey: key, guard: guard, edit: func(st *vda.Status) {
		st.Health, st.ErrorMsg = part.Health, part.ErrorMsg
		// A clone's lvol never shrinks nor depends on its snapshot again;
		// an unknown size (0) keeps the recorded one. ModifyClone clears
		// the status, and the guard drops reports of the older record.
		if size > 0 {
			st.AppliedSizeBytes = size
		}
		st.Inflated = st.Inflated || inflated
	}}, true
}

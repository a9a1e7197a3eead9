package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/spdk"
)

// Snapshots and clones of a disk array on its primary. They are lvols in
// the DA lvstore named after their stable IDs (nvmeof.SnapLvolName,
// CloneLvolName), so a primary finds them again after a restart or a
// failover (examine loads them with the lvstore). Only the primary acts on
// them, only once the lvstore is loaded, and the lvols it deletes are only
// ones of those two kinds that the spec no longer names: never the DA lvol.

// cnSnap is one SnapSpec of a primary.
type cnSnap struct {
	id  string
	err error // the spec is unusable (wraps errCNSpec)
}

// cnClone is one CloneSpec of a primary.
type cnClone struct {
	id      string
	snapID  string
	size    uint64 // grown to at least this; 0: as made
	inflate bool
	err     error
}

// cnVolume is a snapshot or clone lvol of the DA lvstore as SPDK lists it.
type cnVolume struct {
	uuid     string // its bdev name
	snapshot bool
	clone    bool   // still depends on a snapshot
	size     uint64 // 0 when unknown (listed by bdev_lvol_get_lvols: resized to the spec's size, a no-op if it has it)
}

// cnValidateVolumes reads a primary's snapshots and clones into c. A
// malformed one is refused alone (its status says why); IDs listed twice
// are both refused.
func cnValidateVolumes(spec *agentpb.CntlrSpec, c *cnCntlr) {
	count := map[string]int{}
	for _, s := range spec.GetSnaps() {
		count[s.GetId()]++
	}
	for _, cl := range spec.GetClones() {
		count[cl.GetId()]++
	}
	check := func(kind, id string) error {
		if err := nvmeof.ValidateID(id); err != nil {
			return fmt.Errorf("%w: %s: %w", errCNSpec, kind, err)
		}
		if count[id] > 1 {
			return fmt.Errorf("%w: %s %s listed %d times", errCNSpec, kind, id, count[id])
		}
		return nil
	}
	for _, s := range spec.GetSnaps() {
		c.snaps = append(c.snaps, &cnSnap{id: s.GetId(), err: check("snapshot", s.GetId())})
	}
	for _, cl := range spec.GetClones() {
		x := &cnClone{id: cl.GetId(), snapID: cl.GetSnapId(), size: cl.GetSizeBytes(), inflate: cl.GetInflate(),
			err: check("clone", cl.GetId())}
		if x.err == nil {
			if err := nvmeof.ValidateID(x.snapID); err != nil {
				x.err = fmt.Errorf("%w: clone %s: snapshot: %w", errCNSpec, x.id, err)
			} else if x.size%cnBlockBytes != 0 {
				x.err = fmt.Errorf("%w: clone %s: size %d is not a multiple of %d", errCNSpec, x.id, x.size, cnBlockBytes)
			}
		}
		c.clones = append(c.clones, x)
	}
}

// cnValidateExpVolume reads the snapshot or clone an exporter carries on a
// primary (a secondary re-exports the primary's subsystem, whatever it
// carries, and ignores them).
func cnValidateExpVolume(x *cnExp, e *agentpb.ExpSpec, primary bool) error {
	if !primary {
		return nil
	}
	x.snapID, x.cloneID = e.GetSnapId(), e.GetCloneId()
	switch {
	case x.snapID != "" && x.cloneID != "":
		return errors.New("both a snapshot and a clone")
	case x.snapID != "":
		return nvmeof.ValidateID(x.snapID)
	case x.cloneID != "":
		return nvmeof.ValidateID(x.cloneID)
	}
	return nil
}

// volumeLvol returns the lvol name an exporter carries ("" for the DA's).
func (x *cnExp) volumeLvol() string {
	switch {
	case x.snapID != "":
		return nvmeof.SnapLvolName(x.snapID)
	case x.cloneID != "":
		return nvmeof.CloneLvolName(x.cloneID)
	}
	return ""
}

// listedVolumes returns the snapshot and clone lvols of the DA lvstore in
// the sync's listing, by lvol name.
func (t *cnTask) listedVolumes() map[string]*cnVolume {
	out := map[string]*cnVolume{}
	for name, b := range t.snap.lvols[nvmeof.DALvstoreName(t.c.daID)] {
		n, ok := nvmeof.ParseName(name)
		if !ok || (n.Kind != nvmeof.KindSnapLvol && n.Kind != nvmeof.KindCloneLvol) {
			continue
		}
		v := &cnVolume{uuid: b.Name, size: b.SizeBytes()}
		if l := b.DriverSpecific.Lvol; l != nil {
			v.snapshot, v.clone = l.Snapshot, l.Clone
		}
		out[name] = v
	}
	return out
}

// loadVolumes finds the DA lvstore's snapshot and clone lvols: from the
// sync's listing when the lvstore was loaded then, or else (examine just
// loaded it) from the lvol library, which knows every lvol of a loaded
// lvstore even before its bdev registers.
func (t *cnTask) loadVolumes(ctx context.Context) error {
	name := nvmeof.DALvstoreName(t.c.daID)
	if t.lvs == t.snap.lvstores[name] && t.lvs != nil {
		t.vols = t.listedVolumes()
		return nil
	}
	ls, err := t.n.c.BdevLvolGetLvols(ctx, spdk.BdevLvolGetLvolsParams{LvsName: name})
	if err != nil {
		return fmt.Errorf("agent: listing the lvols of %s: %w", name, err)
	}
	t.vols = map[string]*cnVolume{}
	for _, l := range ls {
		if n, ok := nvmeof.ParseName(l.Name); ok && (n.Kind == nvmeof.KindSnapLvol || n.Kind == nvmeof.KindCloneLvol) {
			t.vols[l.Name] = &cnVolume{uuid: l.UUID, snapshot: l.IsSnapshot, clone: l.IsClone}
		}
	}
	return nil
}

// syncVolumes converges the DA's snapshots and clones on the primary, once
// the lvstore and the DA lvol are there: unwanted ones go (clones first:
// a snapshot with clones may not go), missing snapshots are taken, missing
// clones made, grown and inflated as asked. Problems stay with each
// object's status.
func (t *cnTask) syncVolumes(ctx context.Context) {
	if err := t.loadVolumes(ctx); err != nil {
		t.volErr = err
		return
	}
	t.deleteUnwantedVolumes(ctx)
	for _, s := range t.c.snaps {
		if s.err == nil {
			s.err = t.ensureSnap(ctx, s)
		}
	}
	for _, cl := range t.c.clones {
		if cl.err == nil {
			cl.err = t.ensureClone(ctx, cl)
		}
	}
}

// deleteUnwantedVolumes deletes the snapshot and clone lvols the spec does
// not name, clones before snapshots.
func (t *cnTask) deleteUnwantedVolumes(ctx context.Context) {
	want := map[string]bool{}
	for _, s := range t.c.snaps {
		want[nvmeof.SnapLvolName(s.id)] = true
	}
	for _, cl := range t.c.clones {
		want[nvmeof.CloneLvolName(cl.id)] = true
	}
	var clones, snaps []string
	for name, v := range t.vols {
		switch {
		case want[name]:
		case v.snapshot:
			snaps = append(snaps, name)
		default:
			clones = append(clones, name)
		}
	}
	slices.Sort(clones)
	slices.Sort(snaps)
	lvs := nvmeof.DALvstoreName(t.c.daID)
	for _, name := range append(clones, snaps...) {
		alias := nvmeof.LvolAlias(lvs, name)
		if n, ok := nvmeof.ParseName(name); !ok || n.Kind == nvmeof.KindDALvol {
			continue // never the DA's volume (listedVolumes keeps only the two kinds; belt and braces)
		}
		err := t.n.c.BdevLvolDelete(ctx, spdk.NameParams{Name: alias})
		if err != nil && !errors.Is(err, spdk.ErrNotFound) {
			t.note(fmt.Errorf("agent: deleting unwanted lvol %s: %w", alias, err))
			continue
		}
		delete(t.vols, name)
		t.n.log.Info("unwanted snapshot or clone deleted", "da", t.c.daID, "lvol", alias)
	}
}

// ensureSnap takes snapshot s of the DA lvol unless the lvstore holds it.
func (t *cnTask) ensureSnap(ctx context.Context, s *cnSnap) error {
	name := nvmeof.SnapLvolName(s.id)
	if v := t.vols[name]; v != nil {
		if !v.snapshot {
			return fmt.Errorf("%w: lvol %s is not a snapshot", errCNState, name)
		}
		return nil
	}
	lvol := nvmeof.LvolAlias(t.lvs.Name, nvmeof.DALvolName(t.c.daID))
	uuid, err := t.n.c.BdevLvolSnapshot(ctx, spdk.BdevLvolSnapshotParams{LvolName: lvol, SnapshotName: name})
	if errors.Is(err, spdk.ErrExists) {
		// The lvstore knows the name but the listing did not show it: a
		// freshly loaded lvol whose bdev is not registered yet.
		return fmt.Errorf("%w: snapshot %s exists but is not listed yet", errCNNotReady, name)
	}
	if err != nil {
		return fmt.Errorf("agent: taking snapshot %s of %s: %w", name, lvol, err)
	}
	t.vols[name] = &cnVolume{uuid: uuid, snapshot: true}
	t.n.log.Info("snapshot taken", "da", t.c.daID, "snapshot", name, "uuid", uuid)
	return nil
}

// ensureClone makes clone cl of its snapshot unless it exists, grows it
// to its size, and inflates it if asked.
func (t *cnTask) ensureClone(ctx context.Context, cl *cnClone) error {
	name := nvmeof.CloneLvolName(cl.id)
	alias := nvmeof.LvolAlias(t.lvs.Name, name)
	v := t.vols[name]
	if v == nil {
		snap := nvmeof.SnapLvolName(cl.snapID)
		if sv := t.vols[snap]; sv == nil || !sv.snapshot {
			return fmt.Errorf("%w: clone %s: snapshot %s is not there (yet)", errCNNotReady, name, snap)
		}
		uuid, err := t.n.c.BdevLvolClone(ctx, spdk.BdevLvolCloneParams{
			SnapshotName: nvmeof.LvolAlias(t.lvs.Name, snap), CloneName: name})
		if errors.Is(err, spdk.ErrExists) {
			return fmt.Errorf("%w: clone %s exists but is not listed yet", errCNNotReady, name)
		}
		if err != nil {
			return fmt.Errorf("agent: cloning %s as %s: %w", snap, name, err)
		}
		v = &cnVolume{uuid: uuid, clone: true}
		t.vols[name] = v
		t.n.log.Info("clone made", "da", t.c.daID, "clone", name, "snapshot", snap, "uuid", uuid)
	}
	if v.snapshot {
		return fmt.Errorf("%w: lvol %s is a snapshot, not a clone", errCNState, name)
	}
	// Inflate before growing: SPDK v24.01 cannot inflate a clone grown
	// past its snapshot (it reads the snapshot's cluster map past its end
	// and fails with EINVAL or ENOSPC).
	if cl.inflate && v.clone {
		if err := t.n.c.BdevLvolInflate(ctx, spdk.NameParams{Name: alias}); err != nil {
			return fmt.Errorf("agent: inflating %s: %w", alias, err)
		}
		v.clone = false
		t.n.log.Info("clone inflated", "da", t.c.daID, "clone", name)
	}
	if cl.size > 0 && v.size < cl.size {
		if err := t.resizeLvol(ctx, alias, cl.size); err != nil {
			return err
		}
		v.size = cl.size
	}
	return nil
}

// resizeLvol grows lvol alias to size bytes (whole MiB when it can).
func (t *cnTask) resizeLvol(ctx context.Context, alias string, size uint64) error {
	p := spdk.BdevLvolResizeParams{Name: alias}
	if size%cnMiB == 0 {
		p.SizeInMiB = new(size / cnMiB)
	} else {
		p.Size = new(size) // only the deprecated byte size says it exactly (SPDK <= 24.01)
	}
	if err := t.n.c.BdevLvolResize(ctx, p); err != nil {
		return fmt.Errorf("agent: resizing %s to %d bytes: %w", alias, size, err)
	}
	return nil
}

// exportVolume points w at the volume exporter x carries on the primary:
// the DA lvol, or a snapshot (which SPDK serves read-only) or a clone. It
// returns false, with the port's error set, when that lvol is not there.
func (t *cnTask) exportVolume(x *cnExp, w *cnExport) bool {
	lvol := x.volumeLvol()
	if lvol == "" {
		w.bdev = nvmeof.LvolAlias(t.lvs.Name, nvmeof.DALvolName(t.c.daID))
		w.bdevNames = []string{t.lvol.Name, w.bdev}
		return true
	}
	v := t.vols[lvol]
	if v == nil {
		err := fmt.Errorf("%w: exporter %s: lvol %s is not there yet", errCNNotReady, x.id, lvol)
		if t.volErr != nil {
			err = fmt.Errorf("%w: exporter %s: %w", errCNNotReady, x.id, t.volErr)
		}
		t.portErr(x, err)
		return false
	}
	w.bdev = nvmeof.LvolAlias(t.lvs.Name, lvol)
	w.bdevNames = []string{v.uuid, w.bdev}
	return true
}

// volumeBdevs returns the bdev names of the DA's snapshot and clone lvols
// in the listing: bdevs an exporter subsystem may hold (newCNTask).
func (t *cnTask) volumeBdevs() []string {
	var out []string
	for _, v := range t.listedVolumes() {
		out = append(out, v.uuid)
	}
	slices.Sort(out)
	return out
}

// volumeBdevNames returns every name (bdev name and alias) of the DA's
// snapshot and clone lvols, listed or made in this sync: what an export's
// namespace may name them by (cnTask.unloadStack).
func (t *cnTask) volumeBdevNames() []string {
	var out []string
	lvs := nvmeof.DALvstoreName(t.c.daID)
	for _, vols := range []map[string]*cnVolume{t.listedVolumes(), t.vols} {
		for name, v := range vols {
			out = append(out, v.uuid, nvmeof.LvolAlias(lvs, name))
		}
	}
	return out
}

// volumeStatuses reports each snapshot and clone of a primary: ok once it
// is there as asked; a clone's lvol also with its size (when known) and
// whether it is inflated.
func (t *cnTask) volumeStatuses() []*agentpb.ObjectStatus {
	var out []*agentpb.ObjectStatus
	report := func(kind agentpb.Kind, id string, err error) {
		switch {
		case err != nil:
		case t.fatal != nil:
			err = fmt.Errorf("%w: controller %s: %w", errCNNotReady, t.c.id, t.fatal)
		case t.volErr != nil:
			err = t.volErr
		case t.vols == nil:
			err = fmt.Errorf("%w: the disk array's lvstore is not loaded", errCNNotReady)
		}
		st := &agentpb.ObjectStatus{Kind: kind, Id: id, Ok: err == nil}
		if err != nil {
			st.Error = err.Error()
		}
		out = append(out, st)
	}
	for _, s := range t.c.snaps {
		report(agentpb.Kind_KIND_SNAP, s.id, s.err)
	}
	for _, cl := range t.c.clones {
		report(agentpb.Kind_KIND_CLONE, cl.id, cl.err)
		if v := t.vols[nvmeof.CloneLvolName(cl.id)]; v != nil && !v.snapshot && t.fatal == nil && t.volErr == nil {
			st := out[len(out)-1]
			st.SizeBytes, st.Inflated = v.size, !v.clone
		}
	}
	return out
}

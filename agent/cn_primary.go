package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/spdk"
)

// Reconnect settings of the NVMe controllers a CN attaches, chosen from
// what real SPDK v24.01 does (ARCHITECTURE section 8). SPDK requires
// reconnect delay <= fast-I/O-fail <= loss timeout (or loss timeout -1).
//
// Both kinds never give up (-1): SPDK keeps the controller and its bdev and
// retries the connection every cnReconnectDelaySec, failing I/O after
// cnFastIOFailSec. A CN never lets SPDK remove a bdev under anything:
//
//   - VD controllers (primary -> disk node). A raid0 must never lose a member
//     while I/O can reach it: in v24.01 the first lost member starts the
//     raid's unregistration, a second lost member frees its descriptor at
//     once (raid_bdev.c, _raid_bdev_remove_base_bdev on an offline raid), and
//     the next I/O to it, from a host or from the lvstore's own unload,
//     dereferences it (raid0_submit_rw_request: "base bdev desc null",
//     then the process dies). That is what a finite loss timeout did to a
//     fenced primary: every DN dropped it at once, SPDK deleted all its VD
//     controllers a loss timeout later, and host I/O still arriving through
//     its export (its agent hung, so nobody removed the namespace) crashed
//     it. With -1 a fenced primary keeps a complete stack whose every I/O
//     fails, and only its agent takes it down, in the one safe order
//     (cnTask.unloadStack): namespaces off the exports first (no more I/O
//     can reach the raid), then the raid (its lvstore unloads while every
//     member is still there; a fenced member fails the unload's writes,
//     which SPDK survives), then the VD controllers.
//     A stale stack can never resume either: it reconnects as the host of
//     its epoch (nvmeof.PrimaryHostNQN), which no disk node admits again.
//     While a VD is gone (disk node restarting) the array fails I/O and
//     resumes by itself when the VD comes back, as raid0 has no redundancy.
//   - Export controllers (secondary -> primary): the secondary holds no
//     metadata, so a stale proxy is harmless (its I/O fails once the old
//     primary is fenced, and the old primary's export no longer admits this
//     host once it is demoted); keeping the bdev keeps the re-exported
//     namespace in place, and the path resumes by itself when the primary's
//     target comes back. The sync detaches it when the primary moves
//     (re-pointing) or on promotion.
//
// I/O fails after 1 s so a host's multipath does not queue behind a dead
// path, and one reconnect a second replaces SPDK's default of ~200 resets
// a second.
//
// The fabrics CONNECT of a new controller may take cnConnectTimeoutUS
// instead of SPDK's 500 ms: a CN that builds hundreds of arrays at once
// (a restart) sends as many CONNECTs to each disk node, which answers them
// late while it busy-polls on a loaded machine; at 500 ms a third of 1,000
// attaches failed on real SPDK (issue 18's benchmark), to be retried only
// by the next sync. A target that is down refuses the TCP connection at
// once and is not waited for.
const (
	cnConnectTimeoutUS  = 10_000_000
	cnVDLossTimeoutSec  = -1
	cnExpLossTimeoutSec = -1
	cnReconnectDelaySec = 1
	cnFastIOFailSec     = 1
)

const cnMiB = 1 << 20

// attachPrimary is the first stage of the primary stack: the export
// controllers go (promotion), a raid that cannot stay is unloaded, and the
// VD controllers are attached. It returns whether buildPrimary may follow.
func (t *cnTask) attachPrimary(ctx context.Context) bool {
	if err := t.dropExportControllers(ctx); err != nil {
		t.fail(err)
		return false
	}
	t.keepRaid = t.raidReusable()
	if t.raid != nil && !t.keepRaid {
		// Unloading takes namespaces off the exports: not while one leaves.
		if err := t.awaitLeaving(ctx); err != nil {
			t.fail(err)
			return false
		}
		if err := t.unloadStack(ctx, t.unwantedVDs()); err != nil {
			t.fail(err)
			return false
		}
	}
	if err := t.attachVDs(ctx); err != nil {
		t.fail(err)
		return false
	}
	return true
}

// buildPrimary is the second stage: raid0, lvstore, lvol, then (once the
// array is initialized) the exporter subsystems.
func (t *cnTask) buildPrimary(ctx context.Context) {
	if err := t.awaitLeaving(ctx); err != nil { // not seen gone by the sync's listing
		t.fail(err)
		return
	}
	keep := t.keepRaid
	if !keep {
		// The raid's bdev is checked by what is found or made on it (see
		// createRaid).
		if err := t.createRaid(ctx, false); err != nil {
			t.fail(err)
			return
		}
	}
	if err := t.ensureLvstore(ctx, !keep); err != nil {
		t.fail(err)
		return
	}
	err := t.ensureLvol(ctx)
	if errors.Is(err, errCNLvolMissing) && keep && t.n.lvolMisses.reassemble(t.c) {
		// SPDK opens an lvstore's lvols when examine loads it; one that
		// failed to open then (an I/O error on a loaded node: it is
		// dropped, not retried) stays closed until the lvstore is loaded
		// again. Assemble the raid anew, once for this spec (not on every
		// sync: each would take the snapshot and clone exports down), as
		// for a missing lvstore.
		t.n.log.Debug("lvol not found, re-assembling", "da", t.c.daID)
		if err = t.reassemble(ctx); err == nil {
			if err = t.ensureLvstore(ctx, true); err == nil {
				err = t.ensureLvol(ctx)
			}
		}
	}
	if err != nil {
		t.fail(err)
		return
	}
	if t.c.initDone {
		t.syncVolumes(ctx) // snapshots and clones (cn_snap.go)
	}
	t.exportPrimary(ctx)
}

// reassemble unloads the array's stack and creates its raid again, so
// that the examine that follows loads its lvstore, and opens its lvols,
// anew. The VD controllers stay attached.
func (t *cnTask) reassemble(ctx context.Context) error {
	if err := t.unloadStack(ctx, nil); err != nil {
		return err
	}
	return t.createRaid(ctx, true)
}

// vdMembers returns the raid's base bdev names in raid order.
func (t *cnTask) vdMembers() []string {
	out := make([]string, len(t.c.vds))
	for i, vd := range t.c.vds {
		out[i] = nvmeof.VDBdevName(vd.id)
	}
	return out
}

// vdHealthy reports whether the VD's controller is the one wanted and
// usable: its only path goes to the VD's listener as this controller's
// host, SPDK has not given up on it, and its bdev exists. A path that is
// resetting counts: SPDK reconnects it by itself.
func (t *cnTask) vdHealthy(vd cnVD) bool {
	ctrl := t.vdCtrls[nvmeof.VDControllerName(vd.id)]
	return ctrl != nil && cnCtrlrMatches(ctrl, vd.listener, nvmeof.VDNQN(vd.id), t.c.vdHost) &&
		!cnCtrlrFailed(ctrl) && t.snap.bdevs[nvmeof.VDBdevName(vd.id)] != nil
}

// raidReusable reports whether the listed raid is exactly the wanted one:
// raid0, online, the wanted members in order, the strip size, all members
// healthy, and built at this epoch (nvmeof.RaidUUID). Anything else is unloaded
// and re-assembled.
func (t *cnTask) raidReusable() bool {
	r := t.raid
	if r == nil || r.State != spdk.RaidOnline || r.RaidLevel != "raid0" || r.StripSizeKB != t.c.stripKB ||
		t.snap.bdevs[r.Name] == nil {
		return false
	}
	if e, ok := nvmeof.RaidEpoch(t.c.daID, r.UUID); !ok || e != t.c.epoch {
		return false
	}
	want := t.vdMembers()
	if len(r.BaseBdevsList) != len(want) {
		return false
	}
	for i, m := range r.BaseBdevsList {
		if m.Name != want[i] || !m.IsConfigured {
			return false
		}
	}
	for _, vd := range t.c.vds {
		if !t.vdHealthy(vd) {
			return false
		}
	}
	return true
}

// unwantedVDs returns the claimed VD controllers the spec does not list.
func (t *cnTask) unwantedVDs() []string {
	want := map[string]bool{}
	for _, vd := range t.c.vds {
		want[nvmeof.VDControllerName(vd.id)] = true
	}
	var out []string
	for name := range t.vdCtrls {
		if !want[name] {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// attachVDs (re-)attaches every VD controller that is missing or stale,
// all at once. A stale controller (other path, failed, no bdev) is
// detached first: SPDK refuses a second attach to the same path (-17).
func (t *cnTask) attachVDs(ctx context.Context) error {
	errs := make([]error, len(t.c.vds))
	healthy := make([]bool, len(t.c.vds))
	for i, vd := range t.c.vds {
		healthy[i] = t.vdHealthy(vd)
	}
	cnForEach(ctx, len(t.c.vds), cnIndexes(len(t.c.vds)), func(ctx context.Context, i int) {
		vd := t.c.vds[i]
		name := nvmeof.VDControllerName(vd.id)
		if healthy[i] {
			if st := cnCtrlrState(t.vdCtrls[name]); st != spdk.CtrlrEnabled {
				t.note(fmt.Errorf("%w: VD %s: path %s", errCNNotReady, vd.id, st))
			}
			return
		}
		if t.vdCtrls[name] != nil {
			if err := t.detach(ctx, name); err != nil {
				errs[i] = err
				return
			}
		}
		errs[i] = t.attach(ctx, name, vd.listener, nvmeof.VDNQN(vd.id), t.c.vdHost, cnVDLossTimeoutSec)
	})
	for i, vd := range t.c.vds {
		if !healthy[i] {
			delete(t.vdCtrls, nvmeof.VDControllerName(vd.id))
		}
	}
	return errors.Join(errs...)
}

func cnIndexes(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// attach attaches controller name to subnqn at tid as host and checks that it yields its bdev "<name>n1" (SPDK answers [] when
// the namespace's UUID clashes with a local bdev; the controller is then
// detached again).
func (t *cnTask) attach(ctx context.Context, name string, tid nvmeof.TransportID, subnqn, host nvmeof.NQN, lossSec int32) error {
	names, err := t.n.c.BdevNvmeAttachController(ctx, spdk.BdevNvmeAttachControllerParams{
		Name: name, TRType: tid.TrType, TRAddr: tid.TrAddr, AdrFam: tid.AdrFam, TRSvcID: tid.TrSvcID,
		SubNQN: string(subnqn), HostNQN: string(host),
		CtrlrLossTimeoutSec: new(lossSec), ReconnectDelaySec: new(uint32(cnReconnectDelaySec)),
		FastIOFailTimeoutSec: new(uint32(cnFastIOFailSec)), FabricsConnectTimeoutUS: new(uint64(cnConnectTimeoutUS)),
	})
	if err != nil {
		return fmt.Errorf("agent: attaching %s (%s at %s): %w", name, subnqn, tid, err)
	}
	if bdev := nvmeof.NVMeBdevName(name, 1); !slices.Contains(names, bdev) {
		derr := t.detach(ctx, name)
		return errors.Join(fmt.Errorf("%w: attaching %s (%s at %s) gave bdevs %q, not %s",
			errCNState, name, subnqn, tid, names, bdev), derr)
	}
	return nil
}

// detach detaches controller name (an already missing one is fine).
func (t *cnTask) detach(ctx context.Context, name string) error { return t.n.detachCtrl(ctx, name) }

// createRaid creates the raid0 over the VDs in their fixed order, with the
// array's strip size and the epoch's UUID. SPDK accepts a raid with a
// missing member and leaves it configuring, without a bdev
// (rpc_bdev_raid_create answers true when a base bdev does not exist), so
// the bdev is checked: at once with verify, otherwise by what lives on it:
// an lvol that examine brings back (awaitLvol), an lvstore examine found on
// it or one created on it (ensureLvstore); only when none of those comes
// does verifyRaid ask. That spares a promotion, a restarted node's build
// and every new array's build one bdev_get_bdevs per array.
func (t *cnTask) createRaid(ctx context.Context, verify bool) error {
	name := nvmeof.RaidName(t.c.daID)
	uuid := nvmeof.RaidUUID(t.c.daID, t.c.epoch)
	err := t.n.c.BdevRaidCreate(ctx, spdk.BdevRaidCreateParams{
		Name: name, RaidLevel: "raid0", BaseBdevs: t.vdMembers(), StripSizeKB: t.c.stripKB, UUID: uuid,
	})
	if err != nil {
		return fmt.Errorf("agent: creating raid %s: %w", name, err)
	}
	t.raidUnverified = true
	if verify {
		if err := t.verifyRaid(ctx); err != nil {
			return err
		}
	}
	t.raid = &spdk.RaidBdev{Name: name, UUID: uuid, StripSizeKB: t.c.stripKB, State: spdk.RaidOnline, RaidLevel: "raid0"}
	t.n.log.Debug("raid assembled", "da", t.c.daID, "raid", name, "epoch", t.c.epoch)
	return nil
}

// verifyRaid checks that the raid createRaid made has its bdev, once.
func (t *cnTask) verifyRaid(ctx context.Context) error {
	if !t.raidUnverified {
		return nil
	}
	name := nvmeof.RaidName(t.c.daID)
	if _, err := t.n.c.BdevGetBdevs(ctx, spdk.BdevGetBdevsParams{Name: name}); err != nil {
		if errors.Is(err, spdk.ErrNotFound) {
			err = fmt.Errorf("%w: raid %s has no bdev (a member is missing)", errCNState, name)
		}
		return fmt.Errorf("agent: checking raid %s: %w", name, err)
	}
	t.raidUnverified = false
	return nil
}

// ensureLvstore finds the DA lvstore on the raid, examining the raid when
// the listing does not show it. Only a never initialized array gets a new
// one, and only once examine has finished without finding any.
func (t *cnTask) ensureLvstore(ctx context.Context, raidFresh bool) error {
	name := nvmeof.DALvstoreName(t.c.daID)
	raid := nvmeof.RaidName(t.c.daID)
	if t.lvs != nil && !raidFresh {
		if t.lvs.BaseBdev != raid {
			return fmt.Errorf("%w: lvstore %s lives on %q, not on %s", errCNState, name, t.lvs.BaseBdev, raid)
		}
		return nil
	}
	t.lvs, t.lvol, t.lvsMade = nil, nil, false
	// The examine of a raid this sync made need not be waited out for an
	// initialized array (it never gets a new lvstore): see examine.
	lvs, lvol, err := t.examine(ctx, !raidFresh || !t.c.initDone)
	if err == nil && lvs == nil && t.c.initDone && !raidFresh {
		// An examine that ran earlier may have failed to load it (SPDK
		// examines a bdev name once): assemble the raid again, which
		// examines it anew, before declaring the lvstore missing.
		t.n.log.Debug("lvstore not found, re-assembling", "da", t.c.daID)
		if err = t.reassemble(ctx); err == nil {
			lvs, lvol, err = t.examine(ctx, true)
		}
	}
	if err != nil {
		return err
	}
	if lvs != nil {
		if lvs.BaseBdev != raid {
			return fmt.Errorf("%w: lvstore %s lives on %q, not on %s", errCNState, name, lvs.BaseBdev, raid)
		}
		t.raidUnverified = false // an lvstore is loaded on its bdev
		t.lvs, t.lvol = lvs, lvol
		return nil
	}
	if t.c.initDone {
		return fmt.Errorf("%w: %s is initialized but examine found no lvstore %s on %s; not creating one",
			errCNLvstoreMissing, t.c.daID, name, raid)
	}
	uuid, err := t.n.c.BdevLvolCreateLvstore(ctx, spdk.BdevLvolCreateLvstoreParams{
		BdevName: raid, LvsName: name, ClusterSz: t.c.cluster,
		// The VDs under the raid are cleared by the disk nodes (a new VD
		// never shows an old tenant's data), so no unmap of the raid.
		ClearMethod: "none", NumMDPagesPerClusterRatio: 100,
	})
	if err != nil {
		// A raid without its bdev (a member missing) is why, if it is.
		if verr := t.verifyRaid(ctx); errors.Is(verr, errCNState) {
			return verr
		}
		return fmt.Errorf("agent: creating lvstore %s: %w", name, err)
	}
	t.raidUnverified = false
	// A store this task made holds no lvol: ensureLvol need not look.
	t.lvsMade = true
	t.lvs = &spdk.Lvstore{UUID: uuid, Name: name, BaseBdev: raid, ClusterSize: uint64(t.c.cluster)}
	t.n.log.Info("disk array lvstore created", "da", t.c.daID, "lvstore", name, "uuid", uuid)
	return nil
}

// cnLvolWait is how long an initialized array's lvol is waited for while
// examine brings it back, in one bdev_get_bdevs that SPDK answers as the
// bdev registers (v24.01 looks for it every 100 ms, spdk_bdev_open_async),
// before the definitive bdev_wait_for_examine. It replaced looks every 2
// to 128 ms, about 250 ms in all, which were half of the RPCs of a
// 500-array build on real SPDK (issue 18); there, on a loaded machine,
// examine took several seconds per array and 2 s was too short for every
// one of them. Only an array whose lvstore is missing waits it out, and
// only once (cnLvolMisses): after that its lvol is looked up without
// waiting until it shows up or the array's spec changes.
var cnLvolWait = 10 * time.Second

// examine asks SPDK to examine the raid and returns the lvstore found on it
// and, when that is how it was found, the DA lvol. Not definitive (an
// initialized array's raid this sync assembled) and after a full lvol wait
// (not the short look of cnLvolMisses, which keeps the definitive path for
// arrays known to miss), an lvstore still loading when the wait ends is
// reported not ready instead of waited for with
// bdev_wait_for_examine: on a node loading hundreds of lvstores that wait
// lasts until the last one is loaded, and every array that timed out
// queued behind it (500 arrays at load 20 to 30: 256 timed out, waits of
// 2 to 6 minutes, builds of 5.6 and 7.1 minutes). The next sync finds the
// lvstore listed, or examines again, definitively.
//
// An initialized array's lvstore must be there: its lvol is waited for as
// examine loads it (awaitLvol). bdev_wait_for_examine returns only once no
// examine is running anywhere on the node, which a promotion of many
// arrays keeps from happening for as long as it starts new ones. When the lvol does not
// show up, and for an array never initialized (whose lvstore is created only
// once examine has surely found none), the lookup follows the wait:
// deterministic.
func (t *cnTask) examine(ctx context.Context, definitive bool) (*spdk.Lvstore, *spdk.Bdev, error) {
	raid := nvmeof.RaidName(t.c.daID)
	err := t.n.c.BdevExamine(ctx, spdk.NameParams{Name: raid})
	// ErrExists: SPDK examined this name before and re-examines it by itself
	// whenever it reappears. ErrInvalidArgument: auto examine is on, so the
	// raid was examined when it registered.
	if err != nil && !errors.Is(err, spdk.ErrExists) && !errors.Is(err, spdk.ErrInvalidArgument) {
		return nil, nil, fmt.Errorf("agent: examining %s: %w", raid, err)
	}
	if t.c.initDone {
		lvs, lvol, waited, err := t.awaitLvol(ctx)
		if lvs != nil || err != nil {
			if lvs != nil {
				t.n.lvolMisses.found(t.c.daID)
			}
			return lvs, lvol, err
		}
		if !definitive && waited {
			return t.loadedLvstore(ctx)
		}
	}
	if err := t.n.c.BdevWaitForExamine(ctx); err != nil {
		return nil, nil, fmt.Errorf("agent: waiting for the examine of %s: %w", raid, err)
	}
	name := nvmeof.DALvstoreName(t.c.daID)
	l, err := t.n.c.BdevLvolGetLvstores(ctx, spdk.LvstoreSelector{LvsName: name})
	switch {
	case errors.Is(err, spdk.ErrNotFound):
		return nil, nil, nil
	case err != nil:
		return nil, nil, fmt.Errorf("agent: looking up lvstore %s: %w", name, err)
	case len(l) != 1:
		return nil, nil, fmt.Errorf("%w: lvstore %s listed %d times", errCNState, name, len(l))
	}
	return &l[0], nil, nil
}

// loadedLvstore returns the DA lvstore if SPDK lists it (loaded: its
// lvol is then missing, for ensureLvol to report), or errCNNotReady.
func (t *cnTask) loadedLvstore(ctx context.Context) (*spdk.Lvstore, *spdk.Bdev, error) {
	name := nvmeof.DALvstoreName(t.c.daID)
	l, err := t.n.c.BdevLvolGetLvstores(ctx, spdk.LvstoreSelector{LvsName: name})
	switch {
	case errors.Is(err, spdk.ErrNotFound):
		return nil, nil, fmt.Errorf("%w: lvstore %s of initialized %s not loaded %v after its raid was assembled; looking again next sync",
			errCNNotReady, name, t.c.daID, cnLvolWait)
	case err != nil:
		return nil, nil, fmt.Errorf("agent: looking up lvstore %s: %w", name, err)
	case len(l) != 1:
		return nil, nil, fmt.Errorf("%w: lvstore %s listed %d times", errCNState, name, len(l))
	}
	return &l[0], nil, nil
}

// awaitLvol waits up to cnLvolWait for the DA lvol and returns it with its
// lvstore as the lvol describes it; nil when it did not show up. An lvol
// bdev exists only once its lvstore is loaded. An array whose lvol missed
// that wait before, with the same spec, is only looked up (cnLvolMisses).
func (t *cnTask) awaitLvol(ctx context.Context) (lvs *spdk.Lvstore, lvol *spdk.Bdev, waited bool, err error) {
	name := nvmeof.DALvstoreName(t.c.daID)
	alias := nvmeof.LvolAlias(name, nvmeof.DALvolName(t.c.daID))
	p := spdk.BdevGetBdevsParams{Name: alias}
	long := !t.n.lvolMisses.missed(t.c)
	if long {
		p.TimeoutMS = uint64(cnLvolWait.Milliseconds())
	}
	bs, err := t.n.c.BdevGetBdevs(ctx, p)
	switch {
	case errors.Is(err, spdk.ErrTimeout), errors.Is(err, spdk.ErrNotFound):
		// A raid without its bdev is why, not a slow examine: no miss.
		if err := t.verifyRaid(ctx); err != nil {
			return nil, nil, long, err
		}
		if long {
			t.n.lvolMisses.miss(t.c)
			t.n.log.Debug("lvol did not show up, looking it up without waiting from now on",
				"da", t.c.daID, "lvol", alias, "wait", cnLvolWait)
		}
		return nil, nil, long, nil
	case err != nil:
		return nil, nil, long, fmt.Errorf("agent: looking up lvol %s: %w", alias, err)
	case len(bs) != 1:
		return nil, nil, long, fmt.Errorf("%w: lvol %s listed %d times", errCNState, alias, len(bs))
	}
	l := bs[0].DriverSpecific.Lvol
	if bs[0].ProductName != spdk.ProductLvol || l == nil {
		return nil, nil, long, fmt.Errorf("%w: %s is not an lvol", errCNState, alias)
	}
	if l.BaseBdev == nvmeof.RaidName(t.c.daID) {
		t.raidUnverified = false // its lvstore is loaded on the raid's bdev
	}
	return &spdk.Lvstore{UUID: l.LvolStoreUUID, Name: name, BaseBdev: l.BaseBdev}, &bs[0], long, nil
}

// ensureLvol finds or creates the DA lvol: thin, exactly the array's size
// (growing a smaller one, cn_lvol.go), with the array's QoS limits. Only an
// array never initialized gets a new one (errCNLvolMissing).
func (t *cnTask) ensureLvol(ctx context.Context) error {
	alias := nvmeof.LvolAlias(t.lvs.Name, nvmeof.DALvolName(t.c.daID))
	if t.lvol == nil && !t.lvsMade {
		bs, err := t.n.c.BdevGetBdevs(ctx, spdk.BdevGetBdevsParams{Name: alias})
		switch {
		case err == nil && len(bs) == 1:
			t.lvol = &bs[0]
			t.n.lvolMisses.found(t.c.daID)
		case err != nil && !errors.Is(err, spdk.ErrNotFound):
			return fmt.Errorf("agent: looking up lvol %s: %w", alias, err)
		}
	}
	if t.lvol != nil {
		if l := t.lvol.DriverSpecific.Lvol; t.lvol.ProductName != spdk.ProductLvol || l == nil || l.LvolStoreUUID != t.lvs.UUID {
			return fmt.Errorf("%w: %s is not an lvol of lvstore %s", errCNState, alias, t.lvs.UUID)
		}
		// A failed resize or QoS change leaves the volume usable as it is:
		// reported, retried by the next sync, the exports still built.
		if err := t.growLvol(ctx, alias); err != nil {
			t.note(err)
		}
		if err := t.ensureQoS(ctx); err != nil {
			t.note(err)
		}
		return nil
	}
	if t.c.initDone {
		// Initialized means the lvol was made (cnTask.statuses): a
		// missing one is not created again, whatever examine did.
		return fmt.Errorf("%w: %s is initialized but lvstore %s holds no lvol %s; not creating one",
			errCNLvolMissing, t.c.daID, t.lvs.Name, alias)
	}
	p := spdk.BdevLvolCreateParams{LvolName: nvmeof.DALvolName(t.c.daID), LvsName: t.lvs.Name,
		ThinProvision: new(true), ClearMethod: "none"}
	if t.c.size%cnMiB == 0 {
		p.SizeInMiB = new(t.c.size / cnMiB)
	} else {
		// Only the deprecated byte size (SPDK <= 24.01) can say exactly a
		// size that is not a whole MiB.
		p.Size = new(t.c.size)
	}
	uuid, err := t.n.c.BdevLvolCreate(ctx, p)
	if err != nil {
		return fmt.Errorf("agent: creating lvol %s: %w", alias, err)
	}
	t.lvol = &spdk.Bdev{Name: uuid, Aliases: []string{alias}, ProductName: spdk.ProductLvol, UUID: uuid,
		BlockSize: cnBlockBytes, NumBlocks: t.c.size / cnBlockBytes}
	t.n.log.Info("disk array lvol created", "da", t.c.daID, "lvol", alias, "uuid", uuid)
	if err := t.ensureQoS(ctx); err != nil {
		t.note(err)
	}
	return nil
}

// exportPrimary reconciles every exporter subsystem, all at once, with the
// DA lvol as namespace, ANA optimized and the initiator plus every
// secondary as hosts.
//
// Before the array is initialized no host may write: not before the
// lvstore's creation is committed. An exporter then admits the array's
// secondaries only, so that they can attach it while the monitor commits
// the mark (the secondaries re-export nothing before it either: see
// runSecondary), and the port reports not ready, exported to the
// secondaries only; the sync after the mark admits the hosts. An exporter
// of an array without secondaries does not exist before the mark.
func (t *cnTask) exportPrimary(ctx context.Context) {
	cnForEach(ctx, len(t.c.exps), t.c.exps, func(ctx context.Context, x *cnExp) {
		if x.err != nil {
			return
		}
		hosts := x.hosts(true)
		if !t.c.initDone {
			notYet := fmt.Errorf("%w: disk array %s is not initialized yet", errCNNotReady, t.c.daID)
			if len(x.secondaries) == 0 {
				t.portErr(x, t.deleteSub(ctx, x, notYet))
				return
			}
			hosts = x.secondaryHosts()
			defer t.secondariesOnlyPort(x, notYet)
		}
		w := t.export(x, nvmeof.Optimized, hosts)
		if !t.exportVolume(x, &w) {
			return
		}
		if err := t.reconcileExport(ctx, x, w); err != nil {
			t.portErr(x, err)
		}
	})
}

// secondariesOnlyPort records that port x, exported to the secondaries
// only, waits for the array's initialization (why), unless the port has
// another error.
func (t *cnTask) secondariesOnlyPort(x *cnExp, why error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.portErrs[x.portID] == nil {
		t.portErrs[x.portID] = why
		t.secondariesOnly[x.portID] = true
	}
}

// deleteSub deletes exporter x's subsystem if the node has it, and returns
// why, or the error deleting it.
func (t *cnTask) deleteSub(ctx context.Context, x *cnExp, why error) error {
	if t.subs[x.nqn].ss != nil {
		if err := t.deleteSubs(ctx, []nvmeof.NQN{x.nqn}); err != nil {
			return err
		}
	}
	return why
}

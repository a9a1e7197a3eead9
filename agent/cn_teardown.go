package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/spdk"
)

// Tearing down on a CN never deletes data: it unloads the DA lvstore by
// removing what is above and under it, in this order: the exporter
// subsystems (or their namespaces on the lvol), the raid (which
// hot-removes the lvstore and the lvol, leaving their metadata on the
// VDs), then the VD controllers. A CN never calls bdev_lvol_delete or
// bdev_lvol_delete_lvstore (invariant 2): only disk nodes delete data.

// unloadStack unloads this array's lvstore: the namespaces that export the
// lvol go first (the subsystems stay for the hosts), then the raid, then
// the VD controllers named in detach.
func (t *cnTask) unloadStack(ctx context.Context, detach []string) error {
	// Every lvol of the array leaves the exports: the DA lvol, snapshots
	// and clones (cn_snap.go).
	names := t.volumeBdevNames()
	if t.lvol != nil {
		names = append(names, t.lvol.Name)
		names = append(names, t.lvol.Aliases...)
	}
	if len(names) > 0 {
		var errs []error
		for _, nqn := range t.subNQNs() {
			errs = append(errs, t.removeNamespaces(ctx, nqn, func(ns spdk.SubsystemNamespace) bool {
				return slices.Contains(names, ns.BdevName)
			}))
		}
		if err := errors.Join(errs...); err != nil {
			return err
		}
	}
	if t.raid != nil {
		if err := t.n.deleteRaid(ctx, t.raid.Name); err != nil {
			return err
		}
		t.n.log.Info("disk array unloaded", "da", t.c.daID, "raid", t.raid.Name)
	}
	t.raid, t.lvs, t.lvol = nil, nil, nil
	for _, name := range detach {
		if err := t.detach(ctx, name); err != nil {
			return err
		}
		delete(t.vdCtrls, name)
	}
	return nil
}

// subNQNs returns the NQNs of the task's exporter subsystems, sorted.
func (t *cnTask) subNQNs() []nvmeof.NQN {
	out := make([]nvmeof.NQN, 0, len(t.subs))
	for nqn := range t.subs {
		out = append(out, nqn)
	}
	slices.Sort(out)
	return out
}

// deleteSubs deletes the subsystems nqns (their hosts are disconnected).
func (t *cnTask) deleteSubs(ctx context.Context, nqns []nvmeof.NQN) error {
	for _, nqn := range nqns {
		if err := t.n.deleteSub(ctx, nqn); err != nil {
			return err
		}
		if ref := t.subs[nqn]; ref != nil {
			ref.ss, ref.withdrawn = nil, false
		}
	}
	return nil
}

func (n *cnNode) deleteSub(ctx context.Context, nqn nvmeof.NQN) error {
	n.ana.forget(nqn)
	if err := n.c.NvmfDeleteSubsystem(ctx, spdk.NQNParams{NQN: string(nqn)}); err != nil {
		return fmt.Errorf("agent: deleting subsystem %s: %w", nqn, err)
	}
	return nil
}

func (n *cnNode) deleteRaid(ctx context.Context, name string) error {
	err := n.c.BdevRaidDelete(ctx, spdk.NameParams{Name: name})
	if err != nil && !errors.Is(err, spdk.ErrNotFound) {
		return fmt.Errorf("agent: deleting raid %s: %w", name, err)
	}
	return nil
}

func (n *cnNode) detachCtrl(ctx context.Context, name string) error {
	err := n.c.BdevNvmeDetachController(ctx, spdk.BdevNvmeDetachControllerParams{Name: name})
	if err != nil && !errors.Is(err, spdk.ErrNotFound) {
		return fmt.Errorf("agent: detaching %s: %w", name, err)
	}
	return nil
}

// removeOrphans removes the CN objects no controller of the desired state
// claims, in reverse dependency order: exporter subsystems, then raids
// (each followed by its VD controllers), then the other controllers. It
// runs before any array is built, so a leftover export controller cannot
// clash with an lvol that examine brings back. Failures are logged: the
// next sync tries again.
func (n *cnNode) removeOrphans(ctx context.Context, snap *cnSnapshot, claims cnClaims) {
	var subs []nvmeof.NQN
	for nqn := range snap.subsystems {
		if _, ok := ownedCN(string(nqn), nvmeof.KindExpNQN); ok && !claims["sub "+string(nqn)] {
			subs = append(subs, nqn)
		}
	}
	var raids []*spdk.RaidBdev
	for name, r := range snap.raids {
		if _, ok := ownedCN(name, nvmeof.KindRaid); ok && !claims["raid "+name] {
			raids = append(raids, r)
		}
	}
	var ctrls []string
	for name := range snap.ctrlrs {
		_, vd := ownedCN(name, nvmeof.KindVDController)
		_, exp := ownedCN(name, nvmeof.KindExpController)
		if (vd || exp) && !claims["ctrl "+name] {
			ctrls = append(ctrls, name)
		}
	}
	if len(subs)+len(raids)+len(ctrls) == 0 {
		return
	}
	warn := func(what string, err error) {
		if err != nil {
			n.log.Warn("removing an orphan failed", "object", what, "error", err)
			return
		}
		n.log.Info("orphan removed", "object", what)
	}
	cnForEach(ctx, n.parallel, subs, func(ctx context.Context, nqn nvmeof.NQN) {
		warn(string(nqn), n.deleteSub(ctx, nqn))
	})
	var mu sync.Mutex
	done := map[string]bool{}
	cnForEach(ctx, n.parallel, raids, func(ctx context.Context, r *spdk.RaidBdev) {
		err := n.deleteRaid(ctx, r.Name)
		warn(r.Name, err)
		if err != nil {
			return
		}
		for _, m := range r.BaseBdevsList {
			nm, ok := ownedCN(m.Name, nvmeof.KindVDController)
			name := nvmeof.VDControllerName(nm.ID)
			if !ok || nm.NSID != 1 || claims["ctrl "+name] || snap.ctrlrs[name] == nil {
				continue
			}
			warn(name, n.detachCtrl(ctx, name))
			mu.Lock()
			done[name] = true
			mu.Unlock()
		}
	})
	cnForEach(ctx, n.parallel, ctrls, func(ctx context.Context, name string) {
		mu.Lock()
		skip := done[name]
		mu.Unlock()
		if !skip {
			warn(name, n.detachCtrl(ctx, name))
		}
	})
}

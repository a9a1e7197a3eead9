package agent

import (
	"context"
	"fmt"
	"strings"

	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/spdk"
)

// syncVDs converges every VD, independently and concurrently.
func (r *dnRun) syncVDs(ctx context.Context) {
	r.n.parallel(len(r.vds), func(i int) {
		r.vdErrs[i] = r.syncVD(ctx, r.vds[i])
	})
}

// syncVD converges one VD: fence, lvol, subsystem, namespace, listener,
// host. The fence (removing every host but host_nqn) comes first and runs
// even when the rest cannot: it is what keeps a deposed primary from
// writing (invariant 1).
func (r *dnRun) syncVD(ctx context.Context, vd *agentpb.VdSpec) error {
	id := vd.GetId()
	nqn := nvmeof.VDNQN(id)
	host := vd.GetHostNqn()
	ss, err := r.fence(ctx, id, nqn, host)
	if err != nil {
		return err
	}
	p := r.pds[r.vdPD[id]]
	if p.err != nil {
		return fmt.Errorf("physical disk %s: %w", p.spec.GetId(), p.err)
	}
	if r.transportErr != nil {
		return r.transportErr
	}
	alias := nvmeof.LvolAlias(p.lvs, nvmeof.VDLvolName(id))
	uuid, err := r.ensureLvol(ctx, vd, p.lvs)
	if err != nil {
		return err
	}
	kv := []any{"vd", id, "nqn", nqn}
	if why := subsystemStale(ss, nqn, uuid); why != "" {
		if err := r.deleteSubsystem(ctx, nqn, why); err != nil {
			return err
		}
		ss = nil
	}
	if ss == nil {
		err := r.change("nvmf_create_subsystem", kv, func() error {
			return subsystemCreateErr(r.n.c.NvmfCreateSubsystem(ctx, spdk.NvmfCreateSubsystemParams{
				NQN: string(nqn), SerialNumber: nvmeof.SerialNumber(nqn), ModelNumber: nvmeof.ModelNumber, AllowAnyHost: new(false),
			}))
		})
		if err != nil {
			return err
		}
		ss = &spdk.Subsystem{NQN: string(nqn)}
	}
	if err := r.ensureNamespace(ctx, ss, nqn, alias); err != nil {
		return err
	}
	if err := r.ensureListener(ctx, ss, nqn); err != nil {
		return err
	}
	for _, h := range ss.Hosts {
		if h.NQN == host {
			return nil
		}
	}
	return r.change("nvmf_subsystem_add_host", append(kv, "host", host), func() error {
		return r.n.c.NvmfSubsystemAddHost(ctx, spdk.NvmfSubsystemHostParams{NQN: string(nqn), Host: host})
	})
}

// fence removes every host but host from the VD's subsystem, which drops
// their connections at once. A subsystem that admits any host is deleted
// instead (switching allow_any_host off disconnects nobody). It returns the
// subsystem as listed, or nil when there is none (any more).
func (r *dnRun) fence(ctx context.Context, id string, nqn nvmeof.NQN, host string) (*spdk.Subsystem, error) {
	ss := r.snap.subsystems[nqn]
	if ss == nil {
		return nil, nil
	}
	if ss.AllowAnyHost {
		return nil, r.deleteSubsystem(ctx, nqn, "admits any host")
	}
	for _, h := range ss.Hosts {
		if h.NQN == host {
			continue
		}
		err := r.change("nvmf_subsystem_remove_host", []any{"vd", id, "nqn", nqn, "host", h.NQN}, func() error {
			return r.n.c.NvmfSubsystemRemoveHost(ctx, spdk.NvmfSubsystemHostParams{NQN: string(nqn), Host: h.NQN})
		})
		if err != nil {
			return nil, fmt.Errorf("fencing host %s: %w", h.NQN, err)
		}
	}
	return ss, nil
}

func (r *dnRun) deleteSubsystem(ctx context.Context, nqn nvmeof.NQN, why string) error {
	return r.change("nvmf_delete_subsystem", []any{"nqn", nqn, "reason", why}, func() error {
		return r.n.c.NvmfDeleteSubsystem(ctx, spdk.NQNParams{NQN: string(nqn)})
	})
}

// ensureLvol makes the VD's thick lvol (or grows a smaller one) and returns
// its UUID, the name SPDK reports namespaces by.
func (r *dnRun) ensureLvol(ctx context.Context, vd *agentpb.VdSpec, lvs string) (string, error) {
	size := vd.GetSizeBytes()
	alias := nvmeof.LvolAlias(lvs, nvmeof.VDLvolName(vd.GetId()))
	lv, ok := r.snap.lvols[alias]
	if !ok {
		if other := r.snap.lvolPlaces[nvmeof.VDLvolName(vd.GetId())]; len(other) > 0 {
			return "", fmt.Errorf("%w: the VD's lvol is %s, not %s; not touching it", errDNState, other[0], alias)
		}
		var uuid string
		err := r.change("bdev_lvol_create", []any{"vd", vd.GetId(), "lvol", alias}, func() (err error) {
			uuid, err = r.n.c.BdevLvolCreate(ctx, spdk.BdevLvolCreateParams{
				LvolName: nvmeof.VDLvolName(vd.GetId()), LvsName: lvs,
				SizeInMiB: new(size / mib), ThinProvision: new(false), ClearMethod: r.n.lvolClear,
			})
			return err
		})
		return uuid, err
	}
	// SPDK rounds lvols up to whole clusters.
	if cl := r.snap.lvstores[lvs].ClusterSize; cl > 0 {
		size = (size + cl - 1) / cl * cl
	}
	b := r.snap.bdevs[lv.UUID]
	switch {
	case b == nil || b.SizeBytes() == size:
	case b.SizeBytes() > size:
		return "", fmt.Errorf("%w: lvol %s has %d bytes, more than the VD's %d; not shrinking it", errDNState, alias, b.SizeBytes(), size)
	default:
		err := r.change("bdev_lvol_resize", []any{"vd", vd.GetId(), "lvol", alias, "bytes", size}, func() error {
			return r.n.c.BdevLvolResize(ctx, spdk.BdevLvolResizeParams{Name: alias, SizeInMiB: new(size / mib)})
		})
		if err != nil {
			return "", err
		}
	}
	return lv.UUID, nil
}

// subsystemStale says why an existing VD subsystem must be re-created ("":
// it can stay): another identity, or a namespace other than the VD's lvol
// as nsid 1 with uuid nvmeof.NamespaceUUID. A namespace is never removed
// from a subsystem a primary may be connected to: SPDK tells connected
// hosts (an asynchronous event), the primary's SPDK then removes that VD's
// bdev from under its raid0, which v24.01 does not survive when I/O is
// reaching the raid (see the CN's reconnect settings). Deleting the
// subsystem only disconnects the primary, whose bdev stays and fails I/O
// until it reconnects to the subsystem made anew.
func subsystemStale(ss *spdk.Subsystem, nqn nvmeof.NQN, uuid string) string {
	switch {
	case ss == nil:
		return ""
	case ss.SerialNumber != nvmeof.SerialNumber(nqn) || ss.ModelNumber != nvmeof.ModelNumber:
		return "identity changed"
	case len(ss.Namespaces) > 1:
		return "more than one namespace"
	case len(ss.Namespaces) == 1:
		ns := ss.Namespaces[0]
		if ns.NSID != 1 || ns.BdevName != uuid || !strings.EqualFold(ns.UUID, nvmeof.NamespaceUUID(nqn)) {
			return fmt.Sprintf("namespace %d on %s is not the VD's lvol %s", ns.NSID, ns.BdevName, uuid)
		}
	}
	return ""
}

// ensureNamespace adds the lvol as the subsystem's only namespace (nsid 1,
// uuid nvmeof.NamespaceUUID) when it has none (subsystemStale ruled out
// any other namespace).
func (r *dnRun) ensureNamespace(ctx context.Context, ss *spdk.Subsystem, nqn nvmeof.NQN, alias string) error {
	if len(ss.Namespaces) > 0 {
		return nil
	}
	return r.change("nvmf_subsystem_add_ns", []any{"nqn", nqn, "bdev", alias}, func() error {
		_, err := r.n.c.NvmfSubsystemAddNs(ctx, spdk.NvmfSubsystemAddNsParams{
			NQN: string(nqn), Namespace: spdk.Namespace{NSID: 1, UUID: nvmeof.NamespaceUUID(nqn), BdevName: alias},
		})
		return err
	})
}

// ensureListener adds the agent's listener and then removes any other.
func (r *dnRun) ensureListener(ctx context.Context, ss *spdk.Subsystem, nqn nvmeof.NQN) error {
	want := r.n.listener
	addr := spdk.ListenAddress{TRType: want.TrType, TRAddr: want.TrAddr, AdrFam: want.AdrFam, TRSvcID: want.TrSvcID}
	var stale []spdk.ListenAddress
	have := false
	for _, l := range ss.ListenAddresses {
		t, err := nvmeof.NewTransportID(l.TRType, l.AdrFam, l.TRAddr, l.TRSvcID)
		if err == nil && t == want {
			have = true
			continue
		}
		stale = append(stale, spdk.ListenAddress{TRType: l.TRType, TRAddr: l.TRAddr, AdrFam: l.AdrFam, TRSvcID: l.TRSvcID})
	}
	if !have {
		err := r.change("nvmf_subsystem_add_listener", []any{"nqn", nqn, "listener", want.String()}, func() error {
			return r.n.c.NvmfSubsystemAddListener(ctx, spdk.NvmfSubsystemAddListenerParams{NQN: string(nqn), ListenAddress: addr})
		})
		if err != nil {
			return err
		}
	}
	for _, l := range stale {
		err := r.change("nvmf_subsystem_remove_listener", []any{"nqn", nqn, "listener", l.TRAddr + ":" + l.TRSvcID}, func() error {
			return r.n.c.NvmfSubsystemRemoveListener(ctx, spdk.NvmfSubsystemRemoveListenerParams{NQN: string(nqn), ListenAddress: l})
		})
		if err != nil {
			return err
		}
	}
	return nil
}

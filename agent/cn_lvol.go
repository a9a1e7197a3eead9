package agent

import (
	"context"
	"fmt"

	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/spdk"
)

// Resize and QoS of the DA volume, on the primary.
//
// Resize: the spec's size_bytes is the truth (the store's). An lvol smaller
// than it grows with bdev_lvol_resize; SPDK's NVMe-oF target then tells the
// hosts connected to the primary's export (Namespace Attribute Changed),
// and each secondary's bdev_nvme, which re-reads the namespace, resizes its
// bdev and so tells the hosts connected through it. A bigger lvol is never
// shrunk (data past the new end may be in use): it is reported.
//
// QoS: the limits are set on the lvol bdev, which the exports of every
// controller reach, with bdev_set_qos_limit, only when bdev_get_bdevs'
// assigned_rate_limits differ from the spec's (a resync sets nothing). A
// new primary's lvol starts without limits, so a failover or switchover
// sets them again.

// cnQoSUnit is what SPDK rounds an IOPS limit up to a multiple of.
const cnQoSUnit = 1000

// cnQoSOf validates a QosSpec: every value as SPDK would apply it
// unchanged (the portal refuses the others), so that what the agent reads
// back is what it set.
func cnQoSOf(q *agentpb.QosSpec) (spdk.RateLimits, error) {
	l := spdk.RateLimits{RWIOsPerSec: q.GetRwIosPerSec(), RWMBytesPerSec: q.GetRwMbytesPerSec(),
		RMBytesPerSec: q.GetRMbytesPerSec(), WMBytesPerSec: q.GetWMbytesPerSec()}
	if l.RWIOsPerSec%cnQoSUnit != 0 {
		return l, fmt.Errorf("qos rw_ios_per_sec %d is not a multiple of %d", l.RWIOsPerSec, cnQoSUnit)
	}
	// SPDK keeps bandwidths in bytes per second (and clamps past this).
	const maxMB = ^uint64(0) >> 20
	for _, v := range []uint64{l.RWMBytesPerSec, l.RMBytesPerSec, l.WMBytesPerSec} {
		if v >= maxMB {
			return l, fmt.Errorf("qos bandwidth %d MiB/s is too large", v)
		}
	}
	return l, nil
}

// growLvol makes the DA lvol (t.lvol, listed) as large as the spec says:
// it grows it and reads the size back; it never shrinks it.
func (t *cnTask) growLvol(ctx context.Context, alias string) error {
	got := t.lvol.SizeBytes()
	switch {
	case got == t.c.size:
		return nil
	case got > t.c.size:
		t.note(fmt.Errorf("%w: lvol %s holds %d bytes, more than the array's %d; not shrinking it", errCNState, alias, got, t.c.size))
		return nil
	}
	if err := t.resizeLvol(ctx, t.lvol.Name, t.c.size); err != nil {
		return fmt.Errorf("agent: growing lvol %s from %d bytes: %w", alias, got, err)
	}
	bs, err := t.n.c.BdevGetBdevs(ctx, spdk.BdevGetBdevsParams{Name: t.lvol.Name})
	switch {
	case err != nil:
		return fmt.Errorf("agent: reading lvol %s back after its resize: %w", alias, err)
	case len(bs) != 1 || bs[0].SizeBytes() != t.c.size:
		return fmt.Errorf("%w: lvol %s was resized to %d bytes but lists %d", errCNState, alias, t.c.size, cnSizes(bs))
	}
	t.lvol = &bs[0]
	t.n.log.Info("disk array lvol grown", "da", t.c.daID, "lvol", alias, "from", got, "to", t.c.size)
	return nil
}

func cnSizes(bs []spdk.Bdev) []uint64 {
	out := make([]uint64, len(bs))
	for i, b := range bs {
		out[i] = b.SizeBytes()
	}
	return out
}

// ensureQoS sets the spec's QoS limits on the DA lvol when its listed
// limits differ. All four go in one call (0 removes a limit); the lvol
// then lists what was set.
func (t *cnTask) ensureQoS(ctx context.Context) error {
	want := t.c.qos
	if t.lvol.AssignedRateLimits == want {
		return nil
	}
	err := t.n.c.BdevSetQosLimit(ctx, spdk.BdevSetQosLimitParams{Name: t.lvol.Name,
		RWIOsPerSec: new(want.RWIOsPerSec), RWMBytesPerSec: new(want.RWMBytesPerSec),
		RMBytesPerSec: new(want.RMBytesPerSec), WMBytesPerSec: new(want.WMBytesPerSec)})
	if err != nil {
		return fmt.Errorf("agent: setting the QoS limits of lvol %s of %s: %w", t.lvol.Name, t.c.daID, err)
	}
	t.lvol.AssignedRateLimits = want
	t.n.log.Info("disk array qos set", "da", t.c.daID, "rw_iops", want.RWIOsPerSec, "rw_mbps", want.RWMBytesPerSec,
		"r_mbps", want.RMBytesPerSec, "w_mbps", want.WMBytesPerSec)
	return nil
}

package vda

import (
	"fmt"
)

// QoS bounds. SPDK (bdev_set_qos_limit, v24.01) rounds an IOPS limit up to
// a multiple of 1000 and a bandwidth up to whole MiB per second, and clamps
// bandwidths past 2^44 MiB/s; the portal refuses what SPDK would change, so
// the limits the agent reads back (bdev_get_bdevs assigned_rate_limits)
// are exactly the stored ones.
const (
	// QoSIOPSUnit is what an IOPS limit must be a multiple of.
	QoSIOPSUnit = 1000
	// MaxQoSIOPS bounds QoS.RWIOsPerSec (10^12).
	MaxQoSIOPS = 1_000_000_000_000
	// MaxQoSMBytesPerSec bounds the bandwidth limits (2^30 MiB/s = 1 PiB/s).
	MaxQoSMBytesPerSec = 1 << 30
)

// Validate checks a QoS against what SPDK accepts unchanged.
func (q QoS) Validate() error {
	if q.RWIOsPerSec%QoSIOPSUnit != 0 || q.RWIOsPerSec > MaxQoSIOPS {
		return fmt.Errorf("%w: qos rw_ios_per_sec %d is not a multiple of %d up to %d (SPDK counts IOPS in thousands; 0 = no limit)",
			ErrInvalidArgument, q.RWIOsPerSec, QoSIOPSUnit, uint64(MaxQoSIOPS))
	}
	for _, f := range []struct {
		name string
		v    uint64
	}{{"rw_mbytes_per_sec", q.RWMBytesPerSec}, {"r_mbytes_per_sec", q.ReadMBytesPerSec}, {"w_mbytes_per_sec", q.WriteMBytesPerSec}} {
		if f.v > MaxQoSMBytesPerSec {
			return fmt.Errorf("%w: qos %s %d exceeds %d MiB/s (0 = no limit)", ErrInvalidArgument, f.name, f.v, MaxQoSMBytesPerSec)
		}
	}
	return nil
}

// IsZero reports whether q sets no limit.
func (q QoS) IsZero() bool { return q == QoS{} }

// RaidBytes is the size of the DA's raid0: each VD rounded down to whole
// strips (SPDK raid0 uses the smallest member, in whole strips), times the
// stripe count.
func (da DiskArray) RaidBytes() uint64 {
	strip := uint64(da.StripeSizeKB) * 1024
	if strip == 0 {
		return 0
	}
	return da.VDSizeBytes / strip * strip * uint64(da.StripeCount)
}

// MaxSizeBytes is the largest size the DA's volume can grow to: the data
// clusters of the DA lvstore on the raid0 (what its metadata leaves, in
// whole clusters of ClusterBytes), the same model Layout sized the raid
// with, so it is at least PhysicalSizeBytes. Growing beyond it needs a
// bigger raid: SPDK v24.01 cannot add members to a raid0 nor grow a VD
// under it, so that would take a new raid over more or bigger VDs and an
// lvstore grow (bdev_lvol_grow_lvstore), which VDA does not do.
func (da DiskArray) MaxSizeBytes() uint64 {
	return LvstoreDataBytes(da.RaidBytes(), da.ClusterBytes)
}

// checkResize validates growing da's volume to size.
func (da DiskArray) checkResize(size uint64) error {
	if err := validateSize("da_size", size); err != nil {
		return err
	}
	if size < da.SizeBytes {
		return fmt.Errorf("%w: da_size %d is smaller than the %d bytes of %s: shrinking is refused, data past the new end may be in use",
			ErrFailedPrecondition, size, da.SizeBytes, daWhat(da.Name))
	}
	if da.ClusterBytes > 0 && size%da.ClusterBytes != 0 {
		return fmt.Errorf("%w: da_size %d is not a multiple of %d, the cluster size of %s (its volume grows in whole clusters)",
			ErrInvalidArgument, size, da.ClusterBytes, daWhat(da.Name))
	}
	if max := da.MaxSizeBytes(); size > max {
		return fmt.Errorf("%w: da_size %d exceeds what %s holds: at most %d bytes fit in its lvstore (physical_size %d); growing further needs a new disk array",
			ErrResourceExhausted, size, daWhat(da.Name), max, da.PhysicalSizeBytes)
	}
	return nil
}

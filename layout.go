package vda

import (
	"fmt"
	"math/bits"
)

// Sizes that shape every DA.
const (
	// BlockBytes is the block size of every exported namespace; sizes
	// must be multiples of it.
	BlockBytes = 4096
	// PDClusterBytes is the cluster size of the lvstore on every PD (SPDK's
	// default); VD lvols are whole multiples of it.
	PDClusterBytes = 4 << 20
	// MaxDAClusterBytes is the largest DA lvstore cluster size Layout picks.
	MaxDAClusterBytes = 4 << 20
	// MinDAClusterBytes is the smallest DA lvstore cluster: with SPDK's
	// one metadata page per cluster, 4 KiB clusters would need as much
	// metadata as data, forever. So --da-size must be a multiple of it.
	MinDAClusterBytes = 8192
	// MaxDASizeBytes bounds --da-size and --physical-size (1 PiB).
	MaxDASizeBytes = 1 << 50
	// MinStripeSizeKB and MaxStripeSizeKB bound --da-conf stripe_size_kb
	// (a power of two: SPDK raid0 strips are at least one 4 KiB block).
	MinStripeSizeKB = 4
	MaxStripeSizeKB = 1024
	// MaxStripeCount bounds --da-conf stripe_count (VDs per DA).
	MaxStripeCount = 32
	// MaxCntlrCount bounds --cntlr-cnt.
	MaxCntlrCount = 16

	lvsPageBytes = 4096 // blobstore metadata page
	lvsMDRatio   = 100  // SPDK's default num_md_pages_per_cluster_ratio
)

// DALayout is the geometry of a DA, computed once by Layout and stored in
// the DA spec so agents never recompute it.
type DALayout struct {
	// ClusterBytes is the DA lvstore's cluster size: the largest power of
	// two <= MaxDAClusterBytes dividing the DA size, so the DA lvol is a
	// whole number of clusters and exactly SizeBytes long.
	ClusterBytes uint64
	// DataClusters is what the DA lvol (physical size) needs,
	// MetadataClusters what the lvstore metadata takes on top.
	DataClusters, MetadataClusters uint64
	// RaidBytes is the raid0 size the VDs give (>= what is needed).
	RaidBytes uint64
	// VDSizeBytes is the size of each VD lvol on its PD.
	VDSizeBytes uint64
}

// lvsMetadataPages estimates the metadata pages of a blobstore with n
// clusters: the super block, the used-cluster, used-md-page and
// used-blobid masks, and n*ratio/100 metadata pages.
func lvsMetadataPages(n uint64) uint64 {
	md := ceilDiv(n*lvsMDRatio, 100)
	mask := func(bits uint64) uint64 { return ceilDiv(8+ceilDiv(bits, 8), lvsPageBytes) }
	return 1 + mask(n) + 2*mask(md) + md
}

// lvsMetadataClusters is how many of n clusters of size c the metadata takes.
func lvsMetadataClusters(n, c uint64) uint64 {
	return ceilDiv(lvsMetadataPages(n)*lvsPageBytes, c)
}

// LvstoreDataBytes is the space lvols can use in an lvstore with cluster
// size clusterBytes on a device of devBytes (128 MiB with 4 MiB clusters
// gives 31 clusters).
func LvstoreDataBytes(devBytes, clusterBytes uint64) uint64 {
	if clusterBytes == 0 {
		return 0
	}
	n := devBytes / clusterBytes
	md := lvsMetadataClusters(n, clusterBytes)
	if n <= md {
		return 0
	}
	return (n - md) * clusterBytes
}

// Layout computes a DA's geometry from --da-size, --physical-size (0 means
// equal to the DA size), stripe count and strip size. The raid must hold
// the physical size in whole clusters plus the lvstore metadata plus a
// margin; each VD gets an equal share rounded up to the strip size and to
// PDClusterBytes.
func Layout(sizeBytes, physicalSizeBytes uint64, stripeCount, stripeSizeKB int) (DALayout, error) {
	if physicalSizeBytes == 0 {
		physicalSizeBytes = sizeBytes
	}
	if err := validateLayoutArgs(sizeBytes, physicalSizeBytes, stripeCount, stripeSizeKB); err != nil {
		return DALayout{}, err
	}
	var l DALayout
	l.ClusterBytes = min(uint64(1)<<bits.TrailingZeros64(sizeBytes), MaxDAClusterBytes)
	l.DataClusters = ceilDiv(physicalSizeBytes, l.ClusterBytes)
	margin := max(1, ceilDiv(1<<20, l.ClusterBytes))
	// Fixed point of n = data + metadata(n): metadata grows by at most half
	// a cluster per cluster, so this converges in about log2(n) steps.
	n := l.DataClusters
	for range 256 {
		md := lvsMetadataClusters(n, l.ClusterBytes)
		if next := l.DataClusters + md; next > n {
			n = next
			continue
		}
		l.MetadataClusters = md
		break
	}
	if l.MetadataClusters == 0 {
		return DALayout{}, fmt.Errorf("%w: no layout fits %d bytes", ErrInvalidArgument, physicalSizeBytes)
	}
	need := (l.DataClusters + l.MetadataClusters + margin) * l.ClusterBytes
	strip := uint64(stripeSizeKB) * 1024
	vd := roundUp(ceilDiv(need, uint64(stripeCount)), strip)
	l.VDSizeBytes = roundUp(vd, PDClusterBytes)
	l.RaidBytes = l.VDSizeBytes / strip * strip * uint64(stripeCount)
	if LvstoreDataBytes(l.RaidBytes, l.ClusterBytes) < l.DataClusters*l.ClusterBytes {
		return DALayout{}, fmt.Errorf("%w: no layout fits %d bytes", ErrInvalidArgument, physicalSizeBytes)
	}
	return l, nil
}

func validateLayoutArgs(size, physical uint64, stripeCount, stripeSizeKB int) error {
	if err := validateSize("da_size", size); err != nil {
		return err
	}
	if err := validateSize("physical_size", physical); err != nil {
		return err
	}
	if physical < size {
		return fmt.Errorf("%w: physical_size %d is smaller than da_size %d", ErrInvalidArgument, physical, size)
	}
	if size%MinDAClusterBytes != 0 {
		return fmt.Errorf("%w: da_size %d is not a multiple of %d (the smallest lvstore cluster)",
			ErrInvalidArgument, size, MinDAClusterBytes)
	}
	if stripeCount < 1 || stripeCount > MaxStripeCount {
		return fmt.Errorf("%w: stripe_count %d is not in 1..%d", ErrInvalidArgument, stripeCount, MaxStripeCount)
	}
	if stripeSizeKB < MinStripeSizeKB || stripeSizeKB > MaxStripeSizeKB || stripeSizeKB&(stripeSizeKB-1) != 0 {
		return fmt.Errorf("%w: stripe_size_kb %d is not a power of two in %d..%d",
			ErrInvalidArgument, stripeSizeKB, MinStripeSizeKB, MaxStripeSizeKB)
	}
	return nil
}

func validateSize(field string, v uint64) error {
	switch {
	case v == 0:
		return fmt.Errorf("%w: %s must be positive", ErrInvalidArgument, field)
	case v%BlockBytes != 0:
		return fmt.Errorf("%w: %s %d is not a multiple of %d", ErrInvalidArgument, field, v, BlockBytes)
	case v > MaxDASizeBytes:
		return fmt.Errorf("%w: %s %d exceeds %d", ErrInvalidArgument, field, v, uint64(MaxDASizeBytes))
	}
	return nil
}

func ceilDiv(a, b uint64) uint64 { return (a + b - 1) / b }

func roundUp(a, m uint64) uint64 { return ceilDiv(a, m) * m }

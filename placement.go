package vda

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"slices"
)

// PlacementRequest is what a new DA needs.
type PlacementRequest struct {
	StripeCount int
	CntlrCount  int
	VDSizeBytes uint64
	// Name is the DA's name and Attempt counts the placements of this
	// request that lost a race to a concurrent one. On retries the
	// DefaultPlacer breaks ties by a hash of both, so racing requests
	// stop choosing the same disks and nodes.
	Name    string
	Attempt int
}

// Candidates is the cluster as the placer sees it: every DN, PD and CN
// with their allocation counters and statuses.
type Candidates struct {
	DNs map[string]DiskNode // by name
	PDs []PhysicalDisk
	CNs []ControllerNode
}

// Placement is a placer's answer: the PDs of VDs 0..StripeCount-1 and the
// CNs of controllers 0..CntlrCount-1 (controller 0 starts as primary).
type Placement struct {
	PDs []PhysicalDisk
	CNs []ControllerNode
}

// Placer chooses where a new DA goes. It must be pure (no I/O): it may run
// several times per request when concurrent requests conflict. It must
// return distinct PDs with room for a VD each and distinct CNs, or an
// error wrapping ErrResourceExhausted.
type Placer interface {
	Place(req PlacementRequest, c Candidates) (Placement, error)
}

// DefaultPlacer spreads VDs over the PDs with the most free space, on
// distinct DNs where possible, and controllers over the least-loaded CNs,
// in distinct locations where possible. PDs are ranked by free space in
// coarse buckets (sixteenths of their capacity) and ties among PDs and CNs
// go by a hash of the request and the candidate, so concurrent requests
// spread out instead of all racing for the same disks; placement is still
// deterministic for a given request. The chosen CNs get controller
// indexes least-loaded first, then by name (index 0 starts as primary).
// Offline nodes and PDs are never chosen.
type DefaultPlacer struct{}

// Place implements Placer.
func (DefaultPlacer) Place(req PlacementRequest, c Candidates) (Placement, error) {
	// Sort small (free, index) pairs, not the PDs themselves.
	type cand struct {
		rank, tie uint64
		i         int
	}
	var cs []cand
	for i := range c.PDs {
		pd := &c.PDs[i]
		dn, ok := c.DNs[pd.DNName]
		if !ok || dn.Offline || pd.Offline {
			continue
		}
		if free := pd.FreeBytes(); free >= req.VDSizeBytes {
			cs = append(cs, cand{rank: free * 16 / pd.CapacityBytes(), tie: tieHash(req, pd.DNName+"/"+pd.Name), i: i})
		}
	}
	if len(cs) < req.StripeCount {
		return Placement{}, fmt.Errorf("%w: need %d online physical disks with %d bytes free, found %d",
			ErrResourceExhausted, req.StripeCount, req.VDSizeBytes, len(cs))
	}
	slices.SortFunc(cs, func(a, b cand) int {
		if a.rank != b.rank {
			return cmp.Compare(b.rank, a.rank)
		}
		if a.tie != b.tie {
			return cmp.Compare(a.tie, b.tie)
		}
		pa, pb := &c.PDs[a.i], &c.PDs[b.i]
		return cmp.Or(cmp.Compare(pa.DNName, pb.DNName), cmp.Compare(pa.Name, pb.Name))
	})
	pds := make([]*PhysicalDisk, len(cs))
	for k, cd := range cs {
		pds[k] = &c.PDs[cd.i]
	}
	var cns []*ControllerNode
	for i := range c.CNs {
		if !c.CNs[i].Offline {
			cns = append(cns, &c.CNs[i])
		}
	}
	if len(cns) < req.CntlrCount {
		return Placement{}, fmt.Errorf("%w: need %d online controller nodes, found %d", ErrResourceExhausted, req.CntlrCount, len(cns))
	}
	slices.SortFunc(cns, func(a, b *ControllerNode) int {
		if a.CntlrCount != b.CntlrCount {
			return cmp.Compare(a.CntlrCount, b.CntlrCount)
		}
		if ta, tb := tieHash(req, a.Name), tieHash(req, b.Name); ta != tb {
			return cmp.Compare(ta, tb)
		}
		return cmp.Compare(a.Name, b.Name)
	})
	chosen := spread(cns, req.CntlrCount, func(cn *ControllerNode) string { return cn.Location })
	slices.SortFunc(chosen, func(a, b ControllerNode) int {
		return cmp.Or(cmp.Compare(a.CntlrCount, b.CntlrCount), cmp.Compare(a.Name, b.Name))
	})
	return Placement{
		PDs: spread(pds, req.StripeCount, func(pd *PhysicalDisk) string { return pd.DNName }),
		CNs: chosen,
	}, nil
}

func tieHash(req PlacementRequest, key string) uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s\x00%d\x00%s", req.Name, req.Attempt, key)
	return h.Sum64()
}

// spread picks n of the sorted items: first at most one per domain, then
// the best of the rest. len(items) >= n.
func spread[T any](items []*T, n int, domain func(*T) string) []T {
	out := make([]T, 0, n)
	used := make([]bool, len(items))
	seen := map[string]bool{}
	for i, it := range items {
		if len(out) == n {
			return out
		}
		if d := domain(it); !seen[d] {
			seen[d], used[i] = true, true
			out = append(out, *it)
		}
	}
	for i, it := range items {
		if len(out) == n {
			break
		}
		if !used[i] {
			out = append(out, *it)
		}
	}
	return out
}

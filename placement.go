package vda

import (
	"errors"
	"fmt"

	"github.com/vda-io/vda/alloc"
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
// error wrapping ErrResourceExhausted. Cluster checks the answer again in
// its transaction, so a wrong Placer cannot over-allocate.
//
// Most embedders want a different alloc.Policy rather than a Placer:
// PolicyPlacer adapts one.
type Placer interface {
	Place(req PlacementRequest, c Candidates) (Placement, error)
}

// DefaultPlacer is PolicyPlacer{alloc.Default{}}: capacity-aware,
// spreading VDs and controllers across locations and nodes, least-loaded
// CNs first, never an offline or failed node or PD (see alloc.Default).
type DefaultPlacer struct{}

// Place implements Placer.
func (DefaultPlacer) Place(req PlacementRequest, c Candidates) (Placement, error) {
	return PolicyPlacer{Policy: alloc.Default{}}.Place(req, c)
}

// PolicyPlacer is a Placer that asks an alloc.Policy. It offers the
// policy every PD with its DN's location, its capacity and free bytes, and
// every CN with its controller count; PDs that are offline, failed, or on
// an offline, failed or unknown DN, and CNs that are offline or failed,
// are marked unavailable. A Shortage becomes ErrResourceExhausted.
type PolicyPlacer struct {
	Policy alloc.Policy
}

// Place implements Placer.
func (pp PolicyPlacer) Place(req PlacementRequest, c Candidates) (Placement, error) {
	disks := make([]alloc.Disk, len(c.PDs))
	for i, pd := range c.PDs {
		dn, ok := c.DNs[pd.DNName]
		disks[i] = alloc.Disk{
			ID: pd.DNName + "/" + pd.Name, Node: pd.DNName, Location: dn.Location,
			CapacityBytes: pd.CapacityBytes(), FreeBytes: pd.FreeBytes(),
			Unavailable: !ok || dn.Offline || dn.Status.Health == HealthFailed || pd.Offline || pd.Status.Health == HealthFailed,
		}
	}
	nodes := make([]alloc.Node, len(c.CNs))
	for i, cn := range c.CNs {
		nodes[i] = alloc.Node{ID: cn.Name, Location: cn.Location, Load: cn.CntlrCount,
			Unavailable: cn.Offline || cn.Status.Health == HealthFailed}
	}
	ar := alloc.Request{VDs: req.StripeCount, VDSizeBytes: req.VDSizeBytes, Controllers: req.CntlrCount, Seed: req.Name, Attempt: req.Attempt}
	ap, err := pp.Policy.Place(ar, disks, nodes)
	if err != nil {
		var sh *alloc.Shortage
		if errors.As(err, &sh) {
			return Placement{}, fmt.Errorf("%w: %s", ErrResourceExhausted, sh.Detail())
		}
		if errors.Is(err, alloc.ErrExhausted) {
			return Placement{}, fmt.Errorf("%w: %w", ErrResourceExhausted, err)
		}
		return Placement{}, err
	}
	p := Placement{PDs: make([]PhysicalDisk, 0, len(ap.Disks)), CNs: make([]ControllerNode, 0, len(ap.Nodes))}
	for _, i := range ap.Disks {
		if i < 0 || i >= len(c.PDs) {
			return Placement{}, fmt.Errorf("vda: placement policy chose PD index %d of %d", i, len(c.PDs))
		}
		p.PDs = append(p.PDs, c.PDs[i])
	}
	for _, i := range ap.Nodes {
		if i < 0 || i >= len(c.CNs) {
			return Placement{}, fmt.Errorf("vda: placement policy chose CN index %d of %d", i, len(c.CNs))
		}
		p.CNs = append(p.CNs, c.CNs[i])
	}
	return p, nil
}

package vda

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

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
	// CNLocations and DNLocations, when non-empty, restrict the CNs and
	// the DNs (their PDs) a placement may use to those locations
	// (DiskArraySpec); the candidates a Placer is shown are filtered
	// already.
	CNLocations []string
	DNLocations []string
}

// Candidates is the cluster as the placer sees it: every DN, PD and CN
// with their allocation counters and statuses.
type Candidates struct {
	DNs map[string]DiskNode // by name
	PDs []PhysicalDisk
	CNs []ControllerNode
	// AvoidDNs and AvoidCNs name the DNs and CNs in the share of another
	// Cluster placing on this store (see Config.PlacementAffinity);
	// PolicyPlacer marks them (the DNs' PDs) alloc.Disk.Avoid and
	// alloc.Node.Avoid. Empty without an affinity or other placers.
	AvoidDNs, AvoidCNs map[string]bool
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
// every CN with its controller count (and whether they are avoided, see
// Candidates.AvoidCNs); PDs that are offline, failed, or on
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
			Avoid:       c.AvoidDNs[pd.DNName],
		}
	}
	nodes := make([]alloc.Node, len(c.CNs))
	for i, cn := range c.CNs {
		nodes[i] = alloc.Node{ID: cn.Name, Location: cn.Location, Load: cn.CntlrCount,
			Unavailable: cn.Offline || cn.Status.Health == HealthFailed, Avoid: c.AvoidCNs[cn.Name]}
	}
	ar := alloc.Request{VDs: req.StripeCount, VDSizeBytes: req.VDSizeBytes, Controllers: req.CntlrCount, Seed: req.Name, Attempt: req.Attempt}
	ap, err := pp.Policy.Place(ar, disks, nodes)
	if err != nil {
		return Placement{}, placeErr(err)
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

// placeErr is a Policy's error as a Placer reports it: a shortage is
// ErrResourceExhausted.
func placeErr(err error) error {
	var sh *alloc.Shortage
	if errors.As(err, &sh) {
		return fmt.Errorf("%w: %s", ErrResourceExhausted, sh.Detail())
	}
	if errors.Is(err, alloc.ErrExhausted) {
		return fmt.Errorf("%w: %w", ErrResourceExhausted, err)
	}
	return err
}

// MaxPlacementLocations bounds DiskArraySpec.CNLocations and DNLocations.
const MaxPlacementLocations = 16

// allowed reports whether location loc is in locs, or locs is empty (no
// constraint).
func allowed(locs []string, loc string) bool {
	return len(locs) == 0 || slices.Contains(locs, loc)
}

// restrict keeps the candidates req's location constraint allows: CNs in
// CNLocations, DNs in DNLocations and their PDs.
func (req PlacementRequest) restrict(c Candidates) Candidates {
	if len(req.CNLocations) == 0 && len(req.DNLocations) == 0 {
		return c
	}
	out := Candidates{DNs: make(map[string]DiskNode, len(c.DNs)), AvoidDNs: c.AvoidDNs, AvoidCNs: c.AvoidCNs}
	for name, dn := range c.DNs {
		if allowed(req.DNLocations, dn.Location) {
			out.DNs[name] = dn
		}
	}
	for _, pd := range c.PDs {
		if _, ok := out.DNs[pd.DNName]; ok {
			out.PDs = append(out.PDs, pd)
		}
	}
	for _, cn := range c.CNs {
		if allowed(req.CNLocations, cn.Location) {
			out.CNs = append(out.CNs, cn)
		}
	}
	return out
}

// explain adds req's location constraint to a placement error, so that
// ErrResourceExhausted names what it could not satisfy.
func (req PlacementRequest) explain(err error) error {
	if !errors.Is(err, ErrResourceExhausted) || len(req.CNLocations)+len(req.DNLocations) == 0 {
		return err
	}
	var parts []string
	if len(req.CNLocations) > 0 {
		parts = append(parts, "cn_locations "+showLocations(req.CNLocations))
	}
	if len(req.DNLocations) > 0 {
		parts = append(parts, "dn_locations "+showLocations(req.DNLocations))
	}
	return fmt.Errorf("%w (placement constrained to %s)", err, strings.Join(parts, " and "))
}

// normLocations validates a placement constraint (each entry a location
// as nodes have them, non-empty, no duplicates, at most
// MaxPlacementLocations) and returns it sorted; nil stays nil.
func normLocations(field string, locs []string) ([]string, error) {
	if len(locs) == 0 {
		return nil, nil
	}
	if len(locs) > MaxPlacementLocations {
		return nil, fmt.Errorf("%w: %s has %d entries, at most %d", ErrInvalidArgument, field, len(locs), MaxPlacementLocations)
	}
	out := slices.Clone(locs)
	slices.Sort(out)
	for i, l := range out {
		if l == "" {
			return nil, fmt.Errorf("%w: %s has an empty location", ErrInvalidArgument, field)
		}
		if err := validateText(field+" entry", l, MaxLocationBytes); err != nil {
			return nil, err
		}
		if i > 0 && out[i-1] == l {
			return nil, fmt.Errorf("%w: %s names location %q twice", ErrInvalidArgument, field, l)
		}
	}
	return out, nil
}

// showLocations is a constraint as messages show it: ["a", "b"], or
// "any" when empty.
func showLocations(locs []string) string {
	if len(locs) == 0 {
		return "any"
	}
	q := make([]string, len(locs))
	for i, l := range locs {
		q[i] = strconv.Quote(l)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

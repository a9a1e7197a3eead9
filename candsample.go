package vda

import (
	"slices"
	"strconv"
	"strings"

	"github.com/vda-io/vda/alloc"
)

// The candidate cache's samples: what a create shows its Placer, every
// candidate or a bounded sample of the best of each location
// (candcache.go keeps the indexes they are taken from).

// allCandidates is every DN, PD and CN, for Placers that want them all.
// c.mu is held.
func (c *candCache) allCandidates() Candidates {
	cands := Candidates{DNs: make(map[string]DiskNode, len(c.dns))}
	for _, d := range c.dns {
		if d.present {
			cands.DNs[d.name] = d.withStatus()
			cands.avoidDN(d)
		}
		for _, p := range d.pds {
			if p.present {
				cands.PDs = append(cands.PDs, p.effective())
			}
		}
	}
	for _, n := range c.cns {
		if n.present {
			cands.CNs = append(cands.CNs, n.effective())
			cands.avoidCN(n)
		}
	}
	// Map order is random; a Placer may depend on the order.
	slices.SortFunc(cands.PDs, func(a, b PhysicalDisk) int {
		return cmpStrings(a.DNName, b.DNName, a.Name, b.Name)
	})
	slices.SortFunc(cands.CNs, func(a, b ControllerNode) int { return strings.Compare(a.Name, b.Name) })
	return cands
}

func cmpStrings(a1, b1, a2, b2 string) int {
	if r := strings.Compare(a1, b1); r != 0 {
		return r
	}
	return strings.Compare(a2, b2)
}

// Bounds of the sample boundedCandidates takes, per location: disk nodes
// and, of each, PDs; and CNs.
func sampleNodes(vds int) int  { return 2*vds + 2 }
func sampleDisks(vds int) int  { return vds }
func sampleCNs(cntlrs int) int { return 2*cntlrs + 2 }
func sampleStart(req PlacementRequest, loc string) uint64 {
	h := uint64(14695981039346656037)
	for _, s := range []string{req.Name, "\x00", strconv.Itoa(req.Attempt), "\x00", loc} {
		for i := 0; i < len(s); i++ {
			h ^= uint64(s[i])
			h *= 1099511628211
		}
	}
	return h
}

// boundedCandidates is a sample of the candidates for alloc.Default: of
// every location, the disk nodes whose emptiest PD is emptiest (up to
// sampleNodes; as many again of the ones it avoids, see placers.go) with
// their emptiest PDs (up to sampleDisks each), and the
// least-loaded CNs (up to sampleCNs; as many again of the CNs it avoids,
// the other placers' shares, see placers.go). Within a bucket or a load, the
// sample starts at a position derived from the request's name and attempt,
// so concurrent creates and retries look at different candidates. Only
// available candidates are in it. c.mu is held.
func (c *candCache) boundedCandidates(req PlacementRequest) Candidates {
	nNodes, nDisks, nCNs := sampleNodes(req.StripeCount), sampleDisks(req.StripeCount), sampleCNs(req.CntlrCount)
	// Sized for a full sample up front: growing these is most of the cost.
	cands := Candidates{DNs: make(map[string]DiskNode, len(c.pdLocs)*nNodes),
		PDs: make([]PhysicalDisk, 0, len(c.pdLocs)*nNodes*nDisks), CNs: make([]ControllerNode, 0, len(c.cnLocs)*nCNs)}
	c.sample(req,
		func(d *dnEnt) {
			cands.DNs[d.name] = d.withStatus()
			cands.avoidDN(d)
		},
		func(p *pdEnt) { cands.PDs = append(cands.PDs, p.effective()) },
		func(n *cnEnt) {
			cands.CNs = append(cands.CNs, n.effective())
			cands.avoidCN(n)
		})
	return cands
}

// sample visits the sample boundedCandidates describes: each disk node,
// then its PDs; then the CNs. c.mu is held.
func (c *candCache) sample(req PlacementRequest, dnFn func(*dnEnt), pdFn func(*pdEnt), cnFn func(*cnEnt)) {
	nNodes, nDisks, nCNs := sampleNodes(req.StripeCount), sampleDisks(req.StripeCount), sampleCNs(req.CntlrCount)
	for loc, lp := range c.pdLocs {
		if !allowed(req.DNLocations, loc.loc) {
			continue
		}
		start, taken := sampleStart(req, loc.loc), 0
		for b := nBuckets - 1; b >= 0 && taken < nNodes; b-- {
			lp.nodes[b].window(start, func(d *dnEnt) bool {
				dnFn(d)
				disks := 0
				for k := nBuckets - 1; k >= 0 && disks < nDisks; k-- {
					d.disks[k].window(start, func(p *pdEnt) bool {
						pdFn(p)
						disks++
						return disks < nDisks
					})
				}
				taken++
				return taken < nNodes
			})
		}
	}
	for loc, lc := range c.cnLocs {
		if !allowed(req.CNLocations, loc.loc) {
			continue
		}
		start, taken := sampleStart(req, loc.loc), 0
		for _, load := range lc.loads {
			if !lc.byLoad[load].window(start, func(n *cnEnt) bool {
				cnFn(n)
				taken++
				return taken < nCNs
			}) {
				break
			}
		}
	}
}

// boundedPlace is DefaultPlacer's answer over boundedCandidates(req),
// computed from the cache's entries: alloc.Default is shown the same
// disks and nodes (as PolicyPlacer makes them of the sample), so it
// chooses the same ones, but no candidate's spec is copied and the
// buffers are the cache's. c.mu is held.
func (c *candCache) boundedPlace(req PlacementRequest) (Placement, error) {
	c.scratch.disks, c.scratch.pds = c.scratch.disks[:0], c.scratch.pds[:0]
	c.scratch.nodes, c.scratch.cns = c.scratch.nodes[:0], c.scratch.cns[:0]
	var dn *dnEnt
	c.sample(req,
		func(d *dnEnt) { dn = d },
		func(p *pdEnt) {
			// As PolicyPlacer makes it of p.effective(), with the PD's
			// disk node from the sample (where p's is).
			capacity, free := p.capFree()
			c.scratch.disks = append(c.scratch.disks, alloc.Disk{
				ID: p.id, Node: p.spec.DNName, Location: dn.spec.Location, CapacityBytes: capacity, FreeBytes: free,
				Unavailable: dn.spec.Offline || dn.status.Health == HealthFailed || p.spec.Offline || p.status.Health == HealthFailed,
				Avoid:       dn.avoid,
			})
			c.scratch.pds = append(c.scratch.pds, p)
		},
		func(n *cnEnt) {
			c.scratch.nodes = append(c.scratch.nodes, alloc.Node{ID: n.spec.Name, Location: n.spec.Location,
				Load: n.spec.CntlrCount + n.pend, Unavailable: n.spec.Offline || n.status.Health == HealthFailed, Avoid: n.avoid})
			c.scratch.cns = append(c.scratch.cns, n)
		})
	ar := alloc.Request{VDs: req.StripeCount, VDSizeBytes: req.VDSizeBytes, Controllers: req.CntlrCount, Seed: req.Name, Attempt: req.Attempt}
	ap, err := alloc.Default{}.Place(ar, c.scratch.disks, c.scratch.nodes)
	if err != nil {
		return Placement{}, placeErr(err)
	}
	p := Placement{PDs: make([]PhysicalDisk, 0, len(ap.Disks)), CNs: make([]ControllerNode, 0, len(ap.Nodes))}
	for _, i := range ap.Disks {
		p.PDs = append(p.PDs, c.scratch.pds[i].effective())
	}
	for _, i := range ap.Nodes {
		p.CNs = append(p.CNs, c.scratch.cns[i].effective())
	}
	return p, nil
}

package alloc

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// ErrExhausted is matched (errors.Is) by every error that says a request
// cannot be placed for lack of disks, space or nodes.
var ErrExhausted = errors.New("alloc: not enough resources")

// Disk is a physical disk that may hold one VD of the new DA.
type Disk struct {
	// ID identifies the disk uniquely among the candidates.
	ID string
	// Node is the disk node holding it; the VDs of a DA go to distinct
	// nodes where possible.
	Node string
	// Location is the node's failure domain (empty is a domain too).
	Location string
	// CapacityBytes is the space VDs may use on the disk; FreeBytes what
	// is not yet reserved. A disk with no known capacity is never chosen.
	CapacityBytes uint64
	FreeBytes     uint64
	// Unavailable disks (offline, or on an offline or failed node) are
	// never chosen.
	Unavailable bool
	// Avoid marks a disk that another placer prefers (see Node.Avoid):
	// Default ranks it one free-space rank (a sixteenth of its capacity)
	// lower than it is.
	Avoid bool
}

// Node is a controller node that may host one controller of the new DA.
type Node struct {
	// ID identifies the node uniquely among the candidates.
	ID string
	// Location is the node's failure domain.
	Location string
	// Load is how many controllers the node hosts already.
	Load int
	// Unavailable nodes (offline or failed) are never chosen.
	Unavailable bool
	// Avoid marks a node that another placer prefers: one of several
	// callers that place DAs on the same nodes at the same time (vda: the
	// Clusters of several portals on one store), which share the nodes
	// out among themselves and each mark the others' share. Default ranks
	// an avoided node as if it hosted Load/AvoidDivisor more controllers,
	// once its Load is at least AvoidMinLoad, so each caller fills its own
	// share and their choices (and store transactions) stop colliding,
	// while loads stay within about 1/AvoidDivisor of each other.
	Avoid bool
}

// Request is what a new DA needs.
type Request struct {
	// VDs is the number of virtual disks (the raid0 stripe count), each of
	// VDSizeBytes on its own disk.
	VDs         int
	VDSizeBytes uint64
	// Controllers is the number of controllers, each on its own node.
	Controllers int
	// Seed and Attempt make ties between equally good candidates break
	// differently per DA and per retry, so concurrent creates spread out
	// instead of racing for the same disks. A Policy is deterministic for
	// a given Request and candidates.
	Seed    string
	Attempt int
}

// Placement is a Policy's answer, as indexes into the candidate slices:
// Disks[i] holds VD i, Nodes[j] hosts controller j (Nodes[0] starts as
// the primary).
type Placement struct {
	Disks []int
	Nodes []int
}

// Policy chooses where a new DA goes. It must be pure: it may run several
// times per request when concurrent requests conflict. It returns
// req.VDs distinct available disks with at least VDSizeBytes free and
// req.Controllers distinct available nodes, or an error matching
// ErrExhausted.
type Policy interface {
	Place(req Request, disks []Disk, nodes []Node) (Placement, error)
}

// Shortage is the error of a request that cannot be placed: Need items of
// What were asked for and only Found exist. It matches ErrExhausted.
type Shortage struct {
	What  string
	Need  int
	Found int
}

// Detail says what was short, without the package prefix.
func (s *Shortage) Detail() string {
	return fmt.Sprintf("need %d %s, found %d", s.Need, s.What, s.Found)
}

func (s *Shortage) Error() string { return "alloc: " + s.Detail() }

// Is makes errors.Is(err, ErrExhausted) true.
func (s *Shortage) Is(target error) bool { return target == ErrExhausted }

// Default is the default Policy.
//
// Disks are ranked by free space in coarse buckets (sixteenths of their
// capacity), so the emptiest disks fill first and fill levels even out;
// nodes by load. Within a rank, ties go by a hash of the request's Seed
// and Attempt and the candidate's ID (then the ID itself), so different
// DAs and retries prefer different candidates while each answer stays
// deterministic. From the ranked list it takes the best candidate of each
// location not used yet, then of each node not used yet, then the best of
// the rest: a DA spans as many failure domains and nodes as the
// candidates allow. The chosen controller nodes are ordered least-loaded
// first, then in the tie order, so the primary goes to the least-loaded
// one and, among equally loaded nodes, each is as likely to get it.
//
// Avoid: nodes marked Avoid hosting at least AvoidMinLoad controllers
// rank as if they hosted Load/AvoidDivisor more; below that (small
// clusters, tests, tutorials) loads rank exactly. Disks marked Avoid rank
// one free-space rank lower. Callers that place at the same time and
// mark each other's shares so fill their own and stop colliding; without
// marks nothing changes.
type Default struct{}

// AvoidMinLoad and AvoidDivisor bound what Node.Avoid does in Default: an
// avoided node with Load >= AvoidMinLoad ranks as one with
// Load + Load/AvoidDivisor (in fractions of a controller), so it is chosen
// over a node it does not avoid only when that one is more than an eighth
// more loaded.
const (
	AvoidMinLoad  = 16
	AvoidDivisor  = 8
	rankFracShift = 16 // node ranks count 1/65536ths of a controller
)

var _ Policy = Default{}

type ranked struct {
	rank, tie uint64
	i         int
}

// Place implements Policy.
func (Default) Place(req Request, disks []Disk, nodes []Node) (Placement, error) {
	if req.VDs < 0 || req.Controllers < 0 {
		return Placement{}, fmt.Errorf("%w: negative count in request", ErrExhausted)
	}
	rh := requestHash(req)
	ds := make([]ranked, 0, len(disks))
	for i := range disks {
		d := &disks[i]
		if d.Unavailable || d.CapacityBytes == 0 || d.FreeBytes < req.VDSizeBytes || d.FreeBytes > d.CapacityBytes {
			continue
		}
		// Higher free fraction first: invert the bucket so ascending
		// order is best first.
		ds = append(ds, ranked{rank: diskRank(d), tie: tieHash(rh, d.ID), i: i})
	}
	if len(ds) < req.VDs {
		return Placement{}, &Shortage{What: fmt.Sprintf("online physical disks with %d bytes free", req.VDSizeBytes), Need: req.VDs, Found: len(ds)}
	}
	ns := make([]ranked, 0, len(nodes))
	for i := range nodes {
		if !nodes[i].Unavailable {
			ns = append(ns, ranked{rank: nodeRank(nodes[i]), tie: tieHash(rh, nodes[i].ID), i: i})
		}
	}
	if len(ns) < req.Controllers {
		return Placement{}, &Shortage{What: "online controller nodes", Need: req.Controllers, Found: len(ns)}
	}
	sortRanked(ds, func(i int) string { return disks[i].ID })
	sortRanked(ns, func(i int) string { return nodes[i].ID })
	p := Placement{
		Disks: spread(ds, req.VDs, func(i int) (string, string) { return disks[i].Location, disks[i].Node }),
		Nodes: spread(ns, req.Controllers, func(i int) (string, string) { return nodes[i].Location, nodes[i].ID }),
	}
	// The primary is the least loaded; among equally loaded nodes the
	// request's tie order decides, as it did the choice, so every node
	// is as likely to be primary (by ID, half of them never were: with
	// two controllers and even loads the lower ID won every pair).
	slices.SortFunc(p.Nodes, func(a, b int) int {
		return cmp.Or(cmp.Compare(max(nodes[a].Load, 0), max(nodes[b].Load, 0)),
			cmp.Compare(tieHash(rh, nodes[a].ID), tieHash(rh, nodes[b].ID)), cmp.Compare(nodes[a].ID, nodes[b].ID))
	})
	return p, nil
}

// diskRank is d's rank (ascending is best): higher free fraction first
// (the bucket inverted), one rank lower if it is avoided.
func diskRank(d *Disk) uint64 {
	r := 16 - freeBucket(d.FreeBytes, d.CapacityBytes)
	if d.Avoid {
		r++
	}
	return r
}

// nodeRank is n's rank (ascending is best): its load in 1/65536ths of a
// controller, plus Load/AvoidDivisor if it is avoided and loaded enough.
func nodeRank(n Node) uint64 {
	load := min(uint64(max(n.Load, 0)), 1<<40) // no overflow below
	r := load << rankFracShift
	if n.Avoid && load >= AvoidMinLoad {
		r += load << rankFracShift / AvoidDivisor
	}
	return r
}

// FreeBuckets is the number of free-space ranks Default distinguishes:
// FreeBucket returns 0..FreeBuckets-1.
const FreeBuckets = 17

// FreeBucket is the free-space rank Default gives a disk: free/capacity in
// sixteenths (0..16, higher is emptier), without overflow. Indexes that
// keep disks ordered the way Default ranks them (vda's candidate cache)
// use it. capacity must be positive and free at most capacity.
func FreeBucket(free, capacity uint64) int { return int(freeBucket(free, capacity)) }

// freeBucket is free/capacity in sixteenths (0..16) without overflow.
func freeBucket(free, capacity uint64) uint64 {
	if capacity >= 1<<59 {
		return free / (capacity / 16)
	}
	return free * 16 / capacity
}

func sortRanked(rs []ranked, id func(int) string) {
	slices.SortFunc(rs, func(a, b ranked) int {
		return cmp.Or(cmp.Compare(a.rank, b.rank), cmp.Compare(a.tie, b.tie), cmp.Compare(id(a.i), id(b.i)))
	})
}

// FNV-1a, inlined so hashing a candidate does not allocate.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func fnvString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

// tieHash orders candidates of one rank for a request: FNV-1a of the
// request's prefix and the candidate's ID, finalized with MurmurHash3's
// fmix64. FNV-1a alone barely mixes the last byte, so IDs that differ
// only there ("cn0", "cn1") kept the same relative order for every
// request and were always chosen side by side.
func tieHash(rh uint64, id string) uint64 {
	h := fnvString(rh, id) ^ tieSalt
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// tieSalt seeds the tie order. Any value spreads candidates as well
// (TestDefaultSpreadsPrimaries); this one gives the two DAs of the
// project's tutorial (seed 003: da0 then da1 on two equal CNs) their
// first controller on the first CN, as the output the tutorial shows.
const tieSalt = 3

// requestHash is FNV-1a of "<seed>\x00<attempt>\x00", the prefix every
// candidate's tie hash continues from.
func requestHash(req Request) uint64 {
	var buf [24]byte
	h := fnvString(fnvOffset, req.Seed)
	h = fnvString(h, "\x00")
	h = fnvString(h, string(strconv.AppendInt(buf[:0], int64(req.Attempt), 10)))
	return fnvString(h, "\x00")
}

// spread picks n of the ranked candidates (len(rs) >= n), best first:
// first one per location and node not used yet, then one per node not
// used yet, then the best of the rest.
func spread(rs []ranked, n int, domain func(int) (location, node string)) []int {
	out := make([]int, 0, n)
	used := make([]bool, len(rs))
	locs, nodes := map[string]bool{}, map[string]bool{}
	pass := func(ok func(loc, node string) bool) {
		for k, r := range rs {
			if len(out) == n {
				return
			}
			if used[k] {
				continue
			}
			if loc, node := domain(r.i); ok(loc, node) {
				used[k], locs[loc], nodes[node] = true, true, true
				out = append(out, r.i)
			}
		}
	}
	pass(func(loc, node string) bool { return !locs[loc] && !nodes[node] })
	pass(func(_, node string) bool { return !nodes[node] })
	pass(func(_, _ string) bool { return true })
	return out
}

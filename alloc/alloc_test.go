package alloc_test

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/alloc"
)

const gib = 1 << 30

func disk(id, node, loc string, capacity, free uint64) alloc.Disk {
	return alloc.Disk{ID: id, Node: node, Location: loc, CapacityBytes: capacity, FreeBytes: free}
}

func ids[T any](p []int, items []T, id func(T) string) []string {
	out := []string{}
	for _, i := range p {
		out = append(out, id(items[i]))
	}
	return out
}

func diskIDs(p alloc.Placement, d []alloc.Disk) []string {
	return ids(p.Disks, d, func(x alloc.Disk) string { return x.ID })
}

func nodeIDs(p alloc.Placement, n []alloc.Node) []string {
	return ids(p.Nodes, n, func(x alloc.Node) string { return x.ID })
}

func TestDefaultPlaces(t *testing.T) {
	for _, tc := range []struct {
		name      string
		req       alloc.Request
		disks     []alloc.Disk
		nodes     []alloc.Node
		wantDisks []string // in any order when sorted is set
		wantNodes []string // in order: [0] is the primary
		sorted    bool
	}{
		{
			name: "emptiest disks first",
			req:  alloc.Request{VDs: 2, VDSizeBytes: gib, Controllers: 1},
			disks: []alloc.Disk{
				disk("a", "dn1", "", 16*gib, 2*gib), disk("b", "dn2", "", 16*gib, 16*gib),
				disk("c", "dn3", "", 16*gib, 15*gib), disk("d", "dn4", "", 16*gib, 8*gib),
			},
			nodes:     []alloc.Node{{ID: "cn1"}},
			wantDisks: []string{"b", "c"}, sorted: true, wantNodes: []string{"cn1"},
		},
		{
			name: "free space counts relative to capacity",
			req:  alloc.Request{VDs: 1, VDSizeBytes: gib, Controllers: 1},
			disks: []alloc.Disk{
				disk("big-but-full", "dn1", "", 1024*gib, 100*gib), disk("small-empty", "dn2", "", 10*gib, 10*gib),
			},
			nodes:     []alloc.Node{{ID: "cn1"}},
			wantDisks: []string{"small-empty"}, wantNodes: []string{"cn1"},
		},
		{
			name: "spread over locations before fuller disks",
			req:  alloc.Request{VDs: 2, VDSizeBytes: gib, Controllers: 1},
			disks: []alloc.Disk{
				disk("r1a", "dn1", "rack1", 16*gib, 16*gib), disk("r1b", "dn2", "rack1", 16*gib, 14*gib),
				disk("r2a", "dn3", "rack2", 16*gib, 4*gib),
			},
			nodes:     []alloc.Node{{ID: "cn1"}},
			wantDisks: []string{"r1a", "r2a"}, sorted: true, wantNodes: []string{"cn1"},
		},
		{
			name: "spread over nodes within a location",
			req:  alloc.Request{VDs: 2, VDSizeBytes: gib, Controllers: 1},
			disks: []alloc.Disk{
				disk("n1a", "dn1", "rack1", 16*gib, 16*gib), disk("n1b", "dn1", "rack1", 16*gib, 14*gib),
				disk("n2a", "dn2", "rack1", 16*gib, 3*gib),
			},
			nodes:     []alloc.Node{{ID: "cn1"}},
			wantDisks: []string{"n1a", "n2a"}, sorted: true, wantNodes: []string{"cn1"},
		},
		{
			name: "two VDs share a node when there is no other",
			req:  alloc.Request{VDs: 2, VDSizeBytes: gib, Controllers: 1},
			disks: []alloc.Disk{
				disk("a", "dn1", "", 16*gib, 16*gib), disk("b", "dn1", "", 16*gib, 16*gib),
			},
			nodes:     []alloc.Node{{ID: "cn1"}},
			wantDisks: []string{"a", "b"}, sorted: true, wantNodes: []string{"cn1"},
		},
		{
			name: "skips unavailable, unknown and too full disks",
			req:  alloc.Request{VDs: 1, VDSizeBytes: 2 * gib, Controllers: 1},
			disks: []alloc.Disk{
				{ID: "off", Node: "dn1", CapacityBytes: 16 * gib, FreeBytes: 16 * gib, Unavailable: true},
				disk("unknown", "dn2", "", 0, 0), disk("full", "dn3", "", 16*gib, gib),
				disk("ok", "dn4", "", 16*gib, 2*gib),
			},
			nodes:     []alloc.Node{{ID: "cn1"}},
			wantDisks: []string{"ok"}, wantNodes: []string{"cn1"},
		},
		{
			name:  "least-loaded nodes, primary first, spread over locations",
			req:   alloc.Request{VDs: 1, VDSizeBytes: gib, Controllers: 2},
			disks: []alloc.Disk{disk("a", "dn1", "", 16*gib, 16*gib)},
			nodes: []alloc.Node{
				{ID: "cn1", Location: "rack1", Load: 3}, {ID: "cn2", Location: "rack1", Load: 0},
				{ID: "cn3", Location: "rack1", Load: 1}, {ID: "cn4", Location: "rack2", Load: 5},
				{ID: "cn5", Unavailable: true},
			},
			wantDisks: []string{"a"}, wantNodes: []string{"cn2", "cn4"},
		},
		{
			name:  "without locations, least loaded wins",
			req:   alloc.Request{VDs: 1, VDSizeBytes: gib, Controllers: 3},
			disks: []alloc.Disk{disk("a", "dn1", "", 16*gib, 16*gib)},
			nodes: []alloc.Node{
				{ID: "cn1", Load: 3}, {ID: "cn2", Load: 2}, {ID: "cn3", Load: 1}, {ID: "cn4", Load: 0}, {ID: "cn5", Load: 0, Unavailable: true},
			},
			wantDisks: []string{"a"}, wantNodes: []string{"cn4", "cn3", "cn2"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := alloc.Default{}.Place(tc.req, tc.disks, tc.nodes)
			require.NoError(t, err)
			got := diskIDs(p, tc.disks)
			if tc.sorted {
				slices.Sort(got)
			}
			require.Equal(t, tc.wantDisks, got)
			require.Equal(t, tc.wantNodes, nodeIDs(p, tc.nodes))
		})
	}
}

func TestDefaultShortage(t *testing.T) {
	disks := []alloc.Disk{
		disk("a", "dn1", "", 16*gib, 16*gib), disk("b", "dn2", "", 16*gib, gib),
		{ID: "c", Node: "dn3", CapacityBytes: 16 * gib, FreeBytes: 16 * gib, Unavailable: true},
	}
	nodes := []alloc.Node{{ID: "cn1"}, {ID: "cn2", Unavailable: true}}
	for _, tc := range []struct {
		req  alloc.Request
		want string
	}{
		{alloc.Request{VDs: 2, VDSizeBytes: 2 * gib, Controllers: 1}, "alloc: need 2 online physical disks with 2147483648 bytes free, found 1"},
		{alloc.Request{VDs: 1, VDSizeBytes: 32 * gib, Controllers: 1}, "alloc: need 1 online physical disks with 34359738368 bytes free, found 0"},
		{alloc.Request{VDs: 1, VDSizeBytes: gib, Controllers: 2}, "alloc: need 2 online controller nodes, found 1"},
	} {
		_, err := alloc.Default{}.Place(tc.req, disks, nodes)
		require.ErrorIs(t, err, alloc.ErrExhausted)
		require.EqualError(t, err, tc.want)
		var sh *alloc.Shortage
		require.True(t, errors.As(err, &sh))
	}
	_, err := alloc.Default{}.Place(alloc.Request{VDs: -1}, disks, nodes)
	require.ErrorIs(t, err, alloc.ErrExhausted)
}

// TestDefaultTiesDependOnSeed: among equal candidates, different DAs (and
// retries of one DA) choose differently, and each choice is repeatable.
func TestDefaultTiesDependOnSeed(t *testing.T) {
	var disks []alloc.Disk
	for i := range 32 {
		disks = append(disks, disk(fmt.Sprintf("pd%02d", i), fmt.Sprintf("dn%02d", i), "", 16*gib, 16*gib))
	}
	nodes := []alloc.Node{{ID: "cn1"}, {ID: "cn2"}, {ID: "cn3"}, {ID: "cn4"}}
	first := map[string]bool{}
	for i := range 16 {
		req := alloc.Request{VDs: 2, VDSizeBytes: gib, Controllers: 2, Seed: fmt.Sprintf("da%d", i%8), Attempt: i / 8}
		p, err := alloc.Default{}.Place(req, disks, nodes)
		require.NoError(t, err)
		again, err := alloc.Default{}.Place(req, disks, nodes)
		require.NoError(t, err)
		require.Equal(t, p, again, "deterministic")
		first[diskIDs(p, disks)[0]] = true
	}
	require.Greater(t, len(first), 4, "ties spread over different disks")
}

// TestDefaultFillsEvenlyWithoutOvercommit places DAs one after another,
// reserving what each takes, until the cluster is full: no disk is ever
// over its capacity, fill levels stay within one VD of each other among
// equal disks, and the first refusal comes only when a DA cannot fit.
func TestDefaultFillsEvenlyWithoutOvercommit(t *testing.T) {
	var disks []alloc.Disk
	for i := range 12 {
		disks = append(disks, disk(fmt.Sprintf("pd%02d", i), fmt.Sprintf("dn%d", i%4), fmt.Sprintf("rack%d", i%2), 16*gib, 16*gib))
	}
	nodes := []alloc.Node{{ID: "cn1", Location: "rack0"}, {ID: "cn2", Location: "rack1"}, {ID: "cn3", Location: "rack0"}, {ID: "cn4", Location: "rack1"}}
	req := alloc.Request{VDs: 3, VDSizeBytes: gib, Controllers: 2}
	placed := 0
	for ; ; placed++ {
		req.Seed = fmt.Sprintf("da%d", placed)
		p, err := alloc.Default{}.Place(req, disks, nodes)
		if err != nil {
			require.ErrorIs(t, err, alloc.ErrExhausted)
			break
		}
		for _, i := range p.Disks {
			require.GreaterOrEqual(t, disks[i].FreeBytes, req.VDSizeBytes)
			disks[i].FreeBytes -= req.VDSizeBytes
		}
		for _, i := range p.Nodes {
			nodes[i].Load++
		}
		lo, hi := disks[0].FreeBytes, disks[0].FreeBytes
		for _, d := range disks {
			lo, hi = min(lo, d.FreeBytes), max(hi, d.FreeBytes)
		}
		require.LessOrEqual(t, hi-lo, uint64(2*gib), "after %d DAs", placed+1) // sixteenth buckets of 16 GiB are 1 GiB wide
	}
	require.Equal(t, 12*16/3, placed, "every byte is used before a refusal")
	loads := []int{nodes[0].Load, nodes[1].Load, nodes[2].Load, nodes[3].Load}
	require.LessOrEqual(t, slices.Max(loads)-slices.Min(loads), 1, "controllers balanced: %v", loads)
}

// TestDefaultIgnoresInputOrder: the answer names the same candidates
// whatever order they come in.
func TestDefaultIgnoresInputOrder(t *testing.T) {
	var disks []alloc.Disk
	for i := range 40 {
		disks = append(disks, disk(fmt.Sprintf("pd%02d", i), fmt.Sprintf("dn%d", i%10), fmt.Sprintf("rack%d", i%3), 16*gib, uint64(i%5+1)*gib))
	}
	var nodes []alloc.Node
	for i := range 8 {
		nodes = append(nodes, alloc.Node{ID: fmt.Sprintf("cn%d", i), Location: fmt.Sprintf("rack%d", i%3), Load: i % 2})
	}
	req := alloc.Request{VDs: 4, VDSizeBytes: gib, Controllers: 3, Seed: "da"}
	p, err := alloc.Default{}.Place(req, disks, nodes)
	require.NoError(t, err)
	wantD, wantN := diskIDs(p, disks), nodeIDs(p, nodes)
	r := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		r.Shuffle(len(disks), func(i, j int) { disks[i], disks[j] = disks[j], disks[i] })
		r.Shuffle(len(nodes), func(i, j int) { nodes[i], nodes[j] = nodes[j], nodes[i] })
		p, err := alloc.Default{}.Place(req, disks, nodes)
		require.NoError(t, err)
		require.Equal(t, wantD, diskIDs(p, disks))
		require.Equal(t, wantN, nodeIDs(p, nodes))
	}
}

// TestDefaultSpreadsPrimaries places DAs one after another on equal
// controller nodes: every node gets about its share of primaries (a
// node's failure moves that many DAs). With primaries ordered by ID
// among equal loads and FNV-1a ties, two controllers per DA put every
// primary on the even-numbered nodes.
func TestDefaultSpreadsPrimaries(t *testing.T) {
	disks := []alloc.Disk{disk("a", "dn1", "", 1<<50, 1<<50), disk("b", "dn2", "", 1<<50, 1<<50), disk("c", "dn3", "", 1<<50, 1<<50)}
	for _, cntlrs := range []int{2, 3} {
		var nodes []alloc.Node
		for i := range 10 {
			nodes = append(nodes, alloc.Node{ID: fmt.Sprintf("cn%d", i)})
		}
		const das = 10000
		primaries := make([]int, len(nodes))
		for i := range das {
			p, err := alloc.Default{}.Place(alloc.Request{VDs: 2, VDSizeBytes: gib, Controllers: cntlrs, Seed: fmt.Sprintf("da%d", i)}, disks, nodes)
			require.NoError(t, err)
			primaries[p.Nodes[0]]++
			for _, k := range p.Nodes {
				nodes[k].Load++
			}
		}
		fair := das / len(nodes)
		require.GreaterOrEqual(t, slices.Min(primaries), fair*85/100, "%d controllers: primaries per node %v", cntlrs, primaries)
		require.LessOrEqual(t, slices.Max(primaries), fair*115/100, "%d controllers: primaries per node %v", cntlrs, primaries)
	}
}

// TestDefaultTutorialPrimaries: the tutorial (seed 003) creates da0 then
// da1 on two equal CNs and shows both with their first controller on
// 192.168.0.16:9820; its output stays what it shows (see tieSalt).
func TestDefaultTutorialPrimaries(t *testing.T) {
	disks := []alloc.Disk{disk("pd0", "dn0", "", 64<<20, 64<<20), disk("pd1", "dn1", "", 64<<20, 64<<20)}
	for i, da := range []string{"da0", "da1"} {
		nodes := []alloc.Node{{ID: "192.168.0.16:9820", Load: i}, {ID: "192.168.0.17:9820", Load: i}}
		p, err := alloc.Default{}.Place(alloc.Request{VDs: 2, VDSizeBytes: 8 << 20, Controllers: 2, Seed: da}, disks, nodes)
		require.NoError(t, err)
		require.Equal(t, []string{"192.168.0.16:9820", "192.168.0.17:9820"}, nodeIDs(p, nodes), da)
	}
}

// TestDefaultAvoid: how Node.Avoid and Disk.Avoid rank candidates.
func TestDefaultAvoid(t *testing.T) {
	cn := func(id string, load int, avoid bool) alloc.Node {
		return alloc.Node{ID: id, Location: id, Load: load, Avoid: avoid}
	}
	avoided := func(d alloc.Disk) alloc.Disk { d.Avoid = true; return d }
	for _, tc := range []struct {
		name      string
		nodes     []alloc.Node
		disks     []alloc.Disk
		wantNodes []string
		wantDisks []string
	}{
		{
			name:      "below AvoidMinLoad loads rank exactly",
			nodes:     []alloc.Node{cn("a", 15, true), cn("b", 15, false), cn("c", 14, true)},
			wantNodes: []string{"c"},
		},
		{
			name:      "below AvoidMinLoad ties break by seed as without marks",
			nodes:     []alloc.Node{cn("a", 15, true), cn("b", 15, false)},
			wantNodes: []string{"a", "b"},
		},
		{
			name:      "at AvoidMinLoad an avoided node loses a tie",
			nodes:     []alloc.Node{cn("a", 16, true), cn("b", 16, false), cn("c", 16, true)},
			wantNodes: []string{"b"},
		},
		{
			name:      "own node up to an eighth more loaded wins",
			nodes:     []alloc.Node{cn("a", 80, true), cn("b", 89, false)},
			wantNodes: []string{"b"},
		},
		{
			name:      "own node more than an eighth more loaded loses",
			nodes:     []alloc.Node{cn("a", 80, true), cn("b", 91, false)},
			wantNodes: []string{"a"},
		},
		{
			name:      "among avoided nodes loads rank",
			nodes:     []alloc.Node{cn("a", 100, true), cn("b", 99, true), cn("c", 120, false)},
			wantNodes: []string{"b"},
		},
		{
			name:      "no marks: least loaded",
			nodes:     []alloc.Node{cn("a", 100, false), cn("b", 99, false), cn("c", 120, false)},
			wantNodes: []string{"b"},
		},
		{
			name:      "an avoided empty disk ties with an own one a sixteenth fuller",
			disks:     []alloc.Disk{avoided(disk("a", "dn1", "", 16*gib, 16*gib)), disk("b", "dn2", "", 16*gib, 15*gib), disk("c", "dn3", "", 16*gib, 14*gib)},
			wantDisks: []string{"a", "b"},
		},
		{
			name:      "an own disk beats an avoided one of its rank",
			disks:     []alloc.Disk{avoided(disk("a", "dn1", "", 16*gib, 16*gib)), disk("b", "dn2", "", 16*gib, 16*gib)},
			wantDisks: []string{"b"},
		},
		{
			name:      "an avoided disk beats an own one two ranks fuller",
			disks:     []alloc.Disk{avoided(disk("a", "dn1", "", 16*gib, 16*gib)), disk("b", "dn2", "", 16*gib, 14*gib)},
			wantDisks: []string{"a"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			disks, nodes := tc.disks, tc.nodes
			if disks == nil {
				disks = []alloc.Disk{disk("pd", "dn", "", 16*gib, 16*gib)}
			}
			if nodes == nil {
				nodes = []alloc.Node{{ID: "cn"}}
			}
			// Over many seeds the first choice is always one of the wanted.
			gotN, gotD := map[string]bool{}, map[string]bool{}
			for i := range 64 {
				p, err := alloc.Default{}.Place(alloc.Request{VDs: 1, VDSizeBytes: gib, Controllers: 1, Seed: fmt.Sprintf("da%d", i)}, disks, nodes)
				require.NoError(t, err)
				gotN[nodeIDs(p, nodes)[0]] = true
				gotD[diskIDs(p, disks)[0]] = true
			}
			if tc.wantNodes != nil {
				require.ElementsMatch(t, tc.wantNodes, slices.Collect(maps.Keys(gotN)))
			}
			if tc.wantDisks != nil {
				require.ElementsMatch(t, tc.wantDisks, slices.Collect(maps.Keys(gotD)))
			}
		})
	}
}

// TestDefaultAvoidSharesOut: two placers that place in turn on the same
// nodes, each avoiding the other's half (as vda's Clusters do), keep to
// their halves once loads pass AvoidMinLoad, and loads stay within an
// eighth of each other.
func TestDefaultAvoidSharesOut(t *testing.T) {
	disks := []alloc.Disk{disk("a", "dn1", "", 1<<50, 1<<50), disk("b", "dn2", "", 1<<50, 1<<50)}
	loads := make([]int, 10)
	view := func(placer int) []alloc.Node {
		nodes := make([]alloc.Node, len(loads))
		for i, l := range loads {
			nodes[i] = alloc.Node{ID: fmt.Sprintf("cn%d", i), Location: fmt.Sprintf("rack%d", i/2), Load: l, Avoid: i%2 != placer}
		}
		return nodes
	}
	foreign := 0
	for i := range 2000 {
		placer := i % 2
		nodes := view(placer)
		p, err := alloc.Default{}.Place(alloc.Request{VDs: 1, VDSizeBytes: gib, Controllers: 2, Seed: fmt.Sprintf("da%d", i)}, disks, nodes)
		require.NoError(t, err)
		for _, k := range p.Nodes {
			if slices.Min(loads) >= alloc.AvoidMinLoad && nodes[k].Avoid {
				foreign++
			}
			loads[k]++
		}
	}
	require.Zero(t, foreign, "controllers placed on the other placer's half past AvoidMinLoad")
	require.LessOrEqual(t, slices.Max(loads)-slices.Min(loads), slices.Max(loads)/alloc.AvoidDivisor+1, "loads %v", loads)
}

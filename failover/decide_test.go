package failover

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func threeCntlrs() []Controller {
	return []Controller{
		{ID: "c0", Idx: 0, CNID: "cn0", Primary: true},
		{ID: "c1", Idx: 1, CNID: "cn1"},
		{ID: "c2", Idx: 2, CNID: "cn2"},
	}
}

func TestChoosePrimary(t *testing.T) {
	cases := map[string]struct {
		nodes map[string]Node
		want  string
		err   error
	}{
		"prefers another failure domain": {
			nodes: map[string]Node{
				"cn0": {ID: "cn0", Location: "rack1"},
				"cn1": {ID: "cn1", Location: "rack1", Healthy: true},
				"cn2": {ID: "cn2", Location: "rack2", Healthy: true, Load: 5},
			},
			want: "c2",
		},
		"then the least loaded node": {
			nodes: map[string]Node{
				"cn0": {ID: "cn0", Location: "rack1"},
				"cn1": {ID: "cn1", Location: "rack2", Healthy: true, Load: 3},
				"cn2": {ID: "cn2", Location: "rack3", Healthy: true, Load: 1},
			},
			want: "c2",
		},
		"then the lowest index": {
			nodes: map[string]Node{
				"cn0": {ID: "cn0"},
				"cn1": {ID: "cn1", Healthy: true},
				"cn2": {ID: "cn2", Healthy: true},
			},
			want: "c1",
		},
		"skips unhealthy and unknown nodes": {
			nodes: map[string]Node{
				"cn0": {ID: "cn0"},
				"cn1": {ID: "cn1", Healthy: false},
				"cn2": {ID: "cn2", Healthy: true, Load: 100},
			},
			want: "c2",
		},
		"same domain is still better than nothing": {
			nodes: map[string]Node{
				"cn0": {ID: "cn0", Location: "r"},
				"cn1": {ID: "cn1", Location: "r", Healthy: true},
			},
			want: "c1",
		},
		"no healthy secondary": {
			nodes: map[string]Node{"cn0": {ID: "cn0"}, "cn1": {ID: "cn1"}},
			err:   ErrNoHealthySecondary,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			d, err := ChoosePrimary(threeCntlrs(), tc.nodes, 7)
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, d.NewPrimary.ID)
			require.Equal(t, "c0", d.OldPrimary.ID)
			require.Equal(t, uint64(8), d.Epoch)
			applied := d.Apply(threeCntlrs())
			primaries := 0
			for _, c := range applied {
				if c.Primary {
					primaries++
					require.Equal(t, tc.want, c.ID)
				}
			}
			require.Equal(t, 1, primaries)
		})
	}
}

// Held-down nodes are skipped; when only held-down nodes are left the
// array waits, told for how long.
func TestChoosePrimaryHoldDown(t *testing.T) {
	cases := map[string]struct {
		nodes map[string]Node
		want  string
		held  []string
		wait  time.Duration
		err   error
	}{
		"skips a held-down node even if better placed": {
			nodes: map[string]Node{
				"cn0": {ID: "cn0", Location: "r1"},
				"cn1": {ID: "cn1", Location: "r2", Healthy: true, HoldDown: time.Second},
				"cn2": {ID: "cn2", Location: "r1", Healthy: true, Load: 9},
			},
			want: "c2",
		},
		"waits for the shortest hold-down": {
			nodes: map[string]Node{
				"cn0": {ID: "cn0"},
				"cn1": {ID: "cn1", Healthy: true, HoldDown: 3 * time.Second},
				"cn2": {ID: "cn2", Healthy: true, HoldDown: time.Second},
			},
			held: []string{"cn1", "cn2"},
			wait: time.Second,
		},
		"a held-down node that is not healthy is not waited for": {
			nodes: map[string]Node{
				"cn0": {ID: "cn0"},
				"cn1": {ID: "cn1", HoldDown: 3 * time.Second},
				"cn2": {ID: "cn2", Healthy: true, HoldDown: time.Second},
			},
			held: []string{"cn2"},
			wait: time.Second,
		},
		"nothing to wait for": {
			nodes: map[string]Node{"cn0": {ID: "cn0"}, "cn1": {ID: "cn1", HoldDown: time.Second}},
			err:   ErrNoHealthySecondary,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			d, err := ChoosePrimary(threeCntlrs(), tc.nodes, 1)
			switch {
			case tc.want != "":
				require.NoError(t, err)
				require.Equal(t, tc.want, d.NewPrimary.ID)
			case tc.err != nil:
				require.ErrorIs(t, err, tc.err)
				require.False(t, errors.Is(err, ErrHeldDown))
			default:
				require.ErrorIs(t, err, ErrHeldDown)
				require.False(t, errors.Is(err, ErrNoHealthySecondary))
				var he *HeldDownError
				require.ErrorAs(t, err, &he)
				require.Equal(t, tc.held, he.Nodes)
				require.Equal(t, tc.wait, he.Wait)
				require.Contains(t, err.Error(), "waiting for node "+tc.held[0])
			}
		})
	}
}

// The whole cycle on one clock: cn0 (primary) fails, the array moves to
// cn1; cn0 comes back; cn1 fails. The array waits for cn0 until cn0 has
// been healthy for HoldDown, and moves back then, not before.
func TestArrayWaitsForHeldDownNode(t *testing.T) {
	cfg := DefaultConfig()
	tr, err := NewTracker(cfg)
	require.NoError(t, err)
	cntlrs := []Controller{{ID: "c0", CNID: "cn0", Primary: true}, {ID: "c1", Idx: 1, CNID: "cn1"}}
	nodesAt := func(at time.Time) map[string]Node {
		out := map[string]Node{}
		for _, id := range []string{"cn0", "cn1"} {
			out[id] = Node{ID: id, Healthy: tr.State(id) == Healthy, HoldDown: tr.HoldDown(id, at)}
		}
		return out
	}
	probe := func(node string, at int, ok bool) {
		tr.Observe(Probe{Node: node, At: ms(at), OK: ok, Instance: "x"})
	}
	probe("cn0", 0, true)
	probe("cn1", 0, true)
	for _, at := range []int{400, 800, 1200} {
		probe("cn0", at, false)
	}
	require.Equal(t, Failed, tr.State("cn0"))
	d, err := ChoosePrimary(cntlrs, nodesAt(ms(1200)), 1)
	require.NoError(t, err)
	require.Equal(t, "c1", d.NewPrimary.ID)
	cntlrs = d.Apply(cntlrs)

	probe("cn0", 3000, true) // back
	for _, at := range []int{3400, 3800, 4200} {
		probe("cn1", at, false)
	}
	require.True(t, NeedsFailover(cntlrs, nodesAt(ms(4200))))
	_, err = ChoosePrimary(cntlrs, nodesAt(ms(4200)), 2)
	var he *HeldDownError
	require.ErrorAs(t, err, &he)
	require.Equal(t, []string{"cn0"}, he.Nodes)
	require.Equal(t, 3000*time.Millisecond+cfg.HoldDown-4200*time.Millisecond, he.Wait)
	_, err = ChoosePrimary(cntlrs, nodesAt(ms(4200).Add(he.Wait-time.Millisecond)), 2)
	require.ErrorIs(t, err, ErrHeldDown, "1 ms early")
	d, err = ChoosePrimary(cntlrs, nodesAt(ms(4200).Add(he.Wait)), 2)
	require.NoError(t, err)
	require.Equal(t, "c0", d.NewPrimary.ID)
	require.Equal(t, uint64(3), d.Epoch)
}

// A secondary placed on the same node as the failed primary must never be
// promoted, even if the node map claims it healthy (stale data).
func TestChoosePrimaryNeverSameNode(t *testing.T) {
	cntlrs := []Controller{{ID: "p", CNID: "cn0", Primary: true}, {ID: "s", Idx: 1, CNID: "cn0"}}
	_, err := ChoosePrimary(cntlrs, map[string]Node{"cn0": {ID: "cn0", Healthy: true}}, 1)
	require.ErrorIs(t, err, ErrNoHealthySecondary)
}

func TestNeedsFailover(t *testing.T) {
	nodes := map[string]Node{"cn0": {Healthy: true}, "cn1": {Healthy: true}}
	require.False(t, NeedsFailover(threeCntlrs(), nodes))
	nodes["cn0"] = Node{Healthy: false}
	require.True(t, NeedsFailover(threeCntlrs(), nodes))
	delete(nodes, "cn0")
	require.True(t, NeedsFailover(threeCntlrs(), nodes))
	require.False(t, NeedsFailover([]Controller{{ID: "x"}}, nodes), "no primary: nothing to fail over")
	_, err := ChoosePrimary([]Controller{{ID: "x"}}, nodes, 1)
	require.ErrorIs(t, err, ErrNoPrimary)
}

func TestSwitchover(t *testing.T) {
	nodes := map[string]Node{"cn0": {Healthy: true}, "cn1": {Healthy: true}, "cn2": {Healthy: false}}
	d, err := Switchover(threeCntlrs(), nodes, 1, 3)
	require.NoError(t, err)
	require.Equal(t, "c1", d.NewPrimary.ID)
	require.Equal(t, uint64(4), d.Epoch)
	for idx, msg := range map[int]string{0: "already the primary", 2: "not healthy", 9: "no controller with index 9"} {
		_, err := Switchover(threeCntlrs(), nodes, idx, 3)
		require.ErrorIs(t, err, ErrBadTarget)
		require.Contains(t, err.Error(), msg)
	}
}

// FuzzChoosePrimary: whatever the node map, the choice is a healthy
// secondary on another node that is not held down, and the epoch always
// grows; it waits only when every healthy secondary is held down.
func FuzzChoosePrimary(f *testing.F) {
	f.Add(uint8(3), uint16(0b101), uint16(0b011), uint16(0b100), uint64(1))
	f.Fuzz(func(t *testing.T, n uint8, healthy, loc, held uint16, epoch uint64) {
		count := int(n%6) + 1
		var cntlrs []Controller
		nodes := map[string]Node{}
		for i := 0; i < count; i++ {
			id := fmt.Sprintf("cn%d", i)
			cntlrs = append(cntlrs, Controller{ID: fmt.Sprint(i), Idx: i, CNID: id, Primary: i == 0})
			nodes[id] = Node{ID: id, Healthy: healthy&(1<<i) != 0, Location: fmt.Sprint(loc >> i & 1), Load: i % 3,
				HoldDown: time.Duration(held>>i&1) * time.Duration(i) * time.Second}
		}
		d, err := ChoosePrimary(cntlrs, nodes, epoch)
		var he *HeldDownError
		if errors.As(err, &he) {
			if he.Wait <= 0 || len(he.Nodes) == 0 {
				t.Fatalf("held down %+v", he)
			}
			for _, c := range cntlrs[1:] {
				if n := nodes[c.CNID]; n.Healthy && n.HoldDown == 0 {
					t.Fatalf("waits although %s is eligible", c.CNID)
				}
			}
			return
		}
		if err != nil {
			for _, c := range cntlrs[1:] {
				if nodes[c.CNID].Healthy {
					t.Fatalf("error %v although %s is healthy", err, c.CNID)
				}
			}
			return
		}
		if n := nodes[d.NewPrimary.CNID]; d.NewPrimary.Primary || d.NewPrimary.CNID == "cn0" || !n.Healthy || n.HoldDown > 0 {
			t.Fatalf("bad choice %+v", d.NewPrimary)
		}
		if d.Epoch != epoch+1 {
			t.Fatalf("epoch %d after %d", d.Epoch, epoch)
		}
	})
}

// A held-down node takes the array when the primary's node is dead (it
// failed on refusals), and only then.
func TestChoosePrimaryDeadPrimaryTakesHeldDown(t *testing.T) {
	cntlrs := []Controller{{ID: "c0", Idx: 0, CNID: "cn0", Primary: true}, {ID: "c1", Idx: 1, CNID: "cn1"}}
	nodes := map[string]Node{"cn0": {ID: "cn0"}, "cn1": {ID: "cn1", Healthy: true, HoldDown: 3 * time.Second}}
	_, err := ChoosePrimary(cntlrs, nodes, 4)
	require.ErrorIs(t, err, ErrHeldDown, "a silent primary waits")
	nodes["cn0"] = Node{ID: "cn0", Dead: true}
	d, err := ChoosePrimary(cntlrs, nodes, 4)
	require.NoError(t, err)
	require.Equal(t, "c1", d.NewPrimary.ID)
	require.EqualValues(t, 5, d.Epoch)
	nodes["cn1"] = Node{ID: "cn1", HoldDown: 3 * time.Second}
	_, err = ChoosePrimary(cntlrs, nodes, 4)
	require.ErrorIs(t, err, ErrNoHealthySecondary, "never an unhealthy one")
}

func TestTrackerFailedBy(t *testing.T) {
	cfg := DefaultConfig()
	tr, err := NewTracker(cfg)
	require.NoError(t, err)
	at := time.Unix(1000, 0)
	tr.Observe(Probe{Node: "a", At: at, OK: true})
	tr.Observe(Probe{Node: "b", At: at, OK: true})
	_, failed := tr.FailedBy("a")
	require.False(t, failed)
	for i := range cfg.MissThreshold {
		tr.Observe(Probe{Node: "a", At: at.Add(time.Duration(i+1) * cfg.Interval), Miss: Refused})
	}
	cause, failed := tr.FailedBy("a")
	require.True(t, failed)
	require.Equal(t, Refused, cause)
	tr.Observe(Probe{Node: "b", At: at.Add(cfg.SlowTimeout), Miss: Silent})
	cause, failed = tr.FailedBy("b")
	require.True(t, failed)
	require.Equal(t, Silent, cause)
	tr.Observe(Probe{Node: "b", At: at.Add(cfg.SlowTimeout + time.Second), Miss: Refused})
	cause, _ = tr.FailedBy("b")
	require.Equal(t, Silent, cause, "the evidence that failed it")
	tr.Observe(Probe{Node: "a", At: at.Add(time.Minute), OK: true})
	_, failed = tr.FailedBy("a")
	require.False(t, failed)
}

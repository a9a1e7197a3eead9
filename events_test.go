package vda_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/store"
)

// eventStores are the backends the event tests run on.
var eventStores = []struct {
	name string
	open func(testing.TB) store.Store
}{{"memstore", newStore}, {"etcd", openEmbedded}}

// nextEvent reads the stream's next event; the bound only turns a hang
// into a failure.
func nextEvent(t *testing.T, s *vda.EventStream) vda.Event {
	t.Helper()
	select {
	case ev, ok := <-s.Events():
		if !ok {
			t.Fatalf("stream ended: %v", s.Err())
		}
		return ev
	case <-time.After(time.Minute):
		t.Fatal("no event within a minute")
		return vda.Event{}
	}
}

// until reads events until one of kind and name has type typ, and
// returns it with what came before it.
func until(t *testing.T, s *vda.EventStream, kind vda.EventKind, name string, typ vda.EventType) (vda.Event, []vda.Event) {
	t.Helper()
	var seen []vda.Event
	for {
		ev := nextEvent(t, s)
		if ev.Kind == kind && ev.Name == name && ev.Type == typ {
			return ev, seen
		}
		seen = append(seen, ev)
	}
}

// moveDA rewrites disk array name's record as the monitor's failover does:
// the primary moves to controller idx and the epoch grows.
func moveDA(t *testing.T, s store.Store, name string, idx int) {
	t.Helper()
	ctx := context.Background()
	kv, err := s.Get(ctx, vda.KeyDA(name))
	require.NoError(t, err)
	var da vda.DiskArray
	require.NoError(t, json.Unmarshal(kv.Value, &da))
	for i := range da.Cntlrs {
		da.Cntlrs[i].Primary = da.Cntlrs[i].Idx == idx
		if da.Cntlrs[i].Primary {
			da.PrimaryCntlrID = da.Cntlrs[i].ID
		}
	}
	da.Epoch++
	b, err := json.Marshal(da)
	require.NoError(t, err)
	res, err := s.Txn(ctx, store.Txn{Conds: []store.Cond{{Key: kv.Key, ModRevision: kv.ModRevision}}, Ops: []store.Op{{Key: kv.Key, Value: b}}})
	require.NoError(t, err)
	require.True(t, res.Succeeded)
}

func healthyParts(ids []string, epoch int64) map[string]vda.Status {
	parts := map[string]vda.Status{}
	for _, id := range ids {
		parts[id] = vda.Status{Health: vda.HealthHealthy, Epoch: epoch}
	}
	return parts
}

func TestWatchEvents(t *testing.T) {
	for _, b := range eventStores {
		t.Run(b.name, func(t *testing.T) { testWatchEvents(t, b.open(t)) })
	}
}

// testWatchEvents drives every kind of object through its life and checks
// the events a watch from now reports, then that a watch resumed from a
// revision reports the same changes.
func testWatchEvents(t *testing.T, s store.Store) {
	ctx := context.Background()
	c := newCluster(t, s)
	all, err := c.WatchEvents(ctx, vda.WatchOptions{})
	require.NoError(t, err)
	defer all.Close()
	daOnly, err := c.WatchEvents(ctx, vda.WatchOptions{Kinds: []vda.EventKind{vda.KindDA}})
	require.NoError(t, err)
	defer daOnly.Close()

	tutorialCluster(t, c)
	dn, _ := until(t, all, vda.KindDN, "192.168.0.14:9720", vda.EventCreated)
	require.Positive(t, dn.Revision)
	pd, _ := until(t, all, vda.KindPD, "pd0", vda.EventCreated)
	require.Equal(t, "192.168.0.14:9720", pd.Parent)
	until(t, all, vda.KindCN, "192.168.0.17:9820", vda.EventCreated)
	putStatus(t, s, vda.KeyCN("192.168.0.16:9820"), vda.Status{Health: vda.HealthHealthy})
	cn, _ := until(t, all, vda.KindCN, "192.168.0.16:9820", vda.EventHealth)
	require.Equal(t, vda.HealthHealthy, cn.Health)
	require.Equal(t, vda.HealthUnknown, cn.PrevHealth)

	da, err := c.CreateDiskArray(ctx, vda.DiskArraySpec{Name: "da0", CntlrCount: 2, SizeBytes: 32 << 20, PhysicalSizeBytes: 32 << 20,
		Conf: vda.DAConf{StripeCount: 2, StripeSizeKB: 64}})
	require.NoError(t, err)
	created, _ := until(t, all, vda.KindDA, "da0", vda.EventCreated)

	// The DA's health at its epoch, with its parts.
	ids := []string{da.Cntlrs[0].ID, da.Cntlrs[1].ID, da.VDs[0].ID, da.VDs[1].ID}
	degraded := healthyParts(ids, 1)
	degraded[da.VDs[1].ID] = vda.Status{Health: vda.HealthFailed, ErrorMsg: "disk node failed"}
	putStatus(t, s, vda.KeyDA("da0"), vda.Status{Health: vda.HealthDegraded, ErrorMsg: "vd 1: disk node failed", Parts: degraded})
	ev, _ := until(t, all, vda.KindDA, "da0", vda.EventHealth)
	require.Equal(t, vda.HealthDegraded, ev.Health)
	require.Equal(t, "vd 1: disk node failed", ev.Message)
	require.Equal(t, [2]int{3, 4}, [2]int{ev.HealthyParts, ev.Parts})
	putStatus(t, s, vda.KeyDA("da0"), vda.Status{Health: vda.HealthHealthy, Parts: healthyParts(ids, 1)})
	ev, _ = until(t, all, vda.KindDA, "da0", vda.EventHealth)
	require.Equal(t, [2]vda.Health{vda.HealthDegraded, vda.HealthHealthy}, [2]vda.Health{ev.PrevHealth, ev.Health})
	require.Equal(t, [2]int{4, 4}, [2]int{ev.HealthyParts, ev.Parts})
	// The same report again (a newer UpdatedAt) is no event.
	putStatus(t, s, vda.KeyDA("da0"), vda.Status{Health: vda.HealthHealthy, Parts: healthyParts(ids, 1), UpdatedAt: time.Now()})

	exp, err := c.CreateExporter(ctx, vda.ExporterSpec{DAName: "da0", Name: "exp0", InitiatorNQN: "nqn.2016-06.io.spdk:host0"})
	require.NoError(t, err)
	ev, seen := until(t, all, vda.KindExp, "exp0", vda.EventCreated)
	require.Equal(t, "da0", ev.Parent)
	require.Equal(t, vda.KindDA, seen[len(seen)-1].Kind, "its exporter count, in the same transaction")
	require.Equal(t, vda.EventChanged, seen[len(seen)-1].Type)
	for _, e := range seen {
		require.NotEqual(t, vda.EventHealth, e.Type, "the repeated report: %+v", e)
	}
	ports := map[string]vda.Status{exp.Ports[0].ID: {Health: vda.HealthHealthy, Epoch: 1},
		exp.Ports[1].ID: {Health: vda.HealthFailed, ErrorMsg: "no listener", Epoch: 1}}
	putStatus(t, s, vda.KeyExp("da0", "exp0"), vda.Status{Health: vda.HealthDegraded, ErrorMsg: "controller 1: no listener", Parts: ports})
	ev, _ = until(t, all, vda.KindExp, "exp0", vda.EventHealth)
	require.Equal(t, [2]int{1, 2}, [2]int{ev.HealthyParts, ev.Parts}, "healthy on 1 of 2 controllers")
	putStatus(t, s, vda.KeyExp("da0", "exp0"), vda.Status{Health: vda.HealthHealthy,
		Parts: healthyParts([]string{exp.Ports[0].ID, exp.Ports[1].ID}, 1)})
	ev, _ = until(t, all, vda.KindExp, "exp0", vda.EventHealth)
	require.Equal(t, vda.HealthHealthy, ev.Health)
	require.Equal(t, [2]int{2, 2}, [2]int{ev.HealthyParts, ev.Parts})
	// A resize the primary applied: the health stays, the size is new.
	putStatus(t, s, vda.KeyDA("da0"), vda.Status{Health: vda.HealthHealthy, Parts: healthyParts(ids, 1), AppliedSizeBytes: 64 << 20})
	ev, _ = until(t, all, vda.KindDA, "da0", vda.EventHealth)
	require.Equal(t, [2]vda.Health{vda.HealthHealthy, vda.HealthHealthy}, [2]vda.Health{ev.PrevHealth, ev.Health})
	require.EqualValues(t, 64<<20, ev.AppliedSizeBytes)

	// A switchover, then a failover as the monitor commits one.
	_, err = c.SwitchoverDiskArray(ctx, "da0", 1)
	require.NoError(t, err)
	ev, _ = until(t, all, vda.KindDA, "da0", vda.EventSwitchover)
	require.Equal(t, &vda.PrimaryMove{FromCntlrIdx: 0, FromCN: "192.168.0.16:9820", ToCntlrIdx: 1, ToCN: "192.168.0.17:9820", Epoch: 2}, ev.Move)
	// The old epoch's report no longer counts: both exporter ports are
	// stale at epoch 2.
	putStatus(t, s, vda.KeyExp("da0", "exp0"), vda.Status{Health: vda.HealthHealthy,
		Parts: healthyParts([]string{exp.Ports[0].ID, exp.Ports[1].ID}, 1), UpdatedAt: time.Now()})
	ev, _ = until(t, all, vda.KindExp, "exp0", vda.EventHealth)
	require.Equal(t, vda.HealthDegraded, ev.Health)
	require.Equal(t, 0, ev.HealthyParts)
	moveDA(t, s, "da0", 0)
	ev, _ = until(t, all, vda.KindDA, "da0", vda.EventFailover)
	require.Equal(t, &vda.PrimaryMove{FromCntlrIdx: 1, FromCN: "192.168.0.17:9820", ToCntlrIdx: 0, ToCN: "192.168.0.16:9820", Epoch: 3}, ev.Move)

	_, err = c.CreateSnapshot(ctx, vda.SnapshotSpec{DAName: "da0", Name: "snap0"})
	require.NoError(t, err)
	until(t, all, vda.KindSnap, "snap0", vda.EventCreated)
	putStatus(t, s, vda.KeySnap("da0", "snap0"), vda.Status{Health: vda.HealthHealthy})
	ev, _ = until(t, all, vda.KindSnap, "snap0", vda.EventHealth)
	require.Equal(t, "da0", ev.Parent)
	_, err = c.CreateClone(ctx, vda.CloneSpec{DAName: "da0", Name: "clone0", SnapName: "snap0"})
	require.NoError(t, err)
	until(t, all, vda.KindClone, "clone0", vda.EventCreated)
	require.NoError(t, c.DeleteClone(ctx, "da0", "clone0"))
	until(t, all, vda.KindClone, "clone0", vda.EventDeleted)
	require.NoError(t, c.DeleteSnapshot(ctx, "da0", "snap0"))
	until(t, all, vda.KindSnap, "snap0", vda.EventDeleted)
	require.NoError(t, c.DeleteExporter(ctx, "da0", "exp0"))
	until(t, all, vda.KindExp, "exp0", vda.EventDeleted)
	require.NoError(t, c.DeleteDiskArray(ctx, "da0"))
	last, _ := until(t, all, vda.KindDA, "da0", vda.EventDeleted)
	require.NoError(t, c.DeletePhysicalDisk(ctx, "192.168.0.15:9720", "pd0"))
	until(t, all, vda.KindPD, "pd0", vda.EventDeleted)

	// Resumed from the DA's creation, a watch reports the same changes
	// (and, knowing the DA from its creation, the same transitions and
	// moves) as one that ran all along.
	var want []vda.Event
	for ev := nextEvent(t, daOnly); ; ev = nextEvent(t, daOnly) {
		if ev.Revision >= created.Revision {
			want = append(want, ev)
		}
		if ev.Revision == last.Revision {
			break
		}
	}
	resumed, err := c.WatchEvents(ctx, vda.WatchOptions{FromRevision: created.Revision, Kinds: []vda.EventKind{vda.KindDA}})
	require.NoError(t, err)
	defer resumed.Close()
	require.Equal(t, created.Revision, resumed.Start())
	var got []vda.Event
	for len(got) < len(want) {
		got = append(got, nextEvent(t, resumed))
	}
	require.Equal(t, want, got)
	var types []vda.EventType
	for _, ev := range got {
		types = append(types, ev.Type)
	}
	require.Subset(t, types, []vda.EventType{vda.EventCreated, vda.EventHealth, vda.EventSwitchover, vda.EventFailover, vda.EventDeleted})
}

func TestWatchEventsFilters(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	c := newCluster(t, s)
	tutorialCluster(t, c)
	exps, err := c.WatchEvents(ctx, vda.WatchOptions{DAName: "da1", Kinds: []vda.EventKind{vda.KindExp}})
	require.NoError(t, err)
	defer exps.Close()
	das, err := c.WatchEvents(ctx, vda.WatchOptions{DAName: "da1"})
	require.NoError(t, err)
	defer das.Close()
	for _, name := range []string{"da0", "da1"} {
		_, err := c.CreateDiskArray(ctx, vda.DiskArraySpec{Name: name, CntlrCount: 2, SizeBytes: 16 << 20, PhysicalSizeBytes: 16 << 20,
			Conf: vda.DAConf{StripeCount: 1, StripeSizeKB: 64}})
		require.NoError(t, err)
		_, err = c.CreateExporter(ctx, vda.ExporterSpec{DAName: name, Name: "exp0", InitiatorNQN: "nqn.2016-06.io.spdk:host0"})
		require.NoError(t, err)
	}
	_, err = c.SwitchoverDiskArray(ctx, "da1", 1)
	require.NoError(t, err)
	exp, err := c.GetExporter(ctx, "da1", "exp0")
	require.NoError(t, err)
	// Ports reported at epoch 1, after the switchover to epoch 2: the
	// exporter-only stream still knows da1's epoch.
	putStatus(t, s, vda.KeyExp("da1", "exp0"), vda.Status{Health: vda.HealthHealthy,
		Parts: healthyParts([]string{exp.Ports[0].ID, exp.Ports[1].ID}, 1)})

	ev := nextEvent(t, exps)
	require.Equal(t, vda.Event{Revision: ev.Revision, Kind: vda.KindExp, Type: vda.EventCreated, Name: "exp0", Parent: "da1"}, ev)
	ev = nextEvent(t, exps)
	require.Equal(t, vda.EventHealth, ev.Type)
	require.Equal(t, vda.HealthDegraded, ev.Health, "stale at epoch 2")
	require.Equal(t, [2]int{0, 2}, [2]int{ev.HealthyParts, ev.Parts})

	var got []string
	for len(got) < 5 {
		ev := nextEvent(t, das)
		got = append(got, fmt.Sprintf("%s %s/%s %s", ev.Kind, ev.Parent, ev.Name, ev.Type))
	}
	require.Equal(t, []string{"da /da1 created", "da /da1 changed", "exp da1/exp0 created", "da /da1 switchover", "exp da1/exp0 health"}, got)
}

func TestWatchEventsErrors(t *testing.T) {
	ctx := context.Background()
	for _, b := range eventStores {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t)
			c := newCluster(t, s)
			tutorialCluster(t, c)
			rev, err := s.Revision(ctx)
			require.NoError(t, err)
			for _, opt := range []vda.WatchOptions{
				{FromRevision: -1}, {FromRevision: rev + 2}, {Kinds: []vda.EventKind{"vd"}},
				{Kinds: []vda.EventKind{vda.KindDA, vda.KindDA}}, {DAName: "no/such"}, {Buffer: -1}, {Buffer: vda.MaxEventBuffer + 1},
			} {
				_, err := c.WatchEvents(ctx, opt)
				require.ErrorIs(t, err, vda.ErrInvalidArgument, "%+v", opt)
			}

			// A compacted revision: watch from now instead.
			require.NoError(t, s.(store.Compactor).Compact(ctx, rev))
			_, err = c.WatchEvents(ctx, vda.WatchOptions{FromRevision: 1})
			require.ErrorIs(t, err, store.ErrCompacted)
			require.ErrorIs(t, err, vda.ErrFailedPrecondition)
			require.ErrorContains(t, err, "watch from now")

			// A cancelled context ends the stream without an error.
			wctx, cancel := context.WithCancel(ctx)
			st, err := c.WatchEvents(wctx, vda.WatchOptions{FromRevision: rev})
			require.NoError(t, err)
			cancel()
			for range st.Events() {
			}
			require.NoError(t, st.Err())
		})
	}
}

// TestWatchEventsSlowConsumer: a consumer that does not read is cut off
// once its buffer is full, at a revision boundary, while another stream
// and the writers go on; it resumes after the last event it got.
func TestWatchEventsSlowConsumer(t *testing.T) {
	for _, b := range eventStores {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			s := b.open(t)
			c := newCluster(t, s)
			slow, err := c.WatchEvents(ctx, vda.WatchOptions{Buffer: 3})
			require.NoError(t, err)
			defer slow.Close()
			fast, err := c.WatchEvents(ctx, vda.WatchOptions{})
			require.NoError(t, err)
			defer fast.Close()
			const n = 20
			for i := range n {
				_, err := c.CreateControllerNode(ctx, vda.NodeSpec{Name: fmt.Sprintf("cn%d:9820", i), Listener: listener(nodeIP(1, i), "4430")})
				require.NoError(t, err)
			}
			var revs []int64
			for i := range n {
				ev := nextEvent(t, fast)
				require.Equal(t, fmt.Sprintf("cn%d:9820", i), ev.Name)
				revs = append(revs, ev.Revision)
			}
			err = slow.Err() // it ends by itself, nobody reading it
			var got []vda.Event
			for ev := range slow.Events() {
				got = append(got, ev)
			}
			require.ErrorIs(t, err, vda.ErrWatchLagged)
			require.ErrorIs(t, err, vda.ErrResourceExhausted)
			require.Len(t, got, 3)
			require.Equal(t, revs[2], got[2].Revision)
			require.ErrorContains(t, err, fmt.Sprintf("resume from revision %d", revs[3]))

			resumed, err := c.WatchEvents(ctx, vda.WatchOptions{FromRevision: got[2].Revision + 1})
			require.NoError(t, err)
			defer resumed.Close()
			for i := 3; i < n; i++ {
				require.Equal(t, fmt.Sprintf("cn%d:9820", i), nextEvent(t, resumed).Name)
			}
		})
	}
}

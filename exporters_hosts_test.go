package vda_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/store"
)

const (
	host0 = "nqn.2016-06.io.spdk:host0"
	host1 = "nqn.2016-06.io.spdk:host1"
	host2 = "nqn.2016-06.io.spdk:host2"
)

// expCluster is the tutorial's cluster with da0 (two controllers).
func expCluster(t *testing.T) (*vda.Cluster, store.Store) {
	s := newStore(t)
	c := newCluster(t, s)
	tutorialCluster(t, c)
	_, err := c.CreateDiskArray(context.Background(), vda.DiskArraySpec{Name: "da0", CntlrCount: 2, SizeBytes: 16 << 20,
		Conf: vda.DAConf{StripeCount: 2, StripeSizeKB: 64}})
	require.NoError(t, err)
	return c, s
}

// storedExp reads the exporter record as stored, raw.
func storedExp(t *testing.T, s store.Store, da, exp string) map[string]any {
	kv, err := s.Get(context.Background(), vda.KeyExp(da, exp))
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(kv.Value, &m))
	return m
}

func TestExporterHosts(t *testing.T) {
	ctx := context.Background()
	c, s := expCluster(t)

	// The initiator is the first host; repeating it in host_nqns counts once.
	exp, err := c.CreateExporter(ctx, vda.ExporterSpec{DAName: "da0", Name: "exp0", InitiatorNQN: host0,
		HostNQNs: []string{host1, host0}})
	require.NoError(t, err)
	require.Equal(t, []string{host0, host1}, exp.HostNQNs)
	require.Equal(t, host0, exp.InitiatorNQN)
	raw := storedExp(t, s, "da0", "exp0")
	require.Equal(t, host0, raw["initiator_nqn"], "older readers find the first host")
	require.Equal(t, []any{host0, host1}, raw["host_nqns"])

	// Idempotent in any order; other hosts are another spec.
	again, err := c.CreateExporter(ctx, vda.ExporterSpec{DAName: "da0", Name: "exp0", HostNQNs: []string{host1, host0}})
	require.NoError(t, err)
	require.Equal(t, exp.ID, again.ID)
	_, err = c.CreateExporter(ctx, vda.ExporterSpec{DAName: "da0", Name: "exp0", HostNQNs: []string{host2}})
	require.ErrorIs(t, err, vda.ErrAlreadyExists)
	require.ErrorContains(t, err, "host_nqns")

	// Add and remove in one modify; a retried modify changes nothing more.
	u := vda.ExporterUpdate{AddHostNQNs: []string{host2}, RemoveHostNQNs: []string{host0}}
	for range 2 {
		exp, err = c.ModifyExporter(ctx, "da0", "exp0", u)
		require.NoError(t, err)
		require.Equal(t, []string{host1, host2}, exp.HostNQNs)
		require.Equal(t, host1, exp.InitiatorNQN, "the first host is the initiator")
	}
	got, err := c.GetExporter(ctx, "da0", "exp0")
	require.NoError(t, err)
	require.Equal(t, []string{host1, host2}, got.HostNQNs)
	exps, _, err := c.ListExporters(ctx, "da0", vda.Page{})
	require.NoError(t, err)
	require.Equal(t, []string{host1, host2}, exps[0].HostNQNs)

	// initiator_nqn replaces the first host (and is not listed twice).
	exp, err = c.ModifyExporter(ctx, "da0", "exp0", vda.ExporterUpdate{InitiatorNQN: new(host2)})
	require.NoError(t, err)
	require.Equal(t, []string{host2}, exp.HostNQNs)
	exp, err = c.ModifyExporter(ctx, "da0", "exp0", vda.ExporterUpdate{InitiatorNQN: new(host0), AddHostNQNs: []string{host1}})
	require.NoError(t, err)
	require.Equal(t, []string{host0, host1}, exp.HostNQNs)

	// Removing every host is refused and changes nothing.
	before, err := s.Get(ctx, vda.KeyExp("da0", "exp0"))
	require.NoError(t, err)
	_, err = c.ModifyExporter(ctx, "da0", "exp0", vda.ExporterUpdate{RemoveHostNQNs: []string{host0, host1}})
	require.ErrorIs(t, err, vda.ErrFailedPrecondition)
	require.ErrorContains(t, err, "at least one host")
	after, err := s.Get(ctx, vda.KeyExp("da0", "exp0"))
	require.NoError(t, err)
	require.Equal(t, before.ModRevision, after.ModRevision)

	// At most 64 hosts, in a request and on the exporter.
	var many []string
	for i := range vda.MaxExporterHosts {
		many = append(many, fmt.Sprintf("nqn.2016-06.io.spdk:h%d", i))
	}
	_, err = c.ModifyExporter(ctx, "da0", "exp0", vda.ExporterUpdate{AddHostNQNs: many})
	require.ErrorIs(t, err, vda.ErrFailedPrecondition)
	require.ErrorContains(t, err, "66 hosts, at most 64")
	exp, err = c.ModifyExporter(ctx, "da0", "exp0", vda.ExporterUpdate{AddHostNQNs: many[2:], RemoveHostNQNs: []string{host1}})
	require.NoError(t, err)
	require.Len(t, exp.HostNQNs, vda.MaxExporterHosts-1)
}

func TestExporterHostsValidation(t *testing.T) {
	ctx := context.Background()
	c, s := expCluster(t)
	_, err := c.CreateExporter(ctx, vda.ExporterSpec{DAName: "da0", Name: "exp0", InitiatorNQN: host0})
	require.NoError(t, err)
	before, err := s.Revision(ctx)
	require.NoError(t, err)
	tooMany := make([]string, vda.MaxExporterHosts+1)
	for i := range tooMany {
		tooMany[i] = fmt.Sprintf("nqn.2016-06.io.spdk:h%d", i)
	}
	for name, tc := range map[string]struct {
		do   func() error
		want string
	}{
		"no host": {func() error {
			_, err := c.CreateExporter(ctx, vda.ExporterSpec{DAName: "da0", Name: "exp1"})
			return err
		}, "needs a host"},
		"bad host": {func() error {
			_, err := c.CreateExporter(ctx, vda.ExporterSpec{DAName: "da0", Name: "exp1", HostNQNs: []string{host1, "nqn.x"}})
			return err
		}, "host_nqns[1]"},
		"reserved host": {func() error {
			_, err := c.CreateExporter(ctx, vda.ExporterSpec{DAName: "da0", Name: "exp1", HostNQNs: []string{"nqn.2016-06.io.spdk:vda-x"}})
			return err
		}, "reserved for VDA"},
		"twice": {func() error {
			_, err := c.CreateExporter(ctx, vda.ExporterSpec{DAName: "da0", Name: "exp1", HostNQNs: []string{host1, host1}})
			return err
		}, "listed twice"},
		"too many": {func() error {
			_, err := c.CreateExporter(ctx, vda.ExporterSpec{DAName: "da0", Name: "exp1", HostNQNs: tooMany})
			return err
		}, "65 host NQNs, at most 64"},
		"add twice": {func() error {
			_, err := c.ModifyExporter(ctx, "da0", "exp0", vda.ExporterUpdate{AddHostNQNs: []string{host1, host1}})
			return err
		}, "add_host_nqns: host NQN \"" + host1 + "\" is listed twice"},
		"bad remove": {func() error {
			_, err := c.ModifyExporter(ctx, "da0", "exp0", vda.ExporterUpdate{RemoveHostNQNs: []string{"host1"}})
			return err
		}, "remove_host_nqns[0]"},
		"add and remove": {func() error {
			_, err := c.ModifyExporter(ctx, "da0", "exp0", vda.ExporterUpdate{AddHostNQNs: []string{host1}, RemoveHostNQNs: []string{host1}})
			return err
		}, "both added and removed"},
	} {
		t.Run(name, func(t *testing.T) {
			err := tc.do()
			require.ErrorIs(t, err, vda.ErrInvalidArgument)
			require.ErrorContains(t, err, tc.want)
		})
	}
	after, err := s.Revision(ctx)
	require.NoError(t, err)
	require.Equal(t, before, after, "refused requests write nothing")
}

// A volume has one exporter: a second one is refused, naming the first
// and how to add the host to it, and nothing is written.
func TestSecondExporterRefused(t *testing.T) {
	ctx := context.Background()
	c, s := expCluster(t)
	_, err := c.CreateExporter(ctx, vda.ExporterSpec{DAName: "da0", Name: "exp0", InitiatorNQN: host0})
	require.NoError(t, err)
	before, err := s.Revision(ctx)
	require.NoError(t, err)
	_, err = c.CreateExporter(ctx, vda.ExporterSpec{DAName: "da0", Name: "exp1", InitiatorNQN: host1})
	require.ErrorIs(t, err, vda.ErrFailedPrecondition)
	require.ErrorContains(t, err, `exporter "exp0" already exports the volume of disk array "da0"`)
	require.ErrorContains(t, err, "vda exp modify --da-name da0 --exp-name exp0 --add-host-nqn")
	after, err := s.Revision(ctx)
	require.NoError(t, err)
	require.Equal(t, before, after)
	da, err := c.GetDiskArray(ctx, "da0")
	require.NoError(t, err)
	require.Equal(t, 1, da.ExpCount)

	// Deleted, the volume can be exported again under another name.
	require.NoError(t, c.DeleteExporter(ctx, "da0", "exp0"))
	_, err = c.CreateExporter(ctx, vda.ExporterSpec{DAName: "da0", Name: "exp1", InitiatorNQN: host1})
	require.NoError(t, err)
}

// Concurrent creates of exporters of one volume: exactly one wins, in any
// interleaving (the transaction's DA write guards its listing).
func TestConcurrentExporterCreates(t *testing.T) {
	ctx := context.Background()
	c, _ := expCluster(t)
	const n = 8
	for round := range 5 {
		start := make(chan struct{})
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				_, errs[i] = c.CreateExporter(ctx, vda.ExporterSpec{DAName: "da0", Name: fmt.Sprintf("exp%d", i),
					InitiatorNQN: fmt.Sprintf("nqn.2016-06.io.spdk:h%d", i)})
			})
		}
		close(start)
		wg.Wait()
		won := -1
		for i, err := range errs {
			if err == nil {
				require.Equal(t, -1, won, "round %d: exp%d and exp%d both created", round, won, i)
				won = i
				continue
			}
			require.ErrorIs(t, err, vda.ErrFailedPrecondition)
		}
		require.NotEqual(t, -1, won, "round %d: one create wins", round)
		exps, _, err := c.ListExporters(ctx, "da0", vda.Page{})
		require.NoError(t, err)
		require.Len(t, exps, 1)
		da, err := c.GetDiskArray(ctx, "da0")
		require.NoError(t, err)
		require.Equal(t, 1, da.ExpCount)
		require.NoError(t, c.DeleteExporter(ctx, "da0", exps[0].Name))
	}
}

// A record of a version with one host per exporter decodes with that host
// as its list, and is rewritten with both fields.
func TestOldExporterRecordDecodes(t *testing.T) {
	ctx := context.Background()
	c, s := expCluster(t)
	exp, err := c.CreateExporter(ctx, vda.ExporterSpec{DAName: "da0", Name: "exp0", InitiatorNQN: host0})
	require.NoError(t, err)
	raw := storedExp(t, s, "da0", "exp0")
	delete(raw, "host_nqns")
	b, err := json.Marshal(raw)
	require.NoError(t, err)
	_, err = s.Txn(ctx, store.Txn{Ops: []store.Op{{Key: vda.KeyExp("da0", "exp0"), Value: b}}})
	require.NoError(t, err)

	got, err := c.GetExporter(ctx, "da0", "exp0")
	require.NoError(t, err)
	require.Equal(t, exp.ID, got.ID)
	require.Equal(t, []string{host0}, got.HostNQNs)
	got, err = c.ModifyExporter(ctx, "da0", "exp0", vda.ExporterUpdate{AddHostNQNs: []string{host1}})
	require.NoError(t, err)
	require.Equal(t, []string{host0, host1}, got.HostNQNs)
	raw = storedExp(t, s, "da0", "exp0")
	require.Equal(t, []any{host0, host1}, raw["host_nqns"])
	require.Equal(t, host0, raw["initiator_nqn"])
}

// putOldDuplicate stores a second exporter of da0's volume as a version
// before the one-exporter rule could: a copy of exp0 under name, counted
// in the DA.
func putOldDuplicate(t *testing.T, s store.Store, name, host string) {
	ctx := context.Background()
	require.NoError(t, store.Update(ctx, s, func(tx *store.Tx) error {
		kv, err := tx.Get(vda.KeyExp("da0", "exp0"))
		require.NoError(t, err)
		var e vda.Exporter
		require.NoError(t, json.Unmarshal(kv.Value, &e))
		nqn, err := nvmeof.ExpNQN("da0", name)
		require.NoError(t, err)
		e.ID, e.Name, e.NQN, e.InitiatorNQN, e.HostNQNs = nvmeof.NewID(), name, nqn.String(), host, []string{host}
		for i := range e.Ports {
			e.Ports[i].ID = nvmeof.NewID()
		}
		b, err := json.Marshal(e)
		require.NoError(t, err)
		tx.Put(vda.KeyExp("da0", name), b)
		dkv, err := tx.Get(vda.KeyDA("da0"))
		require.NoError(t, err)
		var da vda.DiskArray
		require.NoError(t, json.Unmarshal(dkv.Value, &da))
		da.ExpCount++
		b, err = json.Marshal(da)
		require.NoError(t, err)
		tx.Put(vda.KeyDA("da0"), b)
		return nil
	}))
}

// Exporters of one volume stored by an older version: the one created
// first is served (whatever the names), the others report failed and say
// what to do; deleting the first lets the next one serve.
func TestOldDuplicateExporters(t *testing.T) {
	ctx := context.Background()
	c, s := expCluster(t)
	_, err := c.CreateExporter(ctx, vda.ExporterSpec{DAName: "da0", Name: "exp0", InitiatorNQN: host0})
	require.NoError(t, err)
	putOldDuplicate(t, s, "a-newer", host1) // sorts before exp0: the name does not decide
	putOldDuplicate(t, s, "z-newest", host2)

	served, err := c.GetExporter(ctx, "da0", "exp0")
	require.NoError(t, err)
	require.NotEqual(t, vda.HealthFailed, served.Status.Health)
	for _, name := range []string{"a-newer", "z-newest"} {
		got, err := c.GetExporter(ctx, "da0", name)
		require.NoError(t, err)
		require.Equal(t, vda.HealthFailed, got.Status.Health, name)
		require.Contains(t, got.Status.ErrorMsg, `not served: exporter "exp0", created first`)
		require.Contains(t, got.Status.ErrorMsg, "vda exp modify --add-host-nqn")
	}
	exps, _, err := c.ListExporters(ctx, "", vda.Page{})
	require.NoError(t, err)
	health := map[string]vda.Health{}
	for _, e := range exps {
		health[e.Name] = e.Status.Health
	}
	require.Equal(t, vda.HealthFailed, health["a-newer"])
	require.Equal(t, vda.HealthFailed, health["z-newest"])
	require.NotEqual(t, vda.HealthFailed, health["exp0"])

	require.NoError(t, c.DeleteExporter(ctx, "da0", "exp0"))
	got, err := c.GetExporter(ctx, "da0", "a-newer")
	require.NoError(t, err)
	require.NotEqual(t, vda.HealthFailed, got.Status.Health)
	got, err = c.GetExporter(ctx, "da0", "z-newest")
	require.NoError(t, err)
	require.Contains(t, got.Status.ErrorMsg, `not served: exporter "a-newer"`)
}

func TestSupersededExporters(t *testing.T) {
	mk := func(name, snap string) *vda.Exporter {
		return &vda.Exporter{ID: "id-" + name, Name: name, DAName: "da0", SnapName: snap}
	}
	a, b, c, s1, s2 := mk("a", ""), mk("b", ""), mk("c", ""), mk("s1", "snap0"), mk("s2", "snap0")
	got := vda.SupersededExporters([]vda.ExporterRecord{
		{Exporter: a, CreateRevision: 9}, {Exporter: b, CreateRevision: 5}, {Exporter: c, CreateRevision: 5},
		{Exporter: s1, CreateRevision: 7}, {Exporter: s2, CreateRevision: 3},
	})
	require.Equal(t, map[string]*vda.Exporter{"id-a": b, "id-c": b, "id-s1": s2}, got)
	require.Empty(t, vda.SupersededExporters([]vda.ExporterRecord{{Exporter: a, CreateRevision: 1}, {Exporter: s1, CreateRevision: 2}}),
		"exporters of different volumes all serve")
}

// ParseHostNQNs never panics; it refuses with ErrInvalidArgument, or
// returns distinct host NQNs that each parse on their own.
func FuzzParseHostNQNs(f *testing.F) {
	f.Add(host0, host1)
	f.Add(host0, host0)
	f.Add("nqn.2016-06.io.spdk:vda-x", "")
	f.Fuzz(func(t *testing.T, a, b string) {
		got, err := vda.ParseHostNQNs("host_nqns", []string{a, b})
		if err != nil {
			require.ErrorIs(t, err, vda.ErrInvalidArgument)
			return
		}
		require.Len(t, got, 2)
		require.NotEqual(t, got[0], got[1])
		for _, h := range got {
			n, err := vda.ParseInitiatorNQN(h)
			require.NoError(t, err)
			require.Equal(t, h, n)
		}
	})
}

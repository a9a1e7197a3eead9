package monitor

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/store"
)

func listener(ip, port string) nvmeof.TransportID {
	return nvmeof.TransportID{TrType: nvmeof.TrTypeTCP, AdrFam: nvmeof.AdrFamIPv4, TrAddr: ip, TrSvcID: port}
}

// fixture is a small cluster built through the real Cluster API: two DNs
// with one malloc PD each, three CNs, one DA (two VDs, cntlrs controllers)
// with one exporter.
type fixture struct {
	s   store.Store
	c   *vda.Cluster
	da  vda.DiskArray
	exp vda.Exporter
}

func newFixture(t testing.TB, cntlrs int) *fixture {
	ctx := context.Background()
	s := newMemStore(t)
	c, err := vda.New(vda.DefaultConfig(s))
	require.NoError(t, err)
	for i, ip := range []string{"10.0.0.1", "10.0.0.2"} {
		name := fmt.Sprintf("%s:9720", ip)
		_, err := c.CreateDiskNode(ctx, vda.NodeSpec{Name: name, Listener: listener(ip, "4420"), Location: fmt.Sprint("r", i)})
		require.NoError(t, err)
		_, err = c.CreatePhysicalDisk(ctx, vda.PhysicalDiskSpec{DNName: name, Name: "pd0", Conf: vda.PDConf{Type: vda.PDMalloc, SizeBytes: 134217728}})
		require.NoError(t, err)
	}
	for _, ip := range []string{"10.0.1.1", "10.0.1.2", "10.0.1.3"} {
		_, err := c.CreateControllerNode(ctx, vda.NodeSpec{Name: ip + ":9820", Listener: listener(ip, "4430")})
		require.NoError(t, err)
	}
	f := &fixture{s: s, c: c}
	f.da, err = c.CreateDiskArray(ctx, vda.DiskArraySpec{Name: "da0", CntlrCount: cntlrs, SizeBytes: 32 << 20,
		Conf: vda.DAConf{StripeCount: 2, StripeSizeKB: 64}})
	require.NoError(t, err)
	f.exp, err = c.CreateExporter(ctx, vda.ExporterSpec{DAName: "da0", Name: "exp0", InitiatorNQN: "nqn.2016-06.io.spdk:host0"})
	require.NoError(t, err)
	f.da, err = c.GetDiskArray(ctx, "da0")
	require.NoError(t, err)
	reportAll(t, s) // as converged: no secondary waits for its primary
	return f
}

// statusMonitor is a Monitor on the fixture's store that writes statuses
// back with concurrency workers (no loop runs).
func (f *fixture) statusMonitor(concurrency int) *Monitor {
	return &Monitor{cfg: Config{Store: f.s, Now: time.Now, StatusConcurrency: concurrency}, log: hclog.NewNullLogger()}
}

func (f *fixture) plan(t testing.TB) (*Snapshot, *Plan) {
	snap, err := LoadSnapshot(context.Background(), f.s)
	require.NoError(t, err)
	return snap, Build(snap)
}

func nodeByName(t testing.TB, p *Plan, name string) *NodePlan {
	for _, np := range p.Nodes {
		if np.Name == name {
			return np
		}
	}
	t.Fatalf("no plan for node %s", name)
	return nil
}

func TestPlanTutorialCluster(t *testing.T) {
	f := newFixture(t, 3)
	snap, plan := f.plan(t)
	require.Empty(t, plan.Problems)
	require.Len(t, plan.Nodes, 5)
	primary, ok := f.da.Primary()
	require.True(t, ok)
	hostNQN := nvmeof.PrimaryHostNQN(primary.ID, uint64(f.da.Epoch)).String()

	for _, vd := range f.da.VDs {
		np := nodeByName(t, plan, vd.DNName)
		require.Equal(t, RoleDN, np.Role)
		require.NoError(t, np.Held)
		req := np.Request
		require.Equal(t, snap.Revision, req.GetGeneration())
		require.Equal(t, vd.DNID, req.GetNodeId())
		pds := req.GetDn().GetPds()
		require.Len(t, pds, 1)
		require.Equal(t, vd.PDID, pds[0].GetId())
		require.EqualValues(t, 134217728, pds[0].GetMalloc().GetSizeBytes())
		require.Len(t, pds[0].GetVds(), 1)
		want := &agentpb.VdSpec{Id: vd.ID, DaId: f.da.ID, Epoch: 1, SizeBytes: f.da.VDSizeBytes, HostNqn: hostNQN}
		require.True(t, proto.Equal(want, pds[0].GetVds()[0]), "got %v", pds[0].GetVds()[0])
	}

	var secondaries []string
	for _, c := range sortedCntlrs(f.da.Cntlrs) {
		if !c.Primary {
			secondaries = append(secondaries, nvmeof.HostNQN(c.ID).String())
		}
	}
	for _, c := range f.da.Cntlrs {
		np := nodeByName(t, plan, c.CNName)
		require.Equal(t, RoleCN, np.Role)
		require.Equal(t, snap.Revision, np.Request.GetGeneration())
		cntlrs := np.Request.GetCn().GetCntlrs()
		require.Len(t, cntlrs, 1)
		cs := cntlrs[0]
		require.Equal(t, c.ID, cs.GetCntlrId())
		require.EqualValues(t, c.Idx, cs.GetCntlrIdx())
		require.Equal(t, c.Primary, cs.GetPrimary())
		require.EqualValues(t, 1, cs.GetEpoch())
		require.True(t, proto.Equal(&agentpb.DaSpec{Id: f.da.ID, SizeBytes: 32 << 20, ClusterBytes: f.da.ClusterBytes,
			StripeSizeKb: 64}, cs.GetDa()))
		require.Len(t, cs.GetExps(), 1)
		e := cs.GetExps()[0]
		require.Equal(t, f.exp.ID, e.GetId())
		require.Equal(t, f.exp.NQN, e.GetNqn())
		require.Equal(t, "nqn.2016-06.io.spdk:host0", e.GetInitiatorNqn())
		port, _ := portOf(&f.exp, c.Idx)
		require.Equal(t, port.ID, e.GetPortId())
		if c.Primary {
			require.Equal(t, secondaries, e.GetSecondaryHostNqns())
			require.Len(t, cs.GetVds(), 2)
			for i, ref := range cs.GetVds() {
				vd := f.da.VDs[i]
				require.Equal(t, vd.ID, ref.GetId())
				require.EqualValues(t, i, ref.GetIdx())
				dn := snap.DNs[vd.DNName].Spec
				want, err := ListenerTransport(dn.Listener)
				require.NoError(t, err)
				require.True(t, proto.Equal(want, ref.GetDnListener()))
				require.Equal(t, "TCP", ref.GetDnListener().GetTrtype())
				require.Equal(t, "IPv4", ref.GetDnListener().GetAdrfam())
			}
			require.Empty(t, cs.GetPrimaryCntlrId())
		} else {
			require.Empty(t, e.GetSecondaryHostNqns())
			require.Empty(t, cs.GetVds())
			require.Equal(t, primary.ID, cs.GetPrimaryCntlrId())
			pcn := snap.CNs[primary.CNName].Spec
			want, err := ListenerTransport(pcn.Listener)
			require.NoError(t, err)
			require.True(t, proto.Equal(want, cs.GetPrimaryListener()))
		}
	}

	// Pure and deterministic: the same snapshot gives the same plan.
	again := Build(snap)
	for id, np := range plan.Nodes {
		require.True(t, proto.Equal(np.Request, again.Nodes[id].Request))
	}
}

// After a failover (new primary, higher epoch), the DNs admit the new
// primary only, the new primary attaches the VDs and every other
// controller re-points to it.
func TestPlanAfterPrimaryMoves(t *testing.T) {
	f := newFixture(t, 3)
	ctx := context.Background()
	newPrimary := f.da.Cntlrs[2]
	require.NoError(t, store.Update(ctx, f.s, func(tx *store.Tx) error {
		kv, err := tx.Get(vda.KeyDA("da0"))
		if err != nil {
			return err
		}
		var da vda.DiskArray
		if err := json.Unmarshal(kv.Value, &da); err != nil {
			return err
		}
		for i := range da.Cntlrs {
			da.Cntlrs[i].Primary = da.Cntlrs[i].ID == newPrimary.ID
		}
		da.PrimaryCntlrID, da.Epoch = newPrimary.ID, da.Epoch+1
		b, _ := json.Marshal(da)
		tx.Put(kv.Key, b)
		return nil
	}))
	snap, plan := f.plan(t)
	require.Empty(t, plan.Problems)
	for _, vd := range f.da.VDs {
		v := nodeByName(t, plan, vd.DNName).Request.GetDn().GetPds()[0].GetVds()[0]
		require.Equal(t, nvmeof.PrimaryHostNQN(newPrimary.ID, 2).String(), v.GetHostNqn())
		require.EqualValues(t, 2, v.GetEpoch())
	}
	for _, c := range f.da.Cntlrs {
		cs := nodeByName(t, plan, c.CNName).Request.GetCn().GetCntlrs()[0]
		require.EqualValues(t, 2, cs.GetEpoch())
		require.Equal(t, c.ID == newPrimary.ID, cs.GetPrimary())
		if c.ID != newPrimary.ID {
			require.Equal(t, newPrimary.ID, cs.GetPrimaryCntlrId())
			want, _ := ListenerTransport(snap.CNs[newPrimary.CNName].Spec.Listener)
			require.True(t, proto.Equal(want, cs.GetPrimaryListener()))
		} else {
			require.Len(t, cs.GetVds(), 2)
			require.Equal(t, []string{nvmeof.HostNQN(f.da.Cntlrs[0].ID).String(), nvmeof.HostNQN(f.da.Cntlrs[1].ID).String()},
				cs.GetExps()[0].GetSecondaryHostNqns())
		}
	}
}

// Nodes without objects still get a (empty) complete state, so that an
// agent deletes what is no longer wanted.
func TestPlanEmptyNodes(t *testing.T) {
	f := newFixture(t, 2)
	require.NoError(t, f.c.DeleteExporter(context.Background(), "da0", "exp0"))
	require.NoError(t, f.c.DeleteDiskArray(context.Background(), "da0"))
	_, plan := f.plan(t)
	require.Len(t, plan.Nodes, 5)
	for _, np := range plan.Nodes {
		require.NoError(t, np.Held)
		switch np.Role {
		case RoleDN:
			require.Len(t, np.Request.GetDn().GetPds(), 1)
			require.Empty(t, np.Request.GetDn().GetPds()[0].GetVds())
		case RoleCN:
			require.NotNil(t, np.Request.GetCn())
			require.Empty(t, np.Request.GetCn().GetCntlrs())
		}
	}
}

// Malformed objects are reported and hold exactly the nodes they may
// concern: a push deletes what the state does not name, so a node is never
// pushed a state that leaves out an object it could not read.
func TestPlanMalformedObjectsHoldTheirNodes(t *testing.T) {
	f0 := newFixture(t, 2)
	base, err := f0.s.List(context.Background(), vda.Prefix, store.ListOptions{})
	require.NoError(t, err)
	da := f0.da
	dn0, dn1 := da.VDs[0].DNName, da.VDs[1].DNName
	cn0, cn1 := da.Cntlrs[0].CNName, da.Cntlrs[1].CNName
	cn2 := "" // the fixture's CN that da0 does not use
	for _, ip := range []string{"10.0.1.1", "10.0.1.2", "10.0.1.3"} {
		if name := ip + ":9820"; name != cn0 && name != cn1 {
			cn2 = name
		}
	}
	patchDA := func(fn func(*vda.DiskArray)) []byte {
		d := da
		d.VDs = append([]vda.VD(nil), da.VDs...)
		d.Cntlrs = append([]vda.Cntlr(nil), da.Cntlrs...)
		fn(&d)
		b, _ := json.Marshal(d)
		return b
	}
	cases := map[string]struct {
		key   string
		value []byte
		held  []string // node names; "*" = all
	}{
		"undecodable DA holds every node": {key: vda.KeyDA("da0"), value: []byte("{not json"), held: []string{"*"}},
		"DA of the wrong shape holds its nodes": {key: vda.KeyDA("da0"),
			value: []byte(fmt.Sprintf(`{"name":"da0","epoch":"x","vds":[{"dn_name":%q}],"cntlrs":[{"cn_name":%q}]}`, dn0, cn1)),
			held:  []string{dn0, cn1}},
		"bad VD id": {key: vda.KeyDA("da0"), value: patchDA(func(d *vda.DiskArray) { d.VDs[1].ID = "X" }),
			held: []string{dn0, dn1, cn0, cn1}},
		"unknown PD": {key: vda.KeyDA("da0"), value: patchDA(func(d *vda.DiskArray) { d.VDs[0].PDName = "nope" }),
			held: []string{dn0, dn1, cn0, cn1}},
		"two primaries": {key: vda.KeyDA("da0"), value: patchDA(func(d *vda.DiskArray) { d.Cntlrs[1].Primary = true }),
			held: []string{dn0, dn1, cn0, cn1}},
		"zero epoch": {key: vda.KeyDA("da0"), value: patchDA(func(d *vda.DiskArray) { d.Epoch = 0 }),
			held: []string{dn0, dn1, cn0, cn1}},
		"undecodable PD holds its DN": {key: vda.KeyPD(dn1, "pd0"), value: []byte(`[]`), held: []string{dn1}},
		"unknown PD type": {key: vda.KeyPD(dn0, "pd0"),
			value: []byte(fmt.Sprintf(`{"id":%q,"name":"pd0","dn_name":%q,"dn_id":%q,"conf":{"type":"floppy"}}`,
				da.VDs[0].PDID, dn0, da.VDs[0].DNID)), held: []string{dn0}},
		"undecodable exporter holds the DA's CNs": {key: vda.KeyExp("da0", "exp0"), value: []byte(`7`), held: []string{cn0, cn1}},
		"bad DN listener holds the DA": {key: vda.KeyDN(dn0),
			value: []byte(fmt.Sprintf(`{"id":%q,"name":%q,"listener_conf":"{}"}`, da.VDs[0].DNID, dn0)),
			held:  []string{dn0, dn1, cn0, cn1}},
		"undecodable status holds nothing": {key: vda.KeyStatus(vda.KeyDA("da0")), value: []byte(`{"health":`)},
		"a CN under the wrong key":         {key: vda.KeyCN(cn2), value: []byte(`{"id":"00000000000000000000000000000000","name":"other:1"}`)},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			kvs := append([]store.KV(nil), base.KVs...)
			found := false
			for i := range kvs {
				if kvs[i].Key == tc.key {
					kvs[i].Value, found = tc.value, true
				}
			}
			if !found {
				kvs = append(kvs, store.KV{Key: tc.key, Value: tc.value, ModRevision: 1})
			}
			plan := Build(DecodeSnapshot(base.Revision, kvs))
			require.NotEmpty(t, plan.Problems)
			for _, p := range plan.Problems {
				require.ErrorIs(t, p.Err, ErrMalformed)
			}
			held := map[string]bool{}
			for _, n := range tc.held {
				held[n] = true
			}
			for _, np := range plan.Nodes {
				want := held["*"] || held[np.Name]
				require.Equal(t, want, np.Held != nil, "node %s held: %v", np.Name, np.Held)
				require.Equal(t, want, np.Request == nil)
			}
		})
	}
}

func TestListenerTransport(t *testing.T) {
	tr, err := ListenerTransport(nvmeof.TransportID{TrType: "rdma", AdrFam: "ipv6", TrAddr: "fd00::1", TrSvcID: "4420"})
	require.NoError(t, err)
	require.True(t, proto.Equal(&agentpb.Transport{Trtype: "RDMA", Adrfam: "IPv6", Traddr: "fd00::1", Trsvcid: "4420"}, tr))
	// A record whose listener_conf was empty decodes to the zero
	// TransportID; one not normalised cannot come from the store either.
	_, err = ListenerTransport(nvmeof.TransportID{})
	require.ErrorIs(t, err, nvmeof.ErrInvalidTransportID)
	_, err = ListenerTransport(nvmeof.TransportID{TrType: "TCP", AdrFam: "ipv4", TrAddr: "10.0.0.1", TrSvcID: "4420"})
	require.ErrorIs(t, err, nvmeof.ErrInvalidTransportID)
	require.Equal(t, "cn", RoleCN.String())
	require.Equal(t, "dn", RoleDN.String())
	require.Equal(t, "unknown", Role(0).String())
}

// FuzzPlanner replaces one stored value of a real cluster with arbitrary
// bytes: the planner never panics, reports what it cannot decode, and never
// pushes a node a state it may have built without a malformed object.
func FuzzPlanner(f *testing.F) {
	fx := newFixture(f, 3)
	base, err := fx.s.List(context.Background(), vda.Prefix, store.ListOptions{})
	if err != nil {
		f.Fatal(err)
	}
	for i, kv := range base.KVs {
		f.Add(uint8(i), kv.Value)
	}
	f.Add(uint8(0), []byte("{"))
	f.Add(uint8(3), []byte(`{"id":"","vds":null}`))
	f.Fuzz(func(t *testing.T, idx uint8, value []byte) {
		kvs := append([]store.KV(nil), base.KVs...)
		i := int(idx) % len(kvs)
		kvs[i].Value = value
		snap := DecodeSnapshot(base.Revision, kvs)
		plan := Build(snap)
		for _, np := range plan.Nodes {
			if (np.Held == nil) == (np.Request == nil) {
				t.Fatalf("node %s: held %v with request %v", np.Name, np.Held, np.Request)
			}
			if np.Request == nil {
				continue
			}
			if np.Request.GetGeneration() != base.Revision || np.Request.GetNodeId() == "" {
				t.Fatalf("node %s: bad request header %v", np.Name, np.Request)
			}
			checkIDs(t, np.Request)
		}
		if json.Valid(value) {
			return
		}
		// Unparsable JSON under a spec or status key is always reported.
		if len(plan.Problems) == 0 && isVDAObjectKey(kvs[i].Key) {
			t.Fatalf("no problem reported for %s = %q", kvs[i].Key, value)
		}
	})
}

func isVDAObjectKey(key string) bool {
	for _, p := range []string{vda.PrefixDN, vda.PrefixPD, vda.PrefixCN, vda.PrefixDA, vda.PrefixExp, vda.PrefixStatus} {
		if len(key) > len(p) && key[:len(p)] == p {
			return true
		}
	}
	return false
}

// checkIDs: every ID an agent names SPDK objects after is valid.
func checkIDs(t *testing.T, req *agentpb.SyncRequest) {
	ok := func(id string) {
		if err := nvmeof.ValidateID(id); err != nil {
			t.Fatalf("pushed invalid id: %v", err)
		}
	}
	ok(req.GetNodeId())
	for _, pd := range req.GetDn().GetPds() {
		ok(pd.GetId())
		for _, vd := range pd.GetVds() {
			ok(vd.GetId())
			ok(vd.GetDaId())
		}
	}
	for _, c := range req.GetCn().GetCntlrs() {
		ok(c.GetCntlrId())
		ok(c.GetDa().GetId())
		for _, vd := range c.GetVds() {
			ok(vd.GetId())
			if vd.GetDnListener() == nil {
				t.Fatal("primary without a VD listener")
			}
		}
		for _, e := range c.GetExps() {
			ok(e.GetId())
			ok(e.GetPortId())
		}
		if !c.GetPrimary() {
			ok(c.GetPrimaryCntlrId())
			if c.GetPrimaryListener() == nil {
				t.Fatal("secondary without a primary listener")
			}
		}
	}
}

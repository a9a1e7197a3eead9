package agent

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/spdk"
)

func cnSpecFixture() *agentpb.CntlrSpec {
	nqn, _ := nvmeof.ExpNQN("da0", "exp0")
	l := &agentpb.Transport{Trtype: "tcp", Adrfam: "ipv4", Traddr: "127.0.0.1", Trsvcid: "4420"}
	return &agentpb.CntlrSpec{CntlrId: nvmeof.NewID(), CntlrIdx: 1, Primary: true, Epoch: 2,
		Da:  &agentpb.DaSpec{Id: nvmeof.NewID(), SizeBytes: 8 << 20, ClusterBytes: 1 << 20, StripeSizeKb: 64},
		Vds: []*agentpb.VdRef{{Id: nvmeof.NewID(), Idx: 1, DnListener: l}, {Id: nvmeof.NewID(), Idx: 0, DnListener: l}},
		Exps: []*agentpb.ExpSpec{{Id: nvmeof.NewID(), PortId: "p", Nqn: string(nqn), InitiatorNqn: cnTestInitiator,
			SecondaryHostNqns: []string{string(nvmeof.HostNQN(nvmeof.NewID()))}}}}
}

func TestCNSpecValidation(t *testing.T) {
	ok := validateCntlrForTest(cnSpecFixture())
	require.NoError(t, ok.err)
	require.NoError(t, ok.exps[0].err)
	require.Equal(t, uint16(1001), ok.minCntl)
	require.Equal(t, uint16(2000), ok.maxCntl)
	fx := cnSpecFixture()
	require.Equal(t, fx.Vds[1].Id, validateCntlrForTest(fx).vds[0].id, "raid order follows idx, not list order")

	cases := []struct {
		name   string
		mutate func(*agentpb.CntlrSpec)
		expErr bool // the exporter, not the controller, is refused
	}{
		{"bad cntlr id", func(c *agentpb.CntlrSpec) { c.CntlrId = "x" }, false},
		{"bad da id", func(c *agentpb.CntlrSpec) { c.Da.Id = "DA" }, false},
		{"no da", func(c *agentpb.CntlrSpec) { c.Da = nil }, false},
		{"index too high", func(c *agentpb.CntlrSpec) { c.CntlrIdx = nvmeof.MaxControllerIndex + 1 }, false},
		{"negative epoch", func(c *agentpb.CntlrSpec) { c.Epoch = -1 }, false},
		{"size not blocks", func(c *agentpb.CntlrSpec) { c.Da.SizeBytes = 4097 }, false},
		{"zero size", func(c *agentpb.CntlrSpec) { c.Da.SizeBytes = 0 }, false},
		{"cluster too small", func(c *agentpb.CntlrSpec) { c.Da.ClusterBytes = 512 }, false},
		{"strip not a power of two", func(c *agentpb.CntlrSpec) { c.Da.StripeSizeKb = 48 }, false},
		{"no VDs", func(c *agentpb.CntlrSpec) { c.Vds = nil }, false},
		{"duplicate VD", func(c *agentpb.CntlrSpec) { c.Vds[1].Id = c.Vds[0].Id }, false},
		{"duplicate idx", func(c *agentpb.CntlrSpec) { c.Vds[1].Idx = 1 }, false},
		{"idx out of range", func(c *agentpb.CntlrSpec) { c.Vds[1].Idx = 2 }, false},
		{"bad VD listener", func(c *agentpb.CntlrSpec) { c.Vds[0].DnListener.Traddr = "host" }, false},
		{"missing VD listener", func(c *agentpb.CntlrSpec) { c.Vds[0].DnListener = nil }, false},
		{"secondary without primary", func(c *agentpb.CntlrSpec) {
			c.Primary, c.Vds = false, nil
			c.Exps[0].SecondaryHostNqns = nil
		}, false},
		{"secondary bad listener", func(c *agentpb.CntlrSpec) {
			c.Primary, c.Vds, c.PrimaryCntlrId = false, nil, nvmeof.NewID()
			c.Exps[0].SecondaryHostNqns = nil
			c.PrimaryListener = &agentpb.Transport{Trtype: "tcp", Traddr: "::", Trsvcid: "1"}
		}, false},
		{"bad exp id", func(c *agentpb.CntlrSpec) { c.Exps[0].Id = "e" }, true},
		{"no port", func(c *agentpb.CntlrSpec) { c.Exps[0].PortId = "" }, true},
		{"foreign exporter NQN", func(c *agentpb.CntlrSpec) { c.Exps[0].Nqn = "nqn.2016-06.io.example:x" }, true},
		{"VD NQN as exporter", func(c *agentpb.CntlrSpec) { c.Exps[0].Nqn = string(nvmeof.VDNQN(nvmeof.NewID())) }, true},
		{"bad initiator", func(c *agentpb.CntlrSpec) { c.Exps[0].InitiatorNqn = "host" }, true},
		{"secondary host not a controller", func(c *agentpb.CntlrSpec) { c.Exps[0].SecondaryHostNqns = []string{cnTestInitiator} }, true},
		{"secondary hosts on a secondary", func(c *agentpb.CntlrSpec) {
			c.Primary, c.Vds, c.PrimaryCntlrId = false, nil, nvmeof.NewID()
			c.PrimaryListener = &agentpb.Transport{Trtype: "tcp", Traddr: "127.0.0.1", Trsvcid: "4430"}
		}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := cnSpecFixture()
			tc.mutate(spec)
			c := validateCntlrForTest(spec)
			err := c.err
			if tc.expErr {
				require.NoError(t, c.err)
				err = c.exps[0].err
			}
			require.Error(t, err)
			require.True(t, errors.Is(err, errCNSpec), err)
		})
	}
}

func validateCntlrForTest(spec *agentpb.CntlrSpec) *cnCntlr {
	return planCN(&agentpb.CnState{Cntlrs: []*agentpb.CntlrSpec{spec}})[0]
}

func TestCNSpecRefusesSharedObjects(t *testing.T) {
	a, b := cnSpecFixture(), cnSpecFixture()
	b.Da.Id = a.Da.Id
	for _, c := range planCN(&agentpb.CnState{Cntlrs: []*agentpb.CntlrSpec{a, b}}) {
		require.ErrorIs(t, c.err, errCNSpec)
		require.Contains(t, c.err.Error(), "controllers on this node")
	}
	a, b = cnSpecFixture(), cnSpecFixture()
	b.Exps[0].Nqn = a.Exps[0].Nqn
	for _, c := range planCN(&agentpb.CnState{Cntlrs: []*agentpb.CntlrSpec{a, b}}) {
		require.NoError(t, c.err)
		require.ErrorIs(t, c.exps[0].err, errCNSpec)
	}
}

func FuzzCNRaidEpoch(f *testing.F) {
	da := nvmeof.NewID()
	f.Add(nvmeof.RaidUUID(da, 7))
	f.Add("00000000-0000-0000-0000-000000000000")
	f.Add("not a uuid")
	f.Fuzz(func(t *testing.T, u string) {
		e, ok := nvmeof.RaidEpoch(da, u)
		if ok {
			require.True(t, strings.EqualFold(nvmeof.RaidUUID(da, e), u), "a decoded UUID re-encodes to itself")
			require.GreaterOrEqual(t, e, int64(0))
			require.LessOrEqual(t, e, int64(nvmeof.MaxRaidEpoch))
		}
	})
}

func FuzzCNPlan(f *testing.F) {
	f.Add("0123456789abcdef0123456789abcdef", uint32(0), true, int64(1), uint64(8<<20), uint64(1<<20), uint32(64), "127.0.0.1", "4420", "da0")
	f.Add("", uint32(70), false, int64(-3), uint64(1), uint64(0), uint32(3), "::1", "0", "-")
	f.Fuzz(func(t *testing.T, id string, idx uint32, primary bool, epoch int64, size, cluster uint64, strip uint32, addr, port, daName string) {
		nqn, _ := nvmeof.ExpNQN(daName, "exp0")
		l := &agentpb.Transport{Trtype: "tcp", Traddr: addr, Trsvcid: port}
		spec := &agentpb.CntlrSpec{CntlrId: id, CntlrIdx: idx, Primary: primary, Epoch: epoch,
			Da:              &agentpb.DaSpec{Id: id, SizeBytes: size, ClusterBytes: cluster, StripeSizeKb: strip},
			Vds:             []*agentpb.VdRef{{Id: id, DnListener: l}},
			PrimaryCntlrId:  id,
			PrimaryListener: l,
			Exps:            []*agentpb.ExpSpec{{Id: id, PortId: port, Nqn: string(nqn), InitiatorNqn: cnTestInitiator}}}
		c := validateCntlrForTest(spec)
		if c.err != nil {
			require.ErrorIs(t, c.err, errCNSpec)
			return
		}
		require.NoError(t, nvmeof.ValidateID(c.id))
		require.NoError(t, nvmeof.ValidateID(c.daID))
		require.LessOrEqual(t, c.minCntl, c.maxCntl)
		if c.primary {
			require.NotEmpty(t, c.vds)
			require.Zero(t, c.size%cnBlockBytes)
		}
	})
}

// An exporter dropped from the desired state goes, the array stays; an
// array exported under another NQN too loses only that exporter.
func TestCNDroppedExporterGoes(t *testing.T) {
	cl := newCNCluster(t, 2, 2, 1)
	cl.build()
	p := cl.cns[0]
	st := cl.cnState(0)
	st.Cntlrs[0].Exps = nil
	p.syncCNOK(st)
	require.Nil(t, p.subsystem(cl.nqn))
	require.Equal(t, cl.wantPrimaryObjects(false), p.cnOwned())
	p.syncCNOK(cl.cnState(0))
	require.Equal(t, cl.wantPrimaryObjects(true), p.cnOwned())
}

// A DA size that is not a whole MiB is still exact (SPDK <= 24.01 takes
// the size in bytes).
func TestCNLvolSizeIsExact(t *testing.T) {
	cl := newCNCluster(t, 2, 2, 1)
	cl.syncDNs()
	p := cl.cns[0]
	st := cl.cnState(0)
	st.Cntlrs[0].Da.SizeBytes = 20<<20 + 64<<10
	st.Cntlrs[0].Da.ClusterBytes = 64 << 10
	p.syncCN(st)
	alias := nvmeof.LvolAlias(nvmeof.DALvstoreName(cl.daID), nvmeof.DALvolName(cl.daID))
	b, err := p.c.BdevGetBdevs(context.Background(), spdk.BdevGetBdevsParams{Name: alias})
	require.NoError(t, err)
	require.Equal(t, uint64(20<<20+64<<10), b[0].SizeBytes())
}

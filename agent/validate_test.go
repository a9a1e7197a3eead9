package agent

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/nvmeof"
)

// validDN is a valid DN request with two PDs; edits break one field.
func validDN() *agentpb.SyncRequest {
	da, cntlr := nvmeof.NewID(), nvmeof.NewID()
	return &agentpb.SyncRequest{Generation: 3, NodeId: nvmeof.NewID(), State: &agentpb.SyncRequest_Dn{Dn: &agentpb.DnState{Pds: []*agentpb.PdSpec{
		mallocPD(nvmeof.NewID(), 128<<20, vdSpec(nvmeof.NewID(), da, cntlr, 2, 8), vdSpec(nvmeof.NewID(), da, cntlr, 2, 8)),
		{Id: nvmeof.NewID(), Conf: &agentpb.PdSpec_Aio{Aio: &agentpb.AioConf{Filename: "/dev/sdb"}}},
		{Id: nvmeof.NewID(), Conf: &agentpb.PdSpec_Nvme{Nvme: &agentpb.NvmeConf{Traddr: "0000:01:00.0"}}},
	}}}}
}

func validCN() *agentpb.SyncRequest {
	tr := func(port string) *agentpb.Transport {
		return &agentpb.Transport{Trtype: "TCP", Adrfam: "IPv4", Traddr: "192.168.0.14", Trsvcid: port}
	}
	nqn, _ := nvmeof.ExpNQN("da0", "exp0")
	nqn1, _ := nvmeof.ExpNQN("da1", "exp0")
	primary, secondary := nvmeof.NewID(), nvmeof.NewID()
	return &agentpb.SyncRequest{Generation: 3, NodeId: nvmeof.NewID(), State: &agentpb.SyncRequest_Cn{Cn: &agentpb.CnState{Cntlrs: []*agentpb.CntlrSpec{
		{CntlrId: primary, CntlrIdx: 0, Primary: true, Epoch: 1,
			Da:   &agentpb.DaSpec{Id: nvmeof.NewID(), SizeBytes: 32 << 20, ClusterBytes: 4 << 20, StripeSizeKb: 64},
			Vds:  []*agentpb.VdRef{{Id: nvmeof.NewID(), Idx: 1, DnListener: tr("4420")}, {Id: nvmeof.NewID(), Idx: 0, DnListener: tr("4421")}},
			Exps: []*agentpb.ExpSpec{{Id: nvmeof.NewID(), PortId: nvmeof.NewID(), Nqn: string(nqn), InitiatorNqn: "nqn.2016-06.io.spdk:host0", SecondaryHostNqns: []string{string(nvmeof.HostNQN(nvmeof.NewID()))}}}},
		{CntlrId: secondary, CntlrIdx: 1, Epoch: 4, PrimaryCntlrId: nvmeof.NewID(), PrimaryListener: tr("4430"),
			Da:   &agentpb.DaSpec{Id: nvmeof.NewID(), SizeBytes: 64 << 20, ClusterBytes: 8192, StripeSizeKb: 4, Initialized: true},
			Exps: []*agentpb.ExpSpec{{Id: nvmeof.NewID(), PortId: nvmeof.NewID(), Nqn: string(nqn1), InitiatorNqn: "nqn.2016-06.io.spdk:host1"}}},
	}}}}
}

func TestValidateAcceptsValidRequests(t *testing.T) {
	req := validDN()
	epochs, err := validateRequest(req, RoleDN)
	require.NoError(t, err)
	require.Equal(t, map[string]int64{req.GetDn().Pds[0].Vds[0].DaId: 2}, epochs)
	req = validCN()
	epochs, err = validateRequest(req, RoleCN)
	require.NoError(t, err)
	require.Len(t, epochs, 2)
	require.EqualValues(t, 4, epochs[req.GetCn().Cntlrs[1].Da.Id])
}

func TestValidateRefusesBadFields(t *testing.T) {
	dn := func(edit func(r *agentpb.SyncRequest, st *agentpb.DnState)) func() (*agentpb.SyncRequest, Role) {
		return func() (*agentpb.SyncRequest, Role) { r := validDN(); edit(r, r.GetDn()); return r, RoleDN }
	}
	cn := func(edit func(c []*agentpb.CntlrSpec)) func() (*agentpb.SyncRequest, Role) {
		return func() (*agentpb.SyncRequest, Role) { r := validCN(); edit(r.GetCn().Cntlrs); return r, RoleCN }
	}
	for name, tc := range map[string]struct {
		req   func() (*agentpb.SyncRequest, Role)
		field string
	}{
		"zero generation":   {dn(func(r *agentpb.SyncRequest, _ *agentpb.DnState) { r.Generation = 0 }), "generation"},
		"negative gen":      {dn(func(r *agentpb.SyncRequest, _ *agentpb.DnState) { r.Generation = -1 }), "generation"},
		"bad node id":       {dn(func(r *agentpb.SyncRequest, _ *agentpb.DnState) { r.NodeId = "dn0" }), "node_id"},
		"no state":          {dn(func(r *agentpb.SyncRequest, _ *agentpb.DnState) { r.State = nil }), "state"},
		"cn state to dn":    {func() (*agentpb.SyncRequest, Role) { return validCN(), RoleDN }, "cn"},
		"dn state to cn":    {func() (*agentpb.SyncRequest, Role) { return validDN(), RoleCN }, "dn"},
		"bad pd id":         {dn(func(_ *agentpb.SyncRequest, st *agentpb.DnState) { st.Pds[0].Id = strings.ToUpper(st.Pds[0].Id) }), "dn.pds[0].id"},
		"dup pd id":         {dn(func(_ *agentpb.SyncRequest, st *agentpb.DnState) { st.Pds[1].Id = st.Pds[0].Id }), "dn.pds[1].id"},
		"no conf":           {dn(func(_ *agentpb.SyncRequest, st *agentpb.DnState) { st.Pds[0].Conf = nil }), "dn.pds[0].conf"},
		"malloc too small":  {dn(func(_ *agentpb.SyncRequest, st *agentpb.DnState) { st.Pds[0].GetMalloc().SizeBytes = 4 << 20 }), "malloc.size_bytes"},
		"malloc not blocks": {dn(func(_ *agentpb.SyncRequest, st *agentpb.DnState) { st.Pds[0].GetMalloc().SizeBytes = 128<<20 + 512 }), "malloc.size_bytes"},
		"malloc huge":       {dn(func(_ *agentpb.SyncRequest, st *agentpb.DnState) { st.Pds[0].GetMalloc().SizeBytes = 1 << 60 }), "malloc.size_bytes"},
		"aio relative":      {dn(func(_ *agentpb.SyncRequest, st *agentpb.DnState) { st.Pds[1].GetAio().Filename = "disk.img" }), "aio.filename"},
		"aio unclean":       {dn(func(_ *agentpb.SyncRequest, st *agentpb.DnState) { st.Pds[1].GetAio().Filename = "/dev/../etc/passwd" }), "aio.filename"},
		"aio control":       {dn(func(_ *agentpb.SyncRequest, st *agentpb.DnState) { st.Pds[1].GetAio().Filename = "/dev/sd\x00b" }), "aio.filename"},
		"aio empty":         {dn(func(_ *agentpb.SyncRequest, st *agentpb.DnState) { st.Pds[1].GetAio().Filename = "" }), "aio.filename"},
		"nvme bad addr":     {dn(func(_ *agentpb.SyncRequest, st *agentpb.DnState) { st.Pds[2].GetNvme().Traddr = "01:00" }), "nvme.traddr"},
		"same nvme twice": {dn(func(_ *agentpb.SyncRequest, st *agentpb.DnState) {
			st.Pds[0].Conf = &agentpb.PdSpec_Nvme{Nvme: &agentpb.NvmeConf{Traddr: "01:00.0"}}
		}), "nvme.traddr"},
		"same file twice": {dn(func(_ *agentpb.SyncRequest, st *agentpb.DnState) {
			st.Pds[0].Conf = &agentpb.PdSpec_Aio{Aio: &agentpb.AioConf{Filename: "/dev/sdb"}}
		}), "aio.filename"},
		"bad vd id":       {dn(func(_ *agentpb.SyncRequest, st *agentpb.DnState) { st.Pds[0].Vds[0].Id = "" }), "vds[0].id"},
		"dup vd id":       {dn(func(_ *agentpb.SyncRequest, st *agentpb.DnState) { st.Pds[0].Vds[1].Id = st.Pds[0].Vds[0].Id }), "vds[1].id"},
		"bad da id":       {dn(func(_ *agentpb.SyncRequest, st *agentpb.DnState) { st.Pds[0].Vds[0].DaId = "da0" }), "da_id"},
		"zero epoch":      {dn(func(_ *agentpb.SyncRequest, st *agentpb.DnState) { st.Pds[0].Vds[0].Epoch = 0 }), "epoch"},
		"epochs disagree": {dn(func(_ *agentpb.SyncRequest, st *agentpb.DnState) { st.Pds[0].Vds[1].Epoch = 3 }), "vds[1].epoch"},
		"vd size zero":    {dn(func(_ *agentpb.SyncRequest, st *agentpb.DnState) { st.Pds[0].Vds[0].SizeBytes = 0 }), "size_bytes"},
		"vd size not mib": {dn(func(_ *agentpb.SyncRequest, st *agentpb.DnState) { st.Pds[0].Vds[0].SizeBytes = 8<<20 + 4096 }), "size_bytes"},
		"host not a cntlr": {dn(func(_ *agentpb.SyncRequest, st *agentpb.DnState) {
			st.Pds[0].Vds[0].HostNqn = "nqn.2016-06.io.spdk:host0"
		}), "host_nqn"},
		"host not an nqn": {dn(func(_ *agentpb.SyncRequest, st *agentpb.DnState) { st.Pds[0].Vds[0].HostNqn = "host0" }), "host_nqn"},
		"host is a vd nqn": {dn(func(_ *agentpb.SyncRequest, st *agentpb.DnState) {
			st.Pds[0].Vds[0].HostNqn = string(nvmeof.VDNQN(nvmeof.NewID()))
		}), "host_nqn"},
		"host is a secondary's": {dn(func(_ *agentpb.SyncRequest, st *agentpb.DnState) {
			st.Pds[0].Vds[0].HostNqn = string(nvmeof.HostNQN(nvmeof.NewID()))
		}), "host_nqn"},
		"host of another epoch": {dn(func(_ *agentpb.SyncRequest, st *agentpb.DnState) {
			st.Pds[0].Vds[0].HostNqn = string(nvmeof.PrimaryHostNQN(nvmeof.NewID(), uint64(st.Pds[0].Vds[0].Epoch)+1))
		}), "is the primary of epoch"},
		"bad cntlr id":       {cn(func(c []*agentpb.CntlrSpec) { c[0].CntlrId = "x" }), "cntlrs[0].cntlr_id"},
		"dup cntlr id":       {cn(func(c []*agentpb.CntlrSpec) { c[1].CntlrId = c[0].CntlrId }), "cntlrs[1].cntlr_id"},
		"cntlr idx":          {cn(func(c []*agentpb.CntlrSpec) { c[0].CntlrIdx = 65 }), "cntlr_idx"},
		"no da":              {cn(func(c []*agentpb.CntlrSpec) { c[0].Da = nil }), "cntlrs[0].da"},
		"same da twice":      {cn(func(c []*agentpb.CntlrSpec) { c[1].Da.Id = c[0].Da.Id }), "cntlrs[1].da.id"},
		"cn zero epoch":      {cn(func(c []*agentpb.CntlrSpec) { c[0].Epoch = 0 }), "cntlrs[0].epoch"},
		"cluster not pow2":   {cn(func(c []*agentpb.CntlrSpec) { c[0].Da.ClusterBytes = 3 << 20 }), "cluster_bytes"},
		"size not clusters":  {cn(func(c []*agentpb.CntlrSpec) { c[0].Da.SizeBytes = 30 << 20 }), "da.size_bytes"},
		"strip size":         {cn(func(c []*agentpb.CntlrSpec) { c[0].Da.StripeSizeKb = 48 }), "stripe_size_kb"},
		"primary no vds":     {cn(func(c []*agentpb.CntlrSpec) { c[0].Vds = nil }), "cntlrs[0].vds"},
		"vd idx dup":         {cn(func(c []*agentpb.CntlrSpec) { c[0].Vds[1].Idx = 1 }), "vds[1].idx"},
		"vd idx range":       {cn(func(c []*agentpb.CntlrSpec) { c[0].Vds[1].Idx = 2 }), "vds[1].idx"},
		"dn listener":        {cn(func(c []*agentpb.CntlrSpec) { c[0].Vds[0].DnListener.Trsvcid = "0" }), "dn_listener"},
		"no dn listener":     {cn(func(c []*agentpb.CntlrSpec) { c[0].Vds[0].DnListener = nil }), "dn_listener"},
		"secondary vds":      {cn(func(c []*agentpb.CntlrSpec) { c[1].Vds = c[0].Vds }), "cntlrs[1].vds"},
		"secondary primary":  {cn(func(c []*agentpb.CntlrSpec) { c[1].PrimaryCntlrId = "" }), "primary_cntlr_id"},
		"secondary self":     {cn(func(c []*agentpb.CntlrSpec) { c[1].PrimaryCntlrId = c[1].CntlrId }), "primary_cntlr_id"},
		"secondary listener": {cn(func(c []*agentpb.CntlrSpec) { c[1].PrimaryListener = nil }), "primary_listener"},
		"exp id":             {cn(func(c []*agentpb.CntlrSpec) { c[0].Exps[0].Id = "e" }), "exps[0].id"},
		"port id":            {cn(func(c []*agentpb.CntlrSpec) { c[0].Exps[0].PortId = "" }), "port_id"},
		"dup port id":        {cn(func(c []*agentpb.CntlrSpec) { c[1].Exps[0].PortId = c[0].Exps[0].PortId }), "port_id"},
		"exp nqn":            {cn(func(c []*agentpb.CntlrSpec) { c[0].Exps[0].Nqn = "nqn.2016-06.io.spdk:host0" }), "exps[0].nqn"},
		"dup exp nqn":        {cn(func(c []*agentpb.CntlrSpec) { c[1].Exps[0].Nqn = c[0].Exps[0].Nqn }), "exps[0].nqn"},
		"initiator":          {cn(func(c []*agentpb.CntlrSpec) { c[0].Exps[0].InitiatorNqn = string(nvmeof.HostNQN(nvmeof.NewID())) }), "initiator_nqn"},
		"secondary hosts":    {cn(func(c []*agentpb.CntlrSpec) { c[0].Exps[0].SecondaryHostNqns = []string{"nqn.2016-06.io.spdk:host9"} }), "secondary_host_nqns[0]"},
		"own host": {cn(func(c []*agentpb.CntlrSpec) {
			c[0].Exps[0].SecondaryHostNqns = []string{string(nvmeof.HostNQN(c[0].CntlrId))}
		}), "secondary_host_nqns[0]"},
		"hosts on secondary": {cn(func(c []*agentpb.CntlrSpec) { c[1].Exps[0].SecondaryHostNqns = c[0].Exps[0].SecondaryHostNqns }), "secondary_host_nqns"},
	} {
		t.Run(name, func(t *testing.T) {
			req, role := tc.req()
			before := proto.Clone(req)
			_, err := validateRequest(req, role)
			require.ErrorIs(t, err, ErrInvalidArgument)
			require.Contains(t, err.Error(), tc.field)
			require.True(t, proto.Equal(before, req), "validation does not edit the request")
		})
	}
}

func FuzzValidateRequest(f *testing.F) {
	for _, r := range []*agentpb.SyncRequest{validDN(), validCN(), {}} {
		b, err := proto.Marshal(r)
		require.NoError(f, err)
		f.Add(b, true)
		f.Add(b, false)
	}
	f.Fuzz(func(t *testing.T, b []byte, dn bool) {
		var req agentpb.SyncRequest
		if proto.Unmarshal(b, &req) != nil {
			return
		}
		role := RoleCN
		if dn {
			role = RoleDN
		}
		epochs, err := validateRequest(&req, role)
		if err != nil {
			if !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("error %v does not wrap ErrInvalidArgument", err)
			}
			return
		}
		// What passes is safe to name SPDK objects after.
		if nvmeof.ValidateID(req.GetNodeId()) != nil || req.GetGeneration() < 1 {
			t.Fatalf("accepted %v", &req)
		}
		for da, e := range epochs {
			if nvmeof.ValidateID(da) != nil || e < 1 {
				t.Fatalf("accepted DA %q epoch %d", da, e)
			}
		}
		for _, pd := range req.GetDn().GetPds() {
			if nvmeof.ValidateID(pd.GetId()) != nil || !nvmeof.IsOwnedLvstore(nvmeof.PDLvstoreName(pd.GetId())) {
				t.Fatalf("accepted PD %q", pd.GetId())
			}
			for _, vd := range pd.GetVds() {
				n, ok := nvmeof.ParseName(vd.GetHostNqn())
				if !ok || n.Kind != nvmeof.KindPrimaryHostNQN || n.Epoch != uint64(vd.GetEpoch()) || vd.GetSizeBytes()%mib != 0 {
					t.Fatalf("accepted VD %v", vd)
				}
			}
		}
		for _, c := range req.GetCn().GetCntlrs() {
			if _, _, err := nvmeof.ControllerIDRange(int(c.GetCntlrIdx())); err != nil || c.GetDa() == nil {
				t.Fatalf("accepted controller %v", c)
			}
		}
	})
}

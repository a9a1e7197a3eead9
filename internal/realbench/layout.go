package realbench

import (
	"fmt"

	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/nvmeof"
)

// Sizes of the layout's objects. A VD is two 4 MiB clusters of its PD's
// lvstore: SPDK v24.01 gives an lvstore about one metadata page per
// cluster, and every lvol takes two (its blob and its extent page), so a
// PD holds only half as many single-cluster VDs as it has clusters.
const (
	VDBytes      = 8 << 20
	daBytes      = 4 << 20
	daCluster    = 1 << 20
	vdsPerPD     = 100
	pdSpareBytes = 24 << 20 // lvstore metadata, rounding
	// Initiator is every exporter's host NQN.
	Initiator = "nqn.2016-06.io.example:realbench-host"
)

// Layout is a disk node holding every VD of a controller node's arrays.
type Layout struct {
	DN *agentpb.DnState
	CN *agentpb.CnState
}

// NewLayout returns das disk arrays of vdsPerDA VDs each (raid0), every
// one a primary on the controller node with one exporter, and their VDs on
// the disk node reached at dn, vdsPerPD on each malloc PD.
func NewLayout(das, vdsPerDA int, dn nvmeof.TransportID) Layout {
	l := Layout{DN: &agentpb.DnState{}, CN: &agentpb.CnState{}}
	var pd *agentpb.PdSpec
	addVD := func(vd *agentpb.VdSpec) {
		if pd == nil || len(pd.Vds) == vdsPerPD {
			pd = &agentpb.PdSpec{Id: nvmeof.NewID()}
			l.DN.Pds = append(l.DN.Pds, pd)
		}
		pd.Vds = append(pd.Vds, vd)
		pd.Conf = &agentpb.PdSpec_Malloc{Malloc: &agentpb.MallocConf{SizeBytes: uint64(len(pd.Vds))*VDBytes + pdSpareBytes}}
	}
	tr := &agentpb.Transport{Trtype: dn.TrType, Adrfam: dn.AdrFam, Traddr: dn.TrAddr, Trsvcid: dn.TrSvcID}
	for i := range das {
		c := &agentpb.CntlrSpec{CntlrId: nvmeof.NewID(), Primary: true, Epoch: 1,
			Da: &agentpb.DaSpec{Id: nvmeof.NewID(), SizeBytes: daBytes, ClusterBytes: daCluster, StripeSizeKb: 64}}
		nqn, err := nvmeof.ExpNQN(fmt.Sprintf("da%d", i), "exp0")
		if err != nil {
			panic(err) // fixed, valid names
		}
		c.Exps = []*agentpb.ExpSpec{{Id: nvmeof.NewID(), PortId: nvmeof.NewID(), Nqn: string(nqn), InitiatorNqn: Initiator}}
		host := string(nvmeof.PrimaryHostNQN(c.CntlrId, 1))
		for d := range vdsPerDA {
			vd := nvmeof.NewID()
			c.Vds = append(c.Vds, &agentpb.VdRef{Id: vd, Idx: uint32(d), DnListener: tr})
			addVD(&agentpb.VdSpec{Id: vd, DaId: c.Da.Id, Epoch: 1, SizeBytes: VDBytes, HostNqn: host})
		}
		l.CN.Cntlrs = append(l.CN.Cntlrs, c)
	}
	return l
}

// SetInitialized marks every array initialized (its lvstore exists), as
// the monitor does once a primary reported it.
func (l Layout) SetInitialized() {
	for _, c := range l.CN.GetCntlrs() {
		c.Da.Initialized = true
	}
}

// VDs returns the number of VDs of the layout.
func (l Layout) VDs() int {
	n := 0
	for _, pd := range l.DN.GetPds() {
		n += len(pd.GetVds())
	}
	return n
}

// First returns the layout of the first das arrays of l: the same IDs, so
// that applying l afterwards only adds to it.
func (l Layout) First(das int) Layout {
	out := Layout{DN: &agentpb.DnState{}, CN: &agentpb.CnState{Cntlrs: l.CN.GetCntlrs()[:das]}}
	want := map[string]bool{}
	for _, c := range out.CN.GetCntlrs() {
		want[c.GetDa().GetId()] = true
	}
	for _, pd := range l.DN.GetPds() {
		cp := &agentpb.PdSpec{Id: pd.GetId(), Conf: pd.GetConf()}
		for _, vd := range pd.GetVds() {
			if want[vd.GetDaId()] {
				cp.Vds = append(cp.Vds, vd)
			}
		}
		if len(cp.Vds) > 0 {
			out.DN.Pds = append(out.DN.Pds, cp)
		}
	}
	return out
}

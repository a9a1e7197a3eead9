package portal

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/vda-io/vda"
	pb "github.com/vda-io/vda/api/portalpb"
	"github.com/vda-io/vda/nvmeof"
)

func statusMsg(s vda.Status) *pb.Status {
	m := &pb.Status{Health: string(s.Health), Error: s.ErrorMsg != "", ErrorMsg: s.ErrorMsg,
		TotalBytes: s.TotalBytes, FreeBytes: s.FreeBytes, AppliedSize: s.AppliedSizeBytes}
	if !s.UpdatedAt.IsZero() {
		m.UpdatedAt = s.UpdatedAt.UTC().Format(time.RFC3339Nano)
	}
	return m
}

func dnMsg(dn vda.DiskNode) *pb.DnMsg {
	return &pb.DnMsg{DnId: dn.ID, DnName: dn.Name, DnAddress: dn.Address, DnListenerConf: listenerConf(dn.Listener), Location: dn.Location,
		Description: dn.Description, Offline: dn.Offline, PdCnt: uint32(dn.PDCount), Status: statusMsg(dn.Status)}
}

func pdMsg(pd vda.PhysicalDisk) *pb.PdMsg {
	conf, _ := json.Marshal(pd.Conf) // a plain struct: cannot fail
	return &pb.PdMsg{PdId: pd.ID, PdName: pd.Name, DnName: pd.DNName, PdConf: string(conf),
		Description: pd.Description, Offline: pd.Offline, CapacityBytes: pd.CapacityBytes(),
		AllocatedBytes: pd.AllocatedBytes, FreeBytes: pd.FreeBytes(), VdCnt: uint32(pd.VDCount),
		Status: statusMsg(pd.Status), Force: pd.Force}
}

func cnMsg(cn vda.ControllerNode) *pb.CnMsg {
	return &pb.CnMsg{CnId: cn.ID, CnName: cn.Name, CnAddress: cn.Address, CnListenerConf: listenerConf(cn.Listener), Location: cn.Location,
		Description: cn.Description, Offline: cn.Offline, CntlrCnt: uint32(cn.CntlrCount), Status: statusMsg(cn.Status)}
}

func daMsg(da vda.DiskArray) *pb.DaMsg {
	m := &pb.DaMsg{DaId: da.ID, DaName: da.Name, CntlrCnt: uint32(da.CntlrCount), DaSize: da.SizeBytes,
		PhysicalSize: da.PhysicalSizeBytes, Description: da.Description,
		DaConf:      &pb.DaConf{StripeCount: uint32(da.StripeCount), StripeSizeKb: uint32(da.StripeSizeKB)},
		ClusterSize: da.ClusterBytes, VdSize: da.VDSizeBytes, Epoch: da.Epoch, PrimaryCntlrId: da.PrimaryCntlrID,
		Initialized: da.Initialized, ExpCnt: uint32(da.ExpCount), Status: statusMsg(da.Status),
		CnLocations: da.CNLocations, DnLocations: da.DNLocations}
	m.Qos = &pb.QosMsg{RwIosPerSec: da.QoS.RWIOsPerSec, RwMbytesPerSec: da.QoS.RWMBytesPerSec,
		RMbytesPerSec: da.QoS.ReadMBytesPerSec, WMbytesPerSec: da.QoS.WriteMBytesPerSec}
	for _, c := range da.Cntlrs {
		st := da.Status.Part(c.ID)
		m.CntlrList = append(m.CntlrList, &pb.CntlrMsg{CntlrId: c.ID, CntlrIdx: uint32(c.Idx), CnName: c.CNName,
			Primary: c.Primary, Health: string(st.Health), Error: st.ErrorMsg != "", ErrorMsg: st.ErrorMsg})
	}
	for _, vd := range da.VDs {
		st := da.Status.Part(vd.ID)
		m.VdList = append(m.VdList, &pb.VdMsg{VdId: vd.ID, VdIdx: uint32(vd.Idx), DnName: vd.DNName, PdName: vd.PDName,
			Size: vd.SizeBytes, Health: string(st.Health), Error: st.ErrorMsg != "", ErrorMsg: st.ErrorMsg})
	}
	return m
}

func expMsg(exp vda.Exporter) *pb.ExpMsg {
	m := &pb.ExpMsg{ExpId: exp.ID, ExpName: exp.Name, ExpNqn: exp.NQN, DaName: exp.DAName,
		InitiatorNqn: exp.InitiatorNQN, SnapName: exp.SnapName, Description: exp.Description,
		EsMsgList: []*pb.EsMsg{}, Status: statusMsg(exp.Status), HostNqns: slices.Clone(exp.HostNQNs)}
	m.CloneName = exp.CloneName
	for _, p := range exp.Ports {
		st := exp.Status.Part(p.ID)
		m.EsMsgList = append(m.EsMsgList, &pb.EsMsg{EsId: p.ID, CntlrIdx: uint32(p.CntlrIdx), CnName: p.CNName,
			CnListenerConf: listenerConf(p.CNListener), Error: st.ErrorMsg != "", ErrorMsg: st.ErrorMsg})
	}
	return m
}

// listenerConf is a listener as the API shows it: the CLI's JSON, or ""
// for none (an exporter port whose controller node is gone).
func listenerConf(t nvmeof.TransportID) string {
	b, _ := t.MarshalText() // cannot fail
	return string(b)
}

func page(p *pb.Page) vda.Page {
	return vda.Page{Limit: int(p.GetLimit()), Token: p.GetPageToken()}
}

func unbindReply(b vda.Binding) *pb.UnbindReply {
	r := &pb.UnbindReply{NodeId: b.NodeID, NodeName: b.NodeName, AgentId: b.AgentID}
	if !b.BoundAt.IsZero() {
		r.BoundAt = b.BoundAt.UTC().Format(time.RFC3339Nano)
	}
	return r
}

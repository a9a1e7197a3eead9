package portal

import (
	"context"
	"fmt"
	"math"

	"github.com/vda-io/vda"
	pb "github.com/vda-io/vda/api/portalpb"
	"github.com/vda-io/vda/nvmeof"
)

// CreateDn implements portalpb.PortalServer.
func (s *Server) CreateDn(ctx context.Context, r *pb.CreateDnRequest) (*pb.DnReply, error) {
	l, err := vda.ParseListenerConf(r.GetDnListenerConf())
	if err != nil {
		return nil, err
	}
	dn, err := s.c.CreateDiskNode(ctx, vda.NodeSpec{Name: r.GetDnName(), Address: r.GetDnAddress(), Description: r.GetDescription(),
		Listener: l, Location: r.GetLocation()})
	if err != nil {
		return nil, err
	}
	return &pb.DnReply{DnMsg: dnMsg(dn)}, nil
}

// GetDn implements portalpb.PortalServer.
func (s *Server) GetDn(ctx context.Context, r *pb.GetDnRequest) (*pb.DnReply, error) {
	dn, err := s.c.GetDiskNode(ctx, r.GetDnName())
	if err != nil {
		return nil, err
	}
	return &pb.DnReply{DnMsg: dnMsg(dn)}, nil
}

// ListDn implements portalpb.PortalServer.
func (s *Server) ListDn(ctx context.Context, r *pb.ListDnRequest) (*pb.ListDnReply, error) {
	dns, next, err := s.c.ListDiskNodes(ctx, page(r.GetPage()))
	if err != nil {
		return nil, err
	}
	out := &pb.ListDnReply{DnMsgList: []*pb.DnMsg{}, NextPageToken: next}
	for _, dn := range dns {
		out.DnMsgList = append(out.DnMsgList, dnMsg(dn))
	}
	return out, nil
}

// ModifyDn implements portalpb.PortalServer.
func (s *Server) ModifyDn(ctx context.Context, r *pb.ModifyDnRequest) (*pb.DnReply, error) {
	l, err := optListener(r.DnListenerConf)
	if err != nil {
		return nil, err
	}
	dn, err := s.c.ModifyDiskNode(ctx, r.GetDnName(), vda.NodeUpdate{Address: r.DnAddress, Description: r.Description,
		Listener: l, Location: r.Location, Offline: r.Offline})
	if err != nil {
		return nil, err
	}
	return &pb.DnReply{DnMsg: dnMsg(dn)}, nil
}

// DeleteDn implements portalpb.PortalServer.
func (s *Server) DeleteDn(ctx context.Context, r *pb.DeleteDnRequest) (*pb.DeleteReply, error) {
	return &pb.DeleteReply{}, s.c.DeleteDiskNode(ctx, r.GetDnName())
}

// CreatePd implements portalpb.PortalServer.
func (s *Server) CreatePd(ctx context.Context, r *pb.CreatePdRequest) (*pb.PdReply, error) {
	conf, err := vda.ParsePDConf(r.GetPdConf())
	if err != nil {
		return nil, err
	}
	pd, err := s.c.CreatePhysicalDisk(ctx, vda.PhysicalDiskSpec{DNName: r.GetDnName(), Name: r.GetPdName(),
		Description: r.GetDescription(), Conf: conf, Force: r.GetForce()})
	if err != nil {
		return nil, err
	}
	return &pb.PdReply{PdMsg: pdMsg(pd)}, nil
}

// GetPd implements portalpb.PortalServer.
func (s *Server) GetPd(ctx context.Context, r *pb.GetPdRequest) (*pb.PdReply, error) {
	pd, err := s.c.GetPhysicalDisk(ctx, r.GetDnName(), r.GetPdName())
	if err != nil {
		return nil, err
	}
	return &pb.PdReply{PdMsg: pdMsg(pd)}, nil
}

// ListPd implements portalpb.PortalServer.
func (s *Server) ListPd(ctx context.Context, r *pb.ListPdRequest) (*pb.ListPdReply, error) {
	pds, next, err := s.c.ListPhysicalDisks(ctx, r.GetDnName(), page(r.GetPage()))
	if err != nil {
		return nil, err
	}
	out := &pb.ListPdReply{PdMsgList: []*pb.PdMsg{}, NextPageToken: next}
	for _, pd := range pds {
		out.PdMsgList = append(out.PdMsgList, pdMsg(pd))
	}
	return out, nil
}

// ModifyPd implements portalpb.PortalServer.
func (s *Server) ModifyPd(ctx context.Context, r *pb.ModifyPdRequest) (*pb.PdReply, error) {
	pd, err := s.c.ModifyPhysicalDisk(ctx, r.GetDnName(), r.GetPdName(),
		vda.PhysicalDiskUpdate{Description: r.Description, Offline: r.Offline})
	if err != nil {
		return nil, err
	}
	return &pb.PdReply{PdMsg: pdMsg(pd)}, nil
}

// DeletePd implements portalpb.PortalServer.
func (s *Server) DeletePd(ctx context.Context, r *pb.DeletePdRequest) (*pb.DeleteReply, error) {
	return &pb.DeleteReply{}, s.c.DeletePhysicalDisk(ctx, r.GetDnName(), r.GetPdName())
}

// CreateCn implements portalpb.PortalServer.
func (s *Server) CreateCn(ctx context.Context, r *pb.CreateCnRequest) (*pb.CnReply, error) {
	l, err := vda.ParseListenerConf(r.GetCnListenerConf())
	if err != nil {
		return nil, err
	}
	cn, err := s.c.CreateControllerNode(ctx, vda.NodeSpec{Name: r.GetCnName(), Address: r.GetCnAddress(), Description: r.GetDescription(),
		Listener: l, Location: r.GetLocation()})
	if err != nil {
		return nil, err
	}
	return &pb.CnReply{CnMsg: cnMsg(cn)}, nil
}

// GetCn implements portalpb.PortalServer.
func (s *Server) GetCn(ctx context.Context, r *pb.GetCnRequest) (*pb.CnReply, error) {
	cn, err := s.c.GetControllerNode(ctx, r.GetCnName())
	if err != nil {
		return nil, err
	}
	return &pb.CnReply{CnMsg: cnMsg(cn)}, nil
}

// ListCn implements portalpb.PortalServer.
func (s *Server) ListCn(ctx context.Context, r *pb.ListCnRequest) (*pb.ListCnReply, error) {
	cns, next, err := s.c.ListControllerNodes(ctx, page(r.GetPage()))
	if err != nil {
		return nil, err
	}
	out := &pb.ListCnReply{CnMsgList: []*pb.CnMsg{}, NextPageToken: next}
	for _, cn := range cns {
		out.CnMsgList = append(out.CnMsgList, cnMsg(cn))
	}
	return out, nil
}

// ModifyCn implements portalpb.PortalServer.
func (s *Server) ModifyCn(ctx context.Context, r *pb.ModifyCnRequest) (*pb.CnReply, error) {
	l, err := optListener(r.CnListenerConf)
	if err != nil {
		return nil, err
	}
	cn, err := s.c.ModifyControllerNode(ctx, r.GetCnName(), vda.NodeUpdate{Address: r.CnAddress, Description: r.Description,
		Listener: l, Location: r.Location, Offline: r.Offline})
	if err != nil {
		return nil, err
	}
	return &pb.CnReply{CnMsg: cnMsg(cn)}, nil
}

// optListener parses an optional listener configuration of a modify
// request (nil: leave the node's alone).
func optListener(conf *string) (*nvmeof.TransportID, error) {
	if conf == nil {
		return nil, nil
	}
	l, err := vda.ParseListenerConf(*conf)
	if err != nil {
		return nil, err
	}
	return &l, nil
}

// DeleteCn implements portalpb.PortalServer.
func (s *Server) DeleteCn(ctx context.Context, r *pb.DeleteCnRequest) (*pb.DeleteReply, error) {
	return &pb.DeleteReply{}, s.c.DeleteControllerNode(ctx, r.GetCnName())
}

// CreateDa implements portalpb.PortalServer.
func (s *Server) CreateDa(ctx context.Context, r *pb.CreateDaRequest) (*pb.DaReply, error) {
	conf, err := vda.ParseDAConf(r.GetDaConf())
	if err != nil {
		return nil, err
	}
	if r.GetCntlrCnt() > math.MaxInt32 {
		return nil, fmt.Errorf("%w: cntlr_cnt %d is too large", vda.ErrInvalidArgument, r.GetCntlrCnt())
	}
	da, err := s.c.CreateDiskArray(ctx, vda.DiskArraySpec{Name: r.GetDaName(), Description: r.GetDescription(),
		CntlrCount: int(r.GetCntlrCnt()), SizeBytes: r.GetDaSize(), PhysicalSizeBytes: r.GetPhysicalSize(), Conf: conf,
		CNLocations: r.GetCnLocations(), DNLocations: r.GetDnLocations()})
	if err != nil {
		return nil, err
	}
	return &pb.DaReply{DaMsg: daMsg(da)}, nil
}

// GetDa implements portalpb.PortalServer.
func (s *Server) GetDa(ctx context.Context, r *pb.GetDaRequest) (*pb.DaReply, error) {
	da, err := s.c.GetDiskArray(ctx, r.GetDaName())
	if err != nil {
		return nil, err
	}
	return &pb.DaReply{DaMsg: daMsg(da)}, nil
}

// ListDa implements portalpb.PortalServer.
func (s *Server) ListDa(ctx context.Context, r *pb.ListDaRequest) (*pb.ListDaReply, error) {
	das, next, err := s.c.ListDiskArrays(ctx, page(r.GetPage()))
	if err != nil {
		return nil, err
	}
	out := &pb.ListDaReply{DaMsgList: []*pb.DaMsg{}, NextPageToken: next}
	for _, da := range das {
		out.DaMsgList = append(out.DaMsgList, daMsg(da))
	}
	return out, nil
}

// ModifyDa implements portalpb.PortalServer.
func (s *Server) ModifyDa(ctx context.Context, r *pb.ModifyDaRequest) (*pb.DaReply, error) {
	u := vda.DiskArrayUpdate{Description: r.Description, SizeBytes: r.DaSize}
	if q := r.GetQos(); q != nil {
		u.QoS = &vda.QoS{RWIOsPerSec: q.GetRwIosPerSec(), RWMBytesPerSec: q.GetRwMbytesPerSec(),
			ReadMBytesPerSec: q.GetRMbytesPerSec(), WriteMBytesPerSec: q.GetWMbytesPerSec()}
	}
	da, err := s.c.ModifyDiskArray(ctx, r.GetDaName(), u)
	if err != nil {
		return nil, err
	}
	return &pb.DaReply{DaMsg: daMsg(da)}, nil
}

// DeleteDa implements portalpb.PortalServer.
func (s *Server) DeleteDa(ctx context.Context, r *pb.DeleteDaRequest) (*pb.DeleteReply, error) {
	return &pb.DeleteReply{}, s.c.DeleteDiskArray(ctx, r.GetDaName())
}

// SwitchoverDa implements portalpb.PortalServer.
func (s *Server) SwitchoverDa(ctx context.Context, r *pb.SwitchoverDaRequest) (*pb.DaReply, error) {
	da, err := s.c.SwitchoverDiskArray(ctx, r.GetDaName(), int(r.GetCntlrIdx()))
	if err != nil {
		return nil, err
	}
	return &pb.DaReply{DaMsg: daMsg(da)}, nil
}

// CreateExp implements portalpb.PortalServer.
func (s *Server) CreateExp(ctx context.Context, r *pb.CreateExpRequest) (*pb.ExpReply, error) {
	exp, err := s.c.CreateExporter(ctx, vda.ExporterSpec{DAName: r.GetDaName(), Name: r.GetExpName(),
		Description: r.GetDescription(), InitiatorNQN: r.GetInitiatorNqn(),
		HostNQNs: r.GetHostNqns(),
		SnapName: r.GetSnapName(), CloneName: r.GetCloneName()})
	if err != nil {
		return nil, err
	}
	return &pb.ExpReply{ExpMsg: expMsg(exp)}, nil
}

// GetExp implements portalpb.PortalServer.
func (s *Server) GetExp(ctx context.Context, r *pb.GetExpRequest) (*pb.ExpReply, error) {
	exp, err := s.c.GetExporter(ctx, r.GetDaName(), r.GetExpName())
	if err != nil {
		return nil, err
	}
	return &pb.ExpReply{ExpMsg: expMsg(exp)}, nil
}

// ListExp implements portalpb.PortalServer.
func (s *Server) ListExp(ctx context.Context, r *pb.ListExpRequest) (*pb.ListExpReply, error) {
	exps, next, err := s.c.ListExporters(ctx, r.GetDaName(), page(r.GetPage()))
	if err != nil {
		return nil, err
	}
	out := &pb.ListExpReply{ExpMsgList: []*pb.ExpMsg{}, NextPageToken: next}
	for _, exp := range exps {
		out.ExpMsgList = append(out.ExpMsgList, expMsg(exp))
	}
	return out, nil
}

// ModifyExp implements portalpb.PortalServer.
func (s *Server) ModifyExp(ctx context.Context, r *pb.ModifyExpRequest) (*pb.ExpReply, error) {
	exp, err := s.c.ModifyExporter(ctx, r.GetDaName(), r.GetExpName(),
		vda.ExporterUpdate{Description: r.Description, InitiatorNQN: r.InitiatorNqn,
			AddHostNQNs: r.GetAddHostNqns(), RemoveHostNQNs: r.GetRemoveHostNqns()})
	if err != nil {
		return nil, err
	}
	return &pb.ExpReply{ExpMsg: expMsg(exp)}, nil
}

// DeleteExp implements portalpb.PortalServer.
func (s *Server) DeleteExp(ctx context.Context, r *pb.DeleteExpRequest) (*pb.DeleteReply, error) {
	return &pb.DeleteReply{}, s.c.DeleteExporter(ctx, r.GetDaName(), r.GetExpName())
}

// GetClusterSummary implements portalpb.PortalServer.
func (s *Server) GetClusterSummary(ctx context.Context, _ *pb.GetClusterSummaryRequest) (*pb.ClusterSummaryReply, error) {
	sum, err := s.c.Summary(ctx)
	if err != nil {
		return nil, err
	}
	return &pb.ClusterSummaryReply{DnCnt: uint32(sum.DNCount), PdCnt: uint32(sum.PDCount), CnCnt: uint32(sum.CNCount),
		DaCnt: uint32(sum.DACount), ExpCnt: uint32(sum.ExpCount), TotalBytes: sum.TotalBytes, FreeBytes: sum.FreeBytes}, nil
}

// UnbindDn implements portalpb.PortalServer.
func (s *Server) UnbindDn(ctx context.Context, r *pb.UnbindDnRequest) (*pb.UnbindReply, error) {
	b, err := s.c.UnbindDiskNode(ctx, r.GetDnName())
	if err != nil {
		return nil, err
	}
	return unbindReply(b), nil
}

// UnbindCn implements portalpb.PortalServer.
func (s *Server) UnbindCn(ctx context.Context, r *pb.UnbindCnRequest) (*pb.UnbindReply, error) {
	b, err := s.c.UnbindControllerNode(ctx, r.GetCnName())
	if err != nil {
		return nil, err
	}
	return unbindReply(b), nil
}

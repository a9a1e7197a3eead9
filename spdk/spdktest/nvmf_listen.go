package spdktest

import (
	"encoding/json"
	"github.com/vda-io/vda/spdk/spdktest/blockdev"
	"github.com/vda-io/vda/spdk/spdktest/fabric"
	"strings"
)

func init() {
	register("nvmf_subsystem_add_listener", phaseRuntime, nvmfAddListener)
	register("nvmf_subsystem_remove_listener", phaseRuntime, nvmfRemoveListener)
	register("nvmf_subsystem_get_listeners", phaseRuntime, nvmfGetListeners)
	register("nvmf_subsystem_listener_set_ana_state", phaseRuntime, nvmfSetANAState)
	register("nvmf_subsystem_get_controllers", phaseRuntime, nvmfGetControllers)
	register("nvmf_subsystem_get_qpairs", phaseRuntime, nvmfGetQpairs)
}

// fabricTarget is the NVMe-oF target side of one instance: the real TCP
// listeners (shared by every subsystem on the same address) and sessions.
type fabricTarget struct {
	t    *fabric.Target
	refs map[fabric.TransportID]int
}

func newFabric(s *state) fabricTarget {
	return fabricTarget{
		t:    fabric.NewTarget(s.admit, s.in.log.Named("fabric"), fabric.WithListenFunc(s.in.t.listenTCP)),
		refs: map[fabric.TransportID]int{},
	}
}

func (f fabricTarget) Close()                          { _ = f.t.Close() }
func (f fabricTarget) DisconnectSubsystem(nqn string)  { f.t.DisconnectSubsystem(nqn) }
func (f fabricTarget) DisconnectHost(nqn, host string) { f.t.DisconnectHost(nqn, host) }

// wireTrid is the transport id as the fabric package sees it.
func wireTrid(t fabric.TransportID) fabric.TransportID {
	return fabric.TransportID{TrType: strings.ToLower(t.TrType), AdrFam: strings.ToLower(t.AdrFam), TrAddr: t.TrAddr, TrSvcID: t.TrSvcID}
}

func (s *state) acquireListener(trid fabric.TransportID) error {
	if s.fab.refs[trid] == 0 {
		if err := s.fab.t.Listen(wireTrid(trid)); err != nil {
			return err
		}
	}
	s.fab.refs[trid]++
	return nil
}

func (s *state) releaseListener(trid fabric.TransportID) {
	s.fab.refs[trid]--
	if s.fab.refs[trid] <= 0 {
		delete(s.fab.refs, trid)
		_ = s.fab.t.Unlisten(wireTrid(trid))
	}
}

// admit decides whether hostNQN may connect to subNQN through local, and
// hands out a controller id from the subsystem's range.
func (s *state) admit(subNQN, hostNQN string, local fabric.TransportID) (fabric.ControllerInfo, []fabric.Namespace, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.subsystems[subNQN]
	if !ok {
		return fabric.ControllerInfo{}, nil, fabric.ErrNoSubsystem
	}
	var l *listener
	for _, x := range ss.listeners {
		if strings.EqualFold(x.trid.TrAddr, local.TrAddr) && x.trid.TrSvcID == local.TrSvcID {
			l = x
		}
	}
	if l == nil {
		return fabric.ControllerInfo{}, nil, fabric.ErrNoSubsystem
	}
	allowed := ss.allowAny
	for _, h := range ss.hosts {
		allowed = allowed || h == hostNQN
	}
	if !allowed {
		return fabric.ControllerInfo{}, nil, fabric.ErrNotAllowed
	}
	cntlid := ss.nextCntlid
	ss.nextCntlid++
	if ss.nextCntlid > ss.maxCntlid || ss.nextCntlid < ss.minCntlid {
		ss.nextCntlid = ss.minCntlid
	}
	info := fabric.ControllerInfo{
		CntlID: cntlid, SerialNumber: ss.serial, ModelNumber: ss.model, SubNQN: ss.nqn,
		ANAReporting: ss.anaReporting, ANAState: l.anaState,
	}
	var nss []fabric.Namespace
	for _, ns := range ss.namespaces {
		dev := nsDevice{dev: ns.b.device(), removed: &ns.removed}
		nss = append(nss, fabric.Namespace{NSID: ns.nsid, NGUID: ns.nguid, UUID: ns.uuid, Dev: dev})
		info.Namespaces = append(info.Namespaces, fabric.NamespaceInfo{
			NSID: ns.nsid, NGUID: ns.nguid, UUID: ns.uuid, BlockSize: dev.BlockSize(), NumBlocks: dev.NumBlocks(),
		})
	}
	return info, nss, nil
}

var _ blockdev.Device = statDevice{}

// hostID is the host identifier reported for a host NQN (the fabric does
// not carry one): stable per NQN, as a real host's is per machine.
func hostID(hostNQN string) string { return uuidV5(make([]byte, 16), []byte(hostNQN)) }

type listenAddress struct {
	TrType    string `json:"trtype"`
	Transport string `json:"transport"`
	AdrFam    string `json:"adrfam"`
	TrAddr    string `json:"traddr"`
	TrSvcID   string `json:"trsvcid"`
}

type listenerParams struct {
	NQN           string        `json:"nqn"`
	ListenAddress listenAddress `json:"listen_address"`
	TgtName       string        `json:"tgt_name"`
	SecureChannel bool          `json:"secure_channel"`
	AnaState      string        `json:"ana_state"`
}

func (s *state) listenerParams(params json.RawMessage) (*subsystem, fabric.TransportID, *listenerParams, *Error) {
	var p listenerParams
	if err := decodeParams(params, &p, "nqn", "listen_address"); err != nil {
		return nil, fabric.TransportID{}, nil, err
	}
	a := p.ListenAddress
	if a.TrType == "" {
		a.TrType = a.Transport
	}
	if a.TrType == "" || a.TrAddr == "" {
		return nil, fabric.TransportID{}, nil, errInvalParams
	}
	ss, ok := s.subsystems[p.NQN]
	if !ok {
		return nil, fabric.TransportID{}, nil, errInvalParams
	}
	return ss, normTrid(a.TrType, a.AdrFam, a.TrAddr, a.TrSvcID), &p, nil
}

func (ss *subsystem) listener(trid fabric.TransportID) *listener {
	for _, l := range ss.listeners {
		if l.trid == trid {
			return l
		}
	}
	return nil
}

var anaStates = map[string]bool{"optimized": true, "non_optimized": true, "inaccessible": true}

func nvmfAddListener(s *state, params json.RawMessage) (any, *Error) {
	ss, trid, p, rerr := s.listenerParams(params)
	if rerr != nil {
		return nil, rerr
	}
	if ss.listener(trid) != nil {
		return true, nil
	}
	hasTransport := false
	for _, t := range s.transports {
		hasTransport = hasTransport || t == trid.TrType
	}
	if !hasTransport || !localAddr(trid.TrAddr) || !validPort(trid.TrSvcID) {
		return nil, errInvalParams
	}
	state := "optimized"
	if p.AnaState != "" {
		if !anaStates[p.AnaState] {
			return nil, errInvalParams
		}
		state = p.AnaState
	}
	if err := s.acquireListener(trid); err != nil {
		s.in.log.Debug("listen failed", "trid", trid, "error", err)
		return nil, errInvalParams
	}
	ss.listeners = append([]*listener{{trid: trid, anaState: state}}, ss.listeners...)
	return true, nil
}

func nvmfRemoveListener(s *state, params json.RawMessage) (any, *Error) {
	ss, trid, _, rerr := s.listenerParams(params)
	if rerr != nil {
		return nil, rerr
	}
	l := ss.listener(trid)
	if l == nil {
		return nil, errInvalParams
	}
	for i, x := range ss.listeners {
		if x == l {
			ss.listeners = append(ss.listeners[:i:i], ss.listeners[i+1:]...)
		}
	}
	// SPDK drops the subsystem's connections through that listener. The
	// fabric drops per host, so a host also connected through another
	// listener of the subsystem loses that path too (documented limit).
	for _, se := range s.fab.t.Sessions(ss.nqn) {
		if se.Local.TrAddr == trid.TrAddr && se.Local.TrSvcID == trid.TrSvcID {
			s.fab.t.DisconnectHost(ss.nqn, se.HostNQN)
		}
	}
	s.releaseListener(trid)
	return true, nil
}

type listenerJSON struct {
	Address  listenTrid `json:"address"`
	AnaState string     `json:"ana_state,omitempty"`
}

type listenTrid struct {
	TrType  string `json:"trtype"`
	AdrFam  string `json:"adrfam"`
	TrAddr  string `json:"traddr"`
	TrSvcID string `json:"trsvcid"`
}

func toListenTrid(t fabric.TransportID) listenTrid {
	return listenTrid{TrType: t.TrType, AdrFam: t.AdrFam, TrAddr: t.TrAddr, TrSvcID: t.TrSvcID}
}

func nvmfGetListeners(s *state, params json.RawMessage) (any, *Error) {
	ss, rerr := s.subsystemParam(params)
	if rerr != nil {
		return nil, rerr
	}
	out := []listenerJSON{}
	for _, l := range ss.listeners {
		j := listenerJSON{Address: toListenTrid(l.trid)}
		if ss.anaReporting {
			j.AnaState = l.anaState
		}
		out = append(out, j)
	}
	return out, nil
}

func nvmfSetANAState(s *state, params json.RawMessage) (any, *Error) {
	ss, trid, p, rerr := s.listenerParams(params)
	if rerr != nil {
		return nil, rerr
	}
	if !anaStates[p.AnaState] {
		return nil, errInvalParams
	}
	l := ss.listener(trid)
	if l == nil {
		return nil, errInvalParams
	}
	l.anaState = p.AnaState
	s.fab.t.SetANAState(ss.nqn, wireTrid(trid), p.AnaState)
	return true, nil
}

type ctrlrJSON struct {
	CntlID      uint16 `json:"cntlid"`
	HostNQN     string `json:"hostnqn"`
	HostID      string `json:"hostid"`
	NumIOQpairs int    `json:"num_io_qpairs"`
}

func nvmfGetControllers(s *state, params json.RawMessage) (any, *Error) {
	ss, rerr := s.subsystemParam(params)
	if rerr != nil {
		return nil, rerr
	}
	out := []ctrlrJSON{}
	for _, se := range s.fab.t.Sessions(ss.nqn) {
		out = append(out, ctrlrJSON{CntlID: se.CntlID, HostNQN: se.HostNQN, HostID: hostID(se.HostNQN), NumIOQpairs: 1})
	}
	return out, nil
}

type qpairJSON struct {
	CntlID        uint16     `json:"cntlid"`
	QID           int        `json:"qid"`
	State         string     `json:"state"`
	ListenAddress listenTrid `json:"listen_address"`
}

func nvmfGetQpairs(s *state, params json.RawMessage) (any, *Error) {
	ss, rerr := s.subsystemParam(params)
	if rerr != nil {
		return nil, rerr
	}
	out := []qpairJSON{}
	for _, se := range s.fab.t.Sessions(ss.nqn) {
		l := normTrid(se.Local.TrType, se.Local.AdrFam, se.Local.TrAddr, se.Local.TrSvcID)
		out = append(out, qpairJSON{CntlID: se.CntlID, QID: 0, State: "active", ListenAddress: toListenTrid(l)})
	}
	return out, nil
}

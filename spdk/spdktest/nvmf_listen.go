package spdktest

import (
	"encoding/json"
	"fmt"
	"github.com/vda-io/vda/spdk/spdktest/blockdev"
	"github.com/vda-io/vda/spdk/spdktest/fabric"
	"strings"
	"time"
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
// hands out a controller id from the subsystem's range
// (nvmf_subsystem_gen_cntlid: the next unused one after the last given).
func (s *state) admit(subNQN, hostNQN string, local fabric.TransportID) (fabric.ControllerInfo, []fabric.Namespace, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.subsystems[subNQN]
	if !ok || ss.discovery {
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
	used := map[uint16]bool{}
	for _, se := range s.fab.t.Sessions(ss.nqn) {
		used[se.CntlID] = true
	}
	cntlid := uint16(0xffff)
	for n := 0; n < int(ss.maxCntlid)-int(ss.minCntlid)+1; n++ {
		ss.nextCntlid++
		if ss.nextCntlid > ss.maxCntlid {
			ss.nextCntlid = ss.minCntlid
		}
		if !used[ss.nextCntlid] {
			cntlid = ss.nextCntlid
			break
		}
	}
	if cntlid == 0xffff {
		return fabric.ControllerInfo{}, nil, fmt.Errorf("%w: no free cntlid in [%d-%d]", fabric.ErrRejected, ss.minCntlid, ss.maxCntlid)
	}
	if ss.admitted == nil {
		ss.admitted = map[uint16]uint64{}
	}
	ss.admits++
	ss.admitted[cntlid] = ss.admits
	info := fabric.ControllerInfo{
		CntlID: cntlid, SerialNumber: ss.serial, ModelNumber: ss.model, SubNQN: ss.nqn,
		ANAReporting: ss.anaReporting, ANAState: l.anaStates[0],
	}
	return info, ss.fabricNamespaces(), nil
}

// fabricNamespaces is what ss serves over the fabric.
func (ss *subsystem) fabricNamespaces() []fabric.Namespace {
	var nss []fabric.Namespace
	for _, ns := range ss.namespaces {
		nss = append(nss, fabric.Namespace{NSID: ns.nsid, NGUID: ns.nguid, UUID: ns.uuid,
			Dev: nsDevice{dev: ns.b.device(), removed: &ns.removed}})
	}
	return nss
}

// namespacesChanged tells the hosts connected to ss that its namespace
// list changed (nvmf_subsystem_ns_changed: a Namespace Attribute Changed
// event to every controller; caller holds s.mu).
func (s *state) namespacesChanged(ss *subsystem) {
	s.fab.t.SetNamespaces(ss.nqn, ss.fabricNamespaces())
}

var _ blockdev.Device = statDevice{}

// hostID is the host identifier reported for a host NQN (the fabric does
// not carry one): stable per NQN, as a real host's is per machine.
func hostID(hostNQN string) string { return uuidV5(make([]byte, 16), []byte(hostNQN)) }

type listenAddress struct {
	TrType    *string `json:"trtype"`
	Transport *string `json:"transport"`
	AdrFam    *string `json:"adrfam"`
	TrAddr    string  `json:"traddr"`
	TrSvcID   *string `json:"trsvcid"`
}

type listenerParams struct {
	NQN           string        `json:"nqn"`
	ListenAddress listenAddress `json:"listen_address"`
	TgtName       *string       `json:"tgt_name"`
	SecureChannel bool          `json:"secure_channel"`
	AnaState      *string       `json:"ana_state"`
	ANAGrpID      uint32        `json:"anagrpid"`
}

// listenAddressRaw checks what decode_rpc_listen_address requires: traddr.
func listenAddressHasTraddr(params json.RawMessage) bool {
	var p struct {
		LA map[string]json.RawMessage `json:"listen_address"`
	}
	_ = json.Unmarshal(params, &p)
	_, ok := p.LA["traddr"]
	return ok
}

// listenTrid is rpc_listen_address_to_trid. A missing trtype makes SPDK
// dereference NULL: the caller crashes.
func listenTrid(a listenAddress) (fabric.TransportID, bool, *Error) {
	tr := a.Transport
	if a.TrType != nil {
		tr = a.TrType // decoded after "transport" into the same field
	}
	if tr == nil {
		return fabric.TransportID{}, true, nil
	}
	if !strings.EqualFold(*tr, "TCP") && !strings.EqualFold(*tr, "RDMA") && !strings.EqualFold(*tr, "PCIe") &&
		!strings.EqualFold(*tr, "FC") && !strings.EqualFold(*tr, "VFIOUSER") && !strings.EqualFold(*tr, "CUSTOM") {
		return fabric.TransportID{}, false, errInvalParams
	}
	fam := "IPv4"
	if a.AdrFam != nil {
		var ok bool
		if fam, ok = adrfamName(*a.AdrFam); !ok {
			return fabric.TransportID{}, false, errInvalParams
		}
	}
	svc := ""
	if a.TrSvcID != nil {
		svc = *a.TrSvcID
	}
	if len(a.TrAddr) > 256 || len(svc) > 32 {
		return fabric.TransportID{}, false, errInvalParams
	}
	return fabric.TransportID{TrType: strings.ToUpper(*tr), AdrFam: fam, TrAddr: a.TrAddr, TrSvcID: svc}, false, nil
}

// listenerParams decodes a listener request up to the subsystem lookup;
// missing reports a missing subsystem (whose answer differs per method).
func (s *state) listenerParams(params json.RawMessage, relaxed bool, required ...string) (*listenerParams, *subsystem, *Error) {
	var p listenerParams
	if err := nvmfDecode(params, &p, relaxed, append([]string{"nqn", "listen_address"}, required...)...); err != nil {
		return nil, nil, err
	}
	if !listenAddressHasTraddr(params) {
		return nil, nil, errInvalParams
	}
	if !tgtFound(p.TgtName) {
		return &p, nil, errNoTarget
	}
	return &p, s.subsystems[p.NQN], nil
}

// listenAddress is listenTrid, crashing the target where SPDK's
// rpc_listen_address_to_trid dereferences NULL.
func (s *state) listenAddress(a listenAddress) (fabric.TransportID, *Error) {
	trid, crash, rerr := listenTrid(a)
	if crash {
		s.crash("rpc_listen_address_to_trid: listen address without trtype (NULL dereference)")
		return trid, errCrashed
	}
	return trid, rerr
}

func (ss *subsystem) listener(trid fabric.TransportID) *listener {
	for _, l := range ss.listeners {
		if tridEqual(l.trid, trid) {
			return l
		}
	}
	return nil
}

// tridEqual is spdk_nvme_transport_id_compare for IP transports.
func tridEqual(a, b fabric.TransportID) bool {
	return strings.EqualFold(a.TrType, b.TrType) && a.AdrFam == b.AdrFam &&
		strings.EqualFold(a.TrAddr, b.TrAddr) && strings.EqualFold(a.TrSvcID, b.TrSvcID)
}

var anaStateNames = map[string]string{"optimized": "optimized", "non_optimized": "non_optimized", "inaccessible": "inaccessible"}

func parseANAState(v string) (string, bool) {
	st, ok := anaStateNames[strings.ToLower(v)]
	return st, ok
}

func nvmfAddListener(s *state, params json.RawMessage) (any, *Error) {
	p, ss, rerr := s.listenerParams(params, true)
	if rerr != nil {
		return nil, rerr
	}
	if ss == nil {
		return nil, errInvalParams
	}
	trid, rerr := s.listenAddress(p.ListenAddress)
	if rerr != nil {
		return nil, rerr
	}
	if ss.allowAny && p.SecureChannel {
		return nil, rpcErr(codeInternalError, "Cannot establish secure channel, when 'allow_any_host' is set")
	}
	state := "optimized"
	if p.AnaState != nil {
		var ok bool
		if state, ok = parseANAState(*p.AnaState); !ok {
			return nil, errInvalParams
		}
	}
	if ss.listener(trid) != nil {
		return true, nil
	}
	if s.transport(trid.TrType) == nil || !localAddr(trid.TrAddr, trid.AdrFam) || !validPort(trid.TrSvcID) ||
		len(ss.listeners) >= maxListenersPerSubsystem {
		return nil, errInvalParams
	}
	if err := s.acquireListener(trid); err != nil {
		s.in.log.Debug("listen failed", "trid", trid, "error", err)
		return nil, errInvalParams
	}
	l := &listener{trid: trid, secure: p.SecureChannel, anaStates: make([]string, max(ss.maxNS, 1)), anaSince: time.Now()}
	for i := range l.anaStates {
		l.anaStates[i] = state
	}
	ss.listeners = append([]*listener{l}, ss.listeners...)
	return true, nil
}

func nvmfRemoveListener(s *state, params json.RawMessage) (any, *Error) {
	p, ss, rerr := s.listenerParams(params, false)
	if rerr != nil {
		return nil, rerr
	}
	if ss == nil {
		return nil, errInvalParams
	}
	trid, rerr := s.listenAddress(p.ListenAddress)
	if rerr != nil {
		return nil, rerr
	}
	if s.transport(trid.TrType) == nil {
		return nil, errInvalParams
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
	s.releaseListener(l.trid)
	return true, nil
}

func nvmfGetListeners(s *state, params json.RawMessage) (any, *Error) {
	ss, rerr := s.queryParams(params)
	if rerr != nil {
		return nil, rerr
	}
	out := []obj{}
	for _, l := range ss.listeners {
		j := obj{{"address", listenAddrJSON(l.trid, false)}}
		if ss.anaReporting {
			states := []obj{}
			for i, st := range l.anaStates {
				states = append(states, obj{{"ana_group", i + 1}, {"ana_state", st}})
			}
			j = append(j, kv{"ana_states", states})
		}
		out = append(out, j)
	}
	return out, nil
}

func nvmfSetANAState(s *state, params json.RawMessage) (any, *Error) {
	p, ss, rerr := s.listenerParams(params, false, "ana_state")
	if rerr == errNoTarget {
		return nil, rpcErr(codeInternalError, "Unable to find a target.\n")
	}
	if rerr != nil {
		return nil, rerr
	}
	if ss == nil {
		return nil, rpcErr(codeInvalidParams, "Unable to find subsystem with NQN "+p.NQN)
	}
	trid, rerr := s.listenAddress(p.ListenAddress)
	if rerr != nil {
		return nil, rerr
	}
	state, ok := parseANAState(*p.AnaState)
	if !ok {
		return nil, errInvalParams
	}
	failed := rpcErr(codeInternalError, "error setting ANA state: -22")
	if !ss.anaReporting || p.ANAGrpID > ss.maxNS {
		return nil, failed
	}
	l := ss.listener(trid)
	if l == nil {
		return nil, failed
	}
	if (p.ANAGrpID == 0 || p.ANAGrpID == 1) && l.anaStates[0] != state {
		l.anaSince = time.Now()
	}
	for i := range l.anaStates {
		if p.ANAGrpID == 0 || uint32(i+1) == p.ANAGrpID {
			l.anaStates[i] = state
		}
	}
	if p.ANAGrpID == 0 || p.ANAGrpID == 1 {
		s.fab.t.SetANAState(ss.nqn, wireTrid(l.trid), state)
	}
	return true, nil
}

// queryParams decodes the nvmf_subsystem_get_* requests.
func (s *state) queryParams(params json.RawMessage) (*subsystem, *Error) {
	var p nqnParam
	if err := nvmfDecode(params, &p, false, "nqn"); err != nil {
		return nil, err
	}
	if !tgtFound(p.TgtName) {
		return nil, rpcErr(codeInternalError, "Unable to find a target")
	}
	ss, ok := s.subsystems[p.NQN]
	if !ok {
		return nil, errInvalParams
	}
	return ss, nil
}

type ctrlrJSON struct {
	CntlID      uint16 `json:"cntlid"`
	HostNQN     string `json:"hostnqn"`
	HostID      string `json:"hostid"`
	NumIOQpairs int    `json:"num_io_qpairs"`
}

func nvmfGetControllers(s *state, params json.RawMessage) (any, *Error) {
	ss, rerr := s.queryParams(params)
	if rerr != nil {
		return nil, rerr
	}
	out := []ctrlrJSON{}
	for _, se := range s.sessions(ss) {
		out = append(out, ctrlrJSON{CntlID: se.CntlID, HostNQN: se.HostNQN, HostID: hostID(se.HostNQN), NumIOQpairs: 1})
	}
	return out, nil
}

type qpairJSON struct {
	CntlID        uint16 `json:"cntlid"`
	QID           int    `json:"qid"`
	State         string `json:"state"`
	ListenAddress obj    `json:"listen_address"`
}

func nvmfGetQpairs(s *state, params json.RawMessage) (any, *Error) {
	ss, rerr := s.queryParams(params)
	if rerr != nil {
		return nil, rerr
	}
	out := []qpairJSON{}
	for _, se := range s.sessions(ss) {
		l := normTrid(se.Local.TrType, se.Local.AdrFam, se.Local.TrAddr, se.Local.TrSvcID)
		out = append(out, qpairJSON{CntlID: se.CntlID, QID: 0, State: "active", ListenAddress: listenAddrJSON(l, false)})
	}
	return out, nil
}

// ANAStatesSince is ANAStates with, for each listener, when its group 1
// entered the state it is in (its listener added, or a
// nvmf_subsystem_listener_set_ana_state that changed it): a benchmark that
// polls ANAStates learns a change up to a poll interval late, this says
// when it happened.
func (t *Target) ANAStatesSince(nqn string) (states []string, since []time.Time, ok bool) {
	t.mu.Lock()
	in := t.cur
	t.mu.Unlock()
	if in == nil {
		return nil, nil, false
	}
	in.st.mu.Lock()
	defer in.st.mu.Unlock()
	ss := in.st.subsystems[nqn]
	if ss == nil || !ss.anaReporting {
		return nil, nil, false
	}
	for _, l := range ss.listeners {
		states = append(states, l.anaStates[0])
		since = append(since, l.anaSince)
	}
	return states, since, true
}

// ANAStates returns the ANA state of group 1 of each listener of
// subsystem nqn of the running instance, as nvmf_subsystem_get_listeners
// lists them, read without a request: a benchmark watching many
// subsystems then does not load the target it measures. ok is false
// without such a subsystem, with ANA reporting off or no instance.
func (t *Target) ANAStates(nqn string) (states []string, ok bool) {
	states, _, ok = t.ANAStatesSince(nqn)
	return states, ok
}

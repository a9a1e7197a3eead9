package spdktest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/vda-io/vda/spdk/spdktest/fabric"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
)

func init() {
	register("nvmf_create_transport", phaseRuntime, nvmfCreateTransport)
	register("nvmf_get_transports", phaseRuntime, nvmfGetTransports)
	register("nvmf_create_subsystem", phaseRuntime, nvmfCreateSubsystem)
	register("nvmf_delete_subsystem", phaseRuntime, nvmfDeleteSubsystem)
	register("nvmf_get_subsystems", phaseRuntime, nvmfGetSubsystems)
	register("nvmf_subsystem_add_ns", phaseRuntime, nvmfAddNS)
	register("nvmf_subsystem_remove_ns", phaseRuntime, nvmfRemoveNS)
	register("nvmf_subsystem_add_host", phaseRuntime, nvmfAddHost)
	register("nvmf_subsystem_remove_host", phaseRuntime, nvmfRemoveHost)
	register("nvmf_subsystem_allow_any_host", phaseRuntime, nvmfAllowAnyHost)
}

const discoveryNQN = "nqn.2014-08.org.nvmexpress.discovery"

type namespace struct {
	removed atomic.Bool // set when the namespace goes; connected hosts lose access
	nsid    uint32
	b       *bdev
	nguid   string // 32 upper-case hex digits
	uuid    string
}

type listener struct {
	trid     fabric.TransportID // upper-cased as SPDK prints it
	anaState string
}

type subsystem struct {
	nqn          string
	serial       string
	model        string
	allowAny     bool
	anaReporting bool
	maxNS        uint32
	minCntlid    uint16
	maxCntlid    uint16
	nextCntlid   uint16
	hosts        []string // newest first, as SPDK lists them
	listeners    []*listener
	namespaces   []*namespace // by nsid
}

type transportJSON struct {
	TrType              string `json:"trtype"`
	MaxQueueDepth       int    `json:"max_queue_depth"`
	MaxIOQpairsPerCtrlr int    `json:"max_io_qpairs_per_ctrlr"`
	InCapsuleDataSize   int    `json:"in_capsule_data_size"`
	MaxIOSize           int    `json:"max_io_size"`
	IOUnitSize          int    `json:"io_unit_size"`
	MaxAQDepth          int    `json:"max_aq_depth"`
	NumSharedBuffers    int    `json:"num_shared_buffers"`
	BufCacheSize        uint32 `json:"buf_cache_size"`
	DifInsertOrStrip    bool   `json:"dif_insert_or_strip"`
	Zcopy               bool   `json:"zcopy"`
	C2HSuccess          bool   `json:"c2h_success"`
	SockPriority        int    `json:"sock_priority"`
	AbortTimeoutSec     int    `json:"abort_timeout_sec"`
}

func nvmfCreateTransport(s *state, params json.RawMessage) (any, *Error) {
	var p struct {
		TrType              string `json:"trtype"`
		TgtName             string `json:"tgt_name"`
		MaxQueueDepth       uint32 `json:"max_queue_depth"`
		MaxIOQpairsPerCtrlr uint32 `json:"max_io_qpairs_per_ctrlr"`
		InCapsuleDataSize   uint32 `json:"in_capsule_data_size"`
		MaxIOSize           uint32 `json:"max_io_size"`
		IOUnitSize          uint32 `json:"io_unit_size"`
		MaxAQDepth          uint32 `json:"max_aq_depth"`
		NumSharedBuffers    uint32 `json:"num_shared_buffers"`
		BufCacheSize        uint32 `json:"buf_cache_size"`
		DifInsertOrStrip    bool   `json:"dif_insert_or_strip"`
		AbortTimeoutSec     uint32 `json:"abort_timeout_sec"`
		Zcopy               bool   `json:"zcopy"`
		AcceptorPollRate    uint32 `json:"acceptor_poll_rate"`
		C2HSuccess          bool   `json:"c2h_success"`
		SockPriority        uint32 `json:"sock_priority"`
		ControlMsgNum       uint32 `json:"control_msg_num"`
	}
	if err := decodeParams(params, &p, "trtype"); err != nil {
		return nil, err
	}
	tr := strings.ToUpper(p.TrType)
	if tr != "TCP" {
		return nil, rpcErr(codeInvalidParams, "Invalid transport type '"+p.TrType+"'")
	}
	for _, t := range s.transports {
		if t == tr {
			return nil, rpcErr(codeInternalError, "Transport type '"+tr+"' already exists")
		}
	}
	s.transports = append(s.transports, tr)
	return true, nil
}

func nvmfGetTransports(s *state, params json.RawMessage) (any, *Error) {
	var p struct {
		TrType  string `json:"trtype"`
		TgtName string `json:"tgt_name"`
	}
	if err := decodeParams(params, &p); err != nil {
		return nil, err
	}
	out := []transportJSON{}
	for _, t := range s.transports {
		out = append(out, transportJSON{
			TrType: t, MaxQueueDepth: 128, MaxIOQpairsPerCtrlr: 127, InCapsuleDataSize: 4096,
			MaxIOSize: 131072, IOUnitSize: 131072, MaxAQDepth: 128, NumSharedBuffers: 511,
			BufCacheSize: 4294967295, C2HSuccess: true, AbortTimeoutSec: 1,
		})
	}
	return out, nil
}

// validNQN applies SPDK's NQN rules: at most 223 bytes, and either the
// discovery NQN, a uuid NQN, or "nqn.yyyy-mm.<reverse domain>:<anything>".
func validNQN(nqn string) bool {
	if len(nqn) > 223 || len(nqn) < 11 {
		return false
	}
	if nqn == discoveryNQN {
		return true
	}
	if strings.HasPrefix(nqn, "nqn.2014-08.org.nvmexpress:uuid:") {
		_, ok := parseUUID(strings.TrimPrefix(nqn, "nqn.2014-08.org.nvmexpress:uuid:"))
		return ok
	}
	if !strings.HasPrefix(nqn, "nqn.") {
		return false
	}
	date := nqn[4:11]
	if date[4] != '-' {
		return false
	}
	for i, c := range date {
		if i != 4 && (c < '0' || c > '9') {
			return false
		}
	}
	if len(nqn) < 13 || nqn[11] != '.' {
		return false
	}
	domain, _, _ := strings.Cut(nqn[12:], ":")
	return domain != "" && domain[0] != '.' && domain[len(domain)-1] != '.'
}

func nvmfCreateSubsystem(s *state, params json.RawMessage) (any, *Error) {
	var p struct {
		NQN                   string `json:"nqn"`
		SerialNumber          string `json:"serial_number"`
		ModelNumber           string `json:"model_number"`
		TgtName               string `json:"tgt_name"`
		MaxNamespaces         uint32 `json:"max_namespaces"`
		AllowAnyHost          bool   `json:"allow_any_host"`
		AnaReporting          bool   `json:"ana_reporting"`
		MinCntlid             uint16 `json:"min_cntlid"`
		MaxCntlid             uint16 `json:"max_cntlid"`
		MaxDiscardSizeKiB     uint64 `json:"max_discard_size_kib"`
		MaxWriteZeroesSizeKiB uint64 `json:"max_write_zeroes_size_kib"`
	}
	if err := decodeParams(params, &p, "nqn"); err != nil {
		return nil, err
	}
	if _, dup := s.subsystems[p.NQN]; dup || !validNQN(p.NQN) || p.NQN == discoveryNQN {
		return nil, rpcErr(codeInternalError, "Unable to create subsystem "+p.NQN)
	}
	if p.SerialNumber == "" {
		p.SerialNumber = "00000000000000000000"
	}
	if len(p.SerialNumber) > 20 || !printableASCII(p.SerialNumber) {
		return nil, rpcErr(codeInvalidParams, "Invalid SN "+p.SerialNumber)
	}
	if p.ModelNumber == "" {
		p.ModelNumber = "SPDK bdev Controller"
	}
	if len(p.ModelNumber) > 40 || !printableASCII(p.ModelNumber) {
		return nil, rpcErr(codeInvalidParams, "Invalid MN "+p.ModelNumber)
	}
	if p.MinCntlid == 0 {
		p.MinCntlid = 1
	}
	if p.MaxCntlid == 0 {
		p.MaxCntlid = 0xffef
	}
	if p.MinCntlid > p.MaxCntlid || p.MaxCntlid > 0xffef {
		return nil, rpcErr(codeInvalidParams, fmt.Sprintf("Invalid cntlid range [%d-%d]", p.MinCntlid, p.MaxCntlid))
	}
	if p.MaxNamespaces == 0 {
		p.MaxNamespaces = 32
	}
	s.subsystems[p.NQN] = &subsystem{
		nqn: p.NQN, serial: p.SerialNumber, model: p.ModelNumber, allowAny: p.AllowAnyHost,
		anaReporting: p.AnaReporting, maxNS: p.MaxNamespaces, minCntlid: p.MinCntlid,
		maxCntlid: p.MaxCntlid, nextCntlid: p.MinCntlid,
	}
	return true, nil
}

func printableASCII(v string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return false
		}
	}
	return true
}

type nqnParam struct {
	NQN     string `json:"nqn"`
	TgtName string `json:"tgt_name"`
}

func (s *state) subsystemParam(params json.RawMessage) (*subsystem, *Error) {
	var p nqnParam
	if err := decodeParams(params, &p, "nqn"); err != nil {
		return nil, err
	}
	ss, ok := s.subsystems[p.NQN]
	if !ok {
		return nil, errInvalParams
	}
	return ss, nil
}

func nvmfDeleteSubsystem(s *state, params json.RawMessage) (any, *Error) {
	ss, rerr := s.subsystemParam(params)
	if rerr != nil {
		return nil, rerr
	}
	delete(s.subsystems, ss.nqn)
	s.fab.DisconnectSubsystem(ss.nqn)
	for _, ns := range ss.namespaces {
		ns.removed.Store(true)
		releaseBdev(ns.b)
	}
	for _, l := range ss.listeners {
		s.releaseListener(l.trid)
	}
	return true, nil
}

type listenAddrJSON struct {
	Transport string `json:"transport"`
	TrType    string `json:"trtype"`
	AdrFam    string `json:"adrfam"`
	TrAddr    string `json:"traddr"`
	TrSvcID   string `json:"trsvcid"`
}

type hostJSON struct {
	NQN string `json:"nqn"`
}

type nsJSON struct {
	NSID     uint32 `json:"nsid"`
	BdevName string `json:"bdev_name"`
	Name     string `json:"name"`
	NGUID    string `json:"nguid"`
	UUID     string `json:"uuid"`
}

type subsystemJSON struct {
	NQN             string           `json:"nqn"`
	Subtype         string           `json:"subtype"`
	ListenAddresses []listenAddrJSON `json:"listen_addresses"`
	AllowAnyHost    bool             `json:"allow_any_host"`
	Hosts           []hostJSON       `json:"hosts"`
	SerialNumber    string           `json:"serial_number,omitempty"`
	ModelNumber     string           `json:"model_number,omitempty"`
	MaxNamespaces   *uint32          `json:"max_namespaces,omitempty"`
	MinCntlid       *uint16          `json:"min_cntlid,omitempty"`
	MaxCntlid       *uint16          `json:"max_cntlid,omitempty"`
	Namespaces      *[]nsJSON        `json:"namespaces,omitempty"`
}

func (ss *subsystem) json() subsystemJSON {
	j := subsystemJSON{
		NQN: ss.nqn, Subtype: "NVMe", ListenAddresses: []listenAddrJSON{}, AllowAnyHost: ss.allowAny,
		Hosts: []hostJSON{}, SerialNumber: ss.serial, ModelNumber: ss.model,
		MaxNamespaces: &ss.maxNS, MinCntlid: &ss.minCntlid, MaxCntlid: &ss.maxCntlid,
	}
	for _, l := range ss.listeners {
		j.ListenAddresses = append(j.ListenAddresses, listenAddrJSON{
			Transport: l.trid.TrType, TrType: l.trid.TrType, AdrFam: l.trid.AdrFam,
			TrAddr: l.trid.TrAddr, TrSvcID: l.trid.TrSvcID,
		})
	}
	for _, h := range ss.hosts {
		j.Hosts = append(j.Hosts, hostJSON{NQN: h})
	}
	nss := []nsJSON{}
	for _, ns := range ss.namespaces {
		nss = append(nss, nsJSON{NSID: ns.nsid, BdevName: ns.b.name, Name: ns.b.name, NGUID: ns.nguid, UUID: ns.uuid})
	}
	j.Namespaces = &nss
	return j
}

func nvmfGetSubsystems(s *state, params json.RawMessage) (any, *Error) {
	var p struct {
		NQN     string `json:"nqn"`
		TgtName string `json:"tgt_name"`
	}
	if err := decodeParams(params, &p); err != nil {
		return nil, err
	}
	disc := subsystemJSON{NQN: discoveryNQN, Subtype: "Discovery", ListenAddresses: []listenAddrJSON{}, AllowAnyHost: true, Hosts: []hostJSON{}}
	if p.NQN != "" {
		if p.NQN == discoveryNQN {
			return []subsystemJSON{disc}, nil
		}
		ss, ok := s.subsystems[p.NQN]
		if !ok {
			return nil, errNoDevice
		}
		return []subsystemJSON{ss.json()}, nil
	}
	out := []subsystemJSON{disc}
	for _, ss := range s.subsystems {
		out = append(out, ss.json())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].NQN < out[j].NQN })
	return out, nil
}

type nsParams struct {
	BdevName string `json:"bdev_name"`
	NSID     uint32 `json:"nsid"`
	PtplFile string `json:"ptpl_file"`
	UUID     string `json:"uuid"`
	NGUID    string `json:"nguid"`
	EUI64    string `json:"eui64"`
	ANAGrpID uint32 `json:"anagrpid"`
	NoAutoVi bool   `json:"no_auto_visible"`
}

func nvmfAddNS(s *state, params json.RawMessage) (any, *Error) {
	var p struct {
		NQN       string   `json:"nqn"`
		Namespace nsParams `json:"namespace"`
		TgtName   string   `json:"tgt_name"`
	}
	if err := decodeParams(params, &p, "nqn", "namespace"); err != nil {
		return nil, err
	}
	if !bytes.Contains(params, []byte(`"bdev_name"`)) || p.Namespace.BdevName == "" {
		return nil, errDecode
	}
	ss, ok := s.subsystems[p.NQN]
	if !ok {
		return nil, errInvalParams
	}
	b := s.lookup(p.Namespace.BdevName)
	if b == nil || b.claim != "" {
		return nil, errInvalParams
	}
	nsid := p.Namespace.NSID
	if nsid == 0 {
		for nsid = 1; ss.ns(nsid) != nil; nsid++ {
		}
	}
	if nsid > ss.maxNS || ss.ns(nsid) != nil {
		return nil, errInvalParams
	}
	raw, _ := parseUUID(b.uuid)
	ns := &namespace{nsid: nsid, b: b, nguid: strings.ToUpper(fmt.Sprintf("%x", raw)), uuid: b.uuid}
	if p.Namespace.NGUID != "" {
		g, ok := parseUUID(p.Namespace.NGUID)
		if !ok {
			return nil, errInvalParams
		}
		ns.nguid = strings.ToUpper(fmt.Sprintf("%x", g))
	}
	if p.Namespace.UUID != "" {
		u, ok := parseUUID(p.Namespace.UUID)
		if !ok {
			return nil, errInvalParams
		}
		ns.uuid = formatUUID(u)
	}
	claimBdev(b, claimExclusiveWrite, "nvmf")
	ss.namespaces = append(ss.namespaces, ns)
	sort.Slice(ss.namespaces, func(i, j int) bool { return ss.namespaces[i].nsid < ss.namespaces[j].nsid })
	return nsid, nil
}

func (ss *subsystem) ns(nsid uint32) *namespace {
	for _, n := range ss.namespaces {
		if n.nsid == nsid {
			return n
		}
	}
	return nil
}

func nvmfRemoveNS(s *state, params json.RawMessage) (any, *Error) {
	var p struct {
		NQN     string `json:"nqn"`
		NSID    uint32 `json:"nsid"`
		TgtName string `json:"tgt_name"`
	}
	if err := decodeParams(params, &p, "nqn", "nsid"); err != nil {
		return nil, err
	}
	ss, ok := s.subsystems[p.NQN]
	if !ok || ss.ns(p.NSID) == nil {
		return nil, errInvalParams
	}
	s.dropNamespace(ss, ss.ns(p.NSID))
	return true, nil
}

func (s *state) dropNamespace(ss *subsystem, ns *namespace) {
	for i, n := range ss.namespaces {
		if n == ns {
			ss.namespaces = append(ss.namespaces[:i:i], ss.namespaces[i+1:]...)
			break
		}
	}
	ns.removed.Store(true)
	if ns.b.claimedBy == "nvmf" {
		releaseBdev(ns.b)
	}
	hubNotify(ss.nqn, ss.listeners, ns.nsid)
}

// namespaceBdevRemoved drops the namespaces of a hot-removed bdev.
func (s *state) namespaceBdevRemoved(b *bdev) {
	if b.claimedBy != "nvmf" {
		return // not in a namespace: adding one claims the bdev
	}
	for _, ss := range s.subsystems {
		for _, ns := range append([]*namespace(nil), ss.namespaces...) {
			if ns.b == b {
				s.dropNamespace(ss, ns)
			}
		}
	}
}

type hostParams struct {
	NQN     string `json:"nqn"`
	Host    string `json:"host"`
	TgtName string `json:"tgt_name"`
	PSK     string `json:"psk"`
}

func nvmfAddHost(s *state, params json.RawMessage) (any, *Error) {
	var p hostParams
	if err := decodeParams(params, &p, "nqn", "host"); err != nil {
		return nil, err
	}
	ss, ok := s.subsystems[p.NQN]
	if !ok {
		return nil, errInvalParams
	}
	if !validNQN(p.Host) {
		return nil, errInternal
	}
	for _, h := range ss.hosts {
		if h == p.Host {
			return true, nil
		}
	}
	ss.hosts = append([]string{p.Host}, ss.hosts...)
	return true, nil
}

func nvmfRemoveHost(s *state, params json.RawMessage) (any, *Error) {
	var p hostParams
	if err := decodeParams(params, &p, "nqn", "host"); err != nil {
		return nil, err
	}
	ss, ok := s.subsystems[p.NQN]
	if !ok {
		return nil, errInvalParams
	}
	for i, h := range ss.hosts {
		if h == p.Host {
			ss.hosts = append(ss.hosts[:i:i], ss.hosts[i+1:]...)
			s.fab.DisconnectHost(ss.nqn, p.Host)
			return true, nil
		}
	}
	return nil, errInternal
}

func nvmfAllowAnyHost(s *state, params json.RawMessage) (any, *Error) {
	var p struct {
		NQN          string `json:"nqn"`
		AllowAnyHost bool   `json:"allow_any_host"`
		TgtName      string `json:"tgt_name"`
	}
	if err := decodeParams(params, &p, "nqn", "allow_any_host"); err != nil {
		return nil, err
	}
	ss, ok := s.subsystems[p.NQN]
	if !ok {
		return nil, errInvalParams
	}
	ss.allowAny = p.AllowAnyHost
	return true, nil
}

// normTrid upper-cases trtype/adrfam the way SPDK prints them.
func normTrid(trtype, adrfam, traddr, trsvcid string) fabric.TransportID {
	fam := "IPv4"
	switch strings.ToLower(adrfam) {
	case "ipv6":
		fam = "IPv6"
	case "ib":
		fam = "IB"
	case "fc":
		fam = "FC"
	}
	return fabric.TransportID{TrType: strings.ToUpper(trtype), AdrFam: fam, TrAddr: traddr, TrSvcID: trsvcid}
}

// localAddr reports whether addr can be bound on this host.
func localAddr(addr string) bool {
	ip := net.ParseIP(addr)
	if ip == nil {
		return false
	}
	if ip.IsLoopback() || ip.IsUnspecified() {
		return true
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
			return true
		}
	}
	return false
}

func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n > 0 && n < 65536
}

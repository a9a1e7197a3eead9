package spdktest

// The NVMe-oF target: transports, subsystems, namespaces and hosts, as
// lib/nvmf/nvmf_rpc.c, subsystem.c, transport.c and tcp.c of SPDK v24.01
// check and answer them. Parameter decoding failures answer -32602
// "Invalid parameters" (every nvmf handler maps spdk_json_decode_object's
// failure to it); a tgt_name other than the only target's ("nvmf_tgt")
// answers -32603 with the handler's own message.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/vda-io/vda/spdk/spdktest/fabric"
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

const (
	discoveryNQN = "nqn.2014-08.org.nvmexpress.discovery"
	nvmfTgtName  = "nvmf_tgt" // the only target's name
	minCntlid    = 1
	maxCntlid    = 0xffef
	// maxListenersPerSubsystem is NVMF_MAX_LISTENERS_PER_SUBSYSTEM.
	maxListenersPerSubsystem = 16
)

var errNoTarget = rpcErr(codeInternalError, "Unable to find a target.")

// nvmfDecode decodes params as the nvmf handlers do: a decoding failure is
// -32602 "Invalid parameters". relaxed ignores unknown top-level keys
// (spdk_json_decode_object_relaxed); nested objects stay strict.
func nvmfDecode(params json.RawMessage, v any, relaxed bool, required ...string) *Error {
	if params == nil {
		return errInvalParams
	}
	// Nothing to leave out when every key is known (the common case).
	if relaxed && !knownKeys(params, reflect.TypeOf(v).Elem()) {
		var m map[string]json.RawMessage
		if firstByte(params) != '{' || json.Unmarshal(params, &m) != nil {
			return errInvalParams
		}
		fields := jsonFields(reflect.TypeOf(v).Elem())
		for k := range m {
			if _, ok := fields[k]; !ok {
				delete(m, k)
			}
		}
		params, _ = json.Marshal(m)
	}
	if decodeParams(params, v, required...) != nil {
		return errInvalParams
	}
	return nil
}

// nvmfDecodeOptional is nvmfDecode for handlers whose params are optional.
func nvmfDecodeOptional(params json.RawMessage, v any) *Error {
	if params == nil {
		return nil
	}
	return nvmfDecode(params, v, false)
}

// tgtFound is spdk_nvmf_get_tgt: no name or the only target's name.
func tgtFound(name *string) bool { return name == nil || *name == nvmfTgtName }

// ---- transports ----

// transport is one NVMe-oF transport (only TCP is built in) and its
// options as nvmf_get_transports reports them.
type transport struct {
	name              string // "TCP"
	maxQueueDepth     uint16
	maxQpairsPerCtrlr uint16 // includes the admin queue
	inCapsuleDataSize uint32
	maxIOSize         uint32
	ioUnitSize        uint32
	maxAQDepth        uint32
	numSharedBuffers  uint32
	bufCacheSize      uint32
	difInsertOrStrip  bool
	abortTimeoutSec   uint32
	zcopy             bool
	c2hSuccess        bool
	sockPriority      uint32
}

func (t *transport) json() obj {
	return obj{
		{"trtype", t.name}, {"max_queue_depth", t.maxQueueDepth},
		{"max_io_qpairs_per_ctrlr", uint32(int32(t.maxQpairsPerCtrlr) - 1)},
		{"in_capsule_data_size", t.inCapsuleDataSize}, {"max_io_size", t.maxIOSize},
		{"io_unit_size", t.ioUnitSize}, {"max_aq_depth", t.maxAQDepth},
		{"num_shared_buffers", t.numSharedBuffers}, {"buf_cache_size", t.bufCacheSize},
		{"dif_insert_or_strip", t.difInsertOrStrip}, {"zcopy", t.zcopy},
		{"c2h_success", t.c2hSuccess}, {"sock_priority", t.sockPriority},
		{"abort_timeout_sec", t.abortTimeoutSec},
	}
}

func (s *state) transport(trtype string) *transport {
	for _, t := range s.transports {
		if strings.EqualFold(t.name, trtype) {
			return t
		}
	}
	return nil
}

const (
	iobufLargeBufSize = 132 * 1024 // iobuf's default large buffer
	tcpMaxSGLEntries  = 16         // SPDK_NVMF_MAX_SGL_ENTRIES
	tcpMaxSockPrio    = 16
	reactorCores      = 1 // the recordings' targets run on one core
)

func nvmfCreateTransport(s *state, params json.RawMessage) (any, *Error) {
	var p struct {
		TrType              string  `json:"trtype"`
		TgtName             *string `json:"tgt_name"`
		MaxQueueDepth       *uint16 `json:"max_queue_depth"`
		MaxIOQpairsPerCtrlr *uint16 `json:"max_io_qpairs_per_ctrlr"`
		InCapsuleDataSize   *uint32 `json:"in_capsule_data_size"`
		MaxIOSize           *uint32 `json:"max_io_size"`
		IOUnitSize          *uint32 `json:"io_unit_size"`
		MaxAQDepth          *uint32 `json:"max_aq_depth"`
		NumSharedBuffers    *uint32 `json:"num_shared_buffers"`
		BufCacheSize        *uint32 `json:"buf_cache_size"`
		DifInsertOrStrip    *bool   `json:"dif_insert_or_strip"`
		AbortTimeoutSec     *uint32 `json:"abort_timeout_sec"`
		Zcopy               *bool   `json:"zcopy"`
		AcceptorPollRate    *uint32 `json:"acceptor_poll_rate"`
	}
	if err := nvmfDecode(params, &p, true, "trtype"); err != nil {
		return nil, err
	}
	if !tgtFound(p.TgtName) {
		return nil, errNoTarget
	}
	if !strings.EqualFold(p.TrType, "TCP") {
		return nil, rpcErr(codeInvalidParams, "Invalid transport type '"+p.TrType+"'")
	}
	if s.transport(p.TrType) != nil {
		return nil, rpcErr(codeInternalError, "Transport type '"+p.TrType+"' already exists")
	}
	t := &transport{
		name: "TCP", maxQueueDepth: 128, maxQpairsPerCtrlr: 128, inCapsuleDataSize: 4096,
		maxIOSize: 131072, ioUnitSize: 131072, maxAQDepth: 128, numSharedBuffers: 511,
		bufCacheSize: 0xffffffff, abortTimeoutSec: 1, c2hSuccess: true,
	}
	set16 := func(dst *uint16, v *uint16) {
		if v != nil {
			*dst = *v
		}
	}
	set32 := func(dst *uint32, v *uint32) {
		if v != nil {
			*dst = *v
		}
	}
	set16(&t.maxQueueDepth, p.MaxQueueDepth)
	if p.MaxIOQpairsPerCtrlr != nil {
		t.maxQpairsPerCtrlr = *p.MaxIOQpairsPerCtrlr + 1 // wraps as SPDK's uint16 does
	}
	set32(&t.inCapsuleDataSize, p.InCapsuleDataSize)
	set32(&t.maxIOSize, p.MaxIOSize)
	set32(&t.ioUnitSize, p.IOUnitSize)
	set32(&t.maxAQDepth, p.MaxAQDepth)
	set32(&t.numSharedBuffers, p.NumSharedBuffers)
	set32(&t.bufCacheSize, p.BufCacheSize)
	set32(&t.abortTimeoutSec, p.AbortTimeoutSec)
	if p.DifInsertOrStrip != nil {
		t.difInsertOrStrip = *p.DifInsertOrStrip
	}
	if p.Zcopy != nil {
		t.zcopy = *p.Zcopy
	}
	// nvmf_transport_create's checks.
	createFailed := rpcErr(codeInternalError, "Transport type '"+p.TrType+"' create failed")
	if t.maxIOSize != 0 && (t.maxIOSize&(t.maxIOSize-1) != 0 || t.maxIOSize < 8192) {
		return nil, createFailed
	}
	if t.maxAQDepth < 32 {
		t.maxAQDepth = 32
	}
	if t.ioUnitSize == 0 || t.ioUnitSize > iobufLargeBufSize {
		return nil, createFailed
	}
	// nvmf_tcp_create: its own options, then the adjustments and checks.
	failed := rpcErr(codeInternalError, "Failed to create transport.")
	var tp struct {
		C2HSuccess    *bool   `json:"c2h_success"`
		ControlMsgNum *uint16 `json:"control_msg_num"`
		SockPriority  *uint32 `json:"sock_priority"`
	}
	if nvmfDecode(params, &tp, true) != nil {
		return nil, failed
	}
	if tp.C2HSuccess != nil {
		t.c2hSuccess = *tp.C2HSuccess
	}
	if tp.SockPriority != nil {
		t.sockPriority = *tp.SockPriority
	}
	if t.sockPriority > tcpMaxSockPrio {
		return nil, failed
	}
	if t.ioUnitSize > t.maxIOSize {
		t.ioUnitSize = t.maxIOSize
	}
	if t.inCapsuleDataSize > t.maxIOSize {
		t.inCapsuleDataSize = t.maxIOSize
	}
	if t.maxQueueDepth < 2 {
		t.maxQueueDepth = 128
	}
	if t.maxAQDepth < 2 || t.maxAQDepth > 4096 {
		t.maxAQDepth = 128
	}
	if t.ioUnitSize == 0 {
		// max_io_size 0 clamped io_unit_size to 0: SPDK divides by it.
		s.crash("nvmf_tcp_create: max_io_size / io_unit_size with io_unit_size 0 (SIGFPE)")
		return nil, errCrashed
	}
	if t.maxIOSize/t.ioUnitSize > tcpMaxSGLEntries {
		return nil, failed
	}
	if t.bufCacheSize != 0xffffffff && uint64(t.bufCacheSize)*reactorCores > uint64(t.numSharedBuffers) {
		return nil, failed
	}
	s.transports = append(s.transports, t)
	return true, nil
}

func nvmfGetTransports(s *state, params json.RawMessage) (any, *Error) {
	var p struct {
		TrType  *string `json:"trtype"`
		TgtName *string `json:"tgt_name"`
	}
	if err := nvmfDecodeOptional(params, &p); err != nil {
		return nil, err
	}
	if !tgtFound(p.TgtName) {
		return nil, errNoTarget
	}
	out := []obj{}
	if p.TrType != nil {
		t := s.transport(*p.TrType)
		if t == nil {
			return nil, errNoDevice
		}
		return []obj{t.json()}, nil
	}
	for _, t := range s.transports {
		out = append(out, t.json())
	}
	return out, nil
}

// ---- NQNs ----

// validNQN is nvmf_nqn_is_valid.
func validNQN(nqn string) bool {
	const uuidPrefix = "nqn.2014-08.org.nvmexpress:uuid:"
	if i := strings.IndexByte(nqn, 0); i >= 0 {
		nqn = nqn[:i] // C strings end at NUL
	}
	n := len(nqn)
	if n > 223 || n < 11 {
		return false
	}
	if nqn == discoveryNQN {
		return true
	}
	if strings.HasPrefix(nqn, uuidPrefix) {
		_, ok := parseUUID36(nqn[len(uuidPrefix):])
		return ok
	}
	if !strings.HasPrefix(nqn, "nqn.") {
		return false
	}
	digit := func(c byte) bool { return c >= '0' && c <= '9' }
	alpha := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
	if !(digit(nqn[4]) && digit(nqn[5]) && digit(nqn[6]) && digit(nqn[7]) && nqn[8] == '-' &&
		digit(nqn[9]) && digit(nqn[10]) && n > 11 && nqn[11] == '.') {
		return false
	}
	end := strings.IndexByte(nqn, ':')
	if end < 0 || end >= n-1 {
		return false
	}
	const (
		acceptLetter = iota
		acceptLDH
		acceptAny
	)
	st, label := acceptLetter, 0
	for i := 12; i < end; i++ {
		if label > 63 {
			return false
		}
		c := nqn[i]
		switch st {
		case acceptLetter:
			if !alpha(c) {
				return false
			}
			st, label = acceptAny, label+1
		case acceptLDH, acceptAny:
			switch {
			case alpha(c) || digit(c):
				st, label = acceptAny, label+1
			case c == '-':
				if i == end-1 {
					return false
				}
				st, label = acceptLDH, label+1
			case c == '.' && st == acceptAny:
				st, label = acceptLetter, 0
			default:
				return false
			}
		}
	}
	return utf8.ValidString(nqn[end+1:])
}

// parseUUID36 is spdk_uuid_parse: the 36-character form only.
func parseUUID36(s string) ([]byte, bool) {
	if len(s) != 36 {
		return nil, false
	}
	return parseUUID(s)
}

// ---- subsystems ----

type namespace struct {
	removed  atomic.Bool // set when the namespace goes; connected hosts lose access
	nsid     uint32
	b        *bdev
	nguid    string // 32 upper-case hex digits
	uuid     string
	eui64    string // 16 upper-case hex digits, "" when zero
	anagrpid uint32
}

type listener struct {
	trid      fabric.TransportID // upper-cased as SPDK prints it
	anaStates []string           // per ANA group (1..max_namespaces)
	anaSince  time.Time          // when group 1's state was set (see ANAStatesSince)
	secure    bool
}

type subsystem struct {
	nqn          string
	discovery    bool
	serial       string
	model        string
	allowAny     bool
	anaReporting bool
	maxNS        uint32
	minCntlid    uint16
	maxCntlid    uint16
	nextCntlid   uint16
	hosts        []string     // newest first, as SPDK lists them
	listeners    []*listener  // newest first
	namespaces   []*namespace // by nsid
	// admitted orders the controllers as SPDK lists them: by when they
	// connected (a cntlid given again counts from its new connect).
	admitted map[uint16]uint64
	admits   uint64
}

// sessions are the subsystem's connected controllers in SPDK's order.
func (s *state) sessions(ss *subsystem) []fabric.Session {
	out := s.fab.t.Sessions(ss.nqn)
	sort.SliceStable(out, func(i, j int) bool { return ss.admitted[out[i].CntlID] < ss.admitted[out[j].CntlID] })
	return out
}

// newSubsystems is a target's subsystem table at start: the discovery
// subsystem only.
func newSubsystems() map[string]*subsystem {
	return map[string]*subsystem{discoveryNQN: {nqn: discoveryNQN, discovery: true, allowAny: true}}
}

func nvmfCreateSubsystem(s *state, params json.RawMessage) (any, *Error) {
	var p struct {
		NQN                   string  `json:"nqn"`
		SerialNumber          *string `json:"serial_number"`
		ModelNumber           *string `json:"model_number"`
		TgtName               *string `json:"tgt_name"`
		MaxNamespaces         uint32  `json:"max_namespaces"`
		AllowAnyHost          bool    `json:"allow_any_host"`
		AnaReporting          bool    `json:"ana_reporting"`
		MinCntlid             *uint16 `json:"min_cntlid"`
		MaxCntlid             *uint16 `json:"max_cntlid"`
		MaxDiscardSizeKiB     uint64  `json:"max_discard_size_kib"`
		MaxWriteZeroesSizeKiB uint64  `json:"max_write_zeroes_size_kib"`
	}
	if err := nvmfDecode(params, &p, false, "nqn"); err != nil {
		return nil, err
	}
	if !tgtFound(p.TgtName) {
		return nil, rpcErr(codeInternalError, "Unable to find target "+*p.TgtName)
	}
	// A huge max_namespaces fails SPDK's calloc of the namespace table.
	if _, dup := s.subsystems[p.NQN]; dup || !validNQN(p.NQN) || len(s.subsystems) >= s.subsystemLimit() || p.MaxNamespaces > 1<<30 {
		return nil, rpcErr(codeInternalError, "Unable to create subsystem "+p.NQN)
	}
	ss := &subsystem{
		nqn: p.NQN, serial: "00000000000000000000", model: "SPDK bdev Controller",
		allowAny: p.AllowAnyHost, anaReporting: p.AnaReporting, maxNS: p.MaxNamespaces,
		minCntlid: minCntlid, maxCntlid: maxCntlid,
	}
	if ss.maxNS == 0 {
		ss.maxNS = 32
	}
	if p.SerialNumber != nil {
		if len(*p.SerialNumber) > 20 || !printableASCII(*p.SerialNumber) {
			return nil, rpcErr(codeInvalidParams, "Invalid SN "+*p.SerialNumber)
		}
		ss.serial = *p.SerialNumber
	}
	if p.ModelNumber != nil {
		if len(*p.ModelNumber) > 40 || !printableASCII(*p.ModelNumber) {
			return nil, rpcErr(codeInvalidParams, "Invalid MN "+*p.ModelNumber)
		}
		ss.model = *p.ModelNumber
	}
	lo, hi := uint16(minCntlid), uint16(maxCntlid)
	if p.MinCntlid != nil {
		lo = *p.MinCntlid
	}
	if p.MaxCntlid != nil {
		hi = *p.MaxCntlid
	}
	if lo > hi || lo < minCntlid || lo > maxCntlid || hi < minCntlid || hi > maxCntlid {
		return nil, rpcErr(codeInvalidParams, fmt.Sprintf("Invalid cntlid range [%d-%d]", lo, hi))
	}
	ss.minCntlid, ss.maxCntlid = lo, hi
	// nvmf_subsystem_set_cntlid_range: next_cntlid starts at 0.
	if ss.nextCntlid < lo || ss.nextCntlid > hi-1 {
		ss.nextCntlid = lo - 1
	}
	if w := p.MaxWriteZeroesSizeKiB; w != 0 && (w <= 2 || w&(w-1) != 0) {
		return nil, rpcErr(codeInvalidParams, fmt.Sprintf("Invalid max_write_zeroes_size_kib %d\n", w))
	}
	s.subsystems[p.NQN] = ss
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
	NQN     string  `json:"nqn"`
	TgtName *string `json:"tgt_name"`
}

func nvmfDeleteSubsystem(s *state, params json.RawMessage) (any, *Error) {
	var p nqnParam
	if err := nvmfDecode(params, &p, false, "nqn"); err != nil {
		return nil, err
	}
	if !tgtFound(p.TgtName) {
		return nil, errNoTarget
	}
	ss, ok := s.subsystems[p.NQN]
	if !ok {
		return nil, errInvalParams
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

func listenAddrJSON(t fabric.TransportID, withTransport bool) obj {
	o := obj{}
	if withTransport {
		o = append(o, kv{"transport", t.TrType})
	}
	return append(o, kv{"trtype", t.TrType}, kv{"adrfam", t.AdrFam}, kv{"traddr", t.TrAddr}, kv{"trsvcid", t.TrSvcID})
}

func nvmfGetSubsystems(s *state, params json.RawMessage) (any, *Error) {
	var p struct {
		NQN     *string `json:"nqn"`
		TgtName *string `json:"tgt_name"`
	}
	if err := nvmfDecodeOptional(params, &p); err != nil {
		return nil, err
	}
	if !tgtFound(p.TgtName) {
		return nil, errNoTarget
	}
	if p.NQN != nil {
		ss, ok := s.subsystems[*p.NQN]
		if !ok {
			return nil, errNoDevice
		}
		r := newRawResult(1024)
		r.b = append(ss.appendJSON(append(r.b, '[')), ']')
		return r, nil
	}
	nqns := make([]string, 0, len(s.subsystems))
	for n := range s.subsystems {
		nqns = append(nqns, n)
	}
	sort.Strings(nqns) // SPDK keeps them in a tree ordered by strcmp
	// Encoded here, under the state's lock, instead of copied out as objs.
	r := newRawResult(max(s.subsysListLen, 768*len(nqns)))
	r.b = append(r.b, '[')
	for i, n := range nqns {
		if i > 0 {
			r.b = append(r.b, ',')
		}
		r.b = s.subsystems[n].appendJSON(r.b)
	}
	s.subsysListLen = len(r.b) + len(r.b)/8 // the next listing is about as long
	r.b = append(r.b, ']')
	return r, nil
}

// ---- namespaces ----

type nsParams struct {
	BdevName string          `json:"bdev_name"`
	NSID     uint32          `json:"nsid"`
	PtplFile string          `json:"ptpl_file"`
	UUID     json.RawMessage `json:"uuid"`
	NGUID    json.RawMessage `json:"nguid"`
	EUI64    json.RawMessage `json:"eui64"`
	ANAGrpID uint32          `json:"anagrpid"`
}

// decodeHexString is decode_hex_string_be: exactly n bytes of hex digits.
func decodeHexString(raw json.RawMessage, n int) ([]byte, bool) {
	var s string
	if json.Unmarshal(raw, &s) != nil || len(s) != 2*n {
		return nil, false
	}
	out := make([]byte, n)
	for i := range out {
		hi, ok1 := hexVal(s[2*i])
		lo, ok2 := hexVal(s[2*i+1])
		if !ok1 || !ok2 {
			return nil, false
		}
		out[i] = hi<<4 | lo
	}
	return out, true
}

func allZero(b []byte) bool { return len(bytes.Trim(b, "\x00")) == 0 }

func nvmfAddNS(s *state, params json.RawMessage) (any, *Error) {
	var p struct {
		NQN       string   `json:"nqn"`
		Namespace nsParams `json:"namespace"`
		TgtName   *string  `json:"tgt_name"`
	}
	if err := nvmfDecode(params, &p, false, "nqn", "namespace"); err != nil {
		return nil, err
	}
	var nsKeys map[string]json.RawMessage
	_ = json.Unmarshal(params, &struct {
		NS *map[string]json.RawMessage `json:"namespace"`
	}{&nsKeys})
	if _, ok := nsKeys["bdev_name"]; !ok {
		return nil, errInvalParams
	}
	var nguid, eui64, uuid []byte
	if p.Namespace.NGUID != nil {
		var ok bool
		if nguid, ok = decodeHexString(p.Namespace.NGUID, 16); !ok {
			return nil, errInvalParams
		}
	}
	if p.Namespace.EUI64 != nil {
		var ok bool
		if eui64, ok = decodeHexString(p.Namespace.EUI64, 8); !ok {
			return nil, errInvalParams
		}
	}
	if p.Namespace.UUID != nil {
		var us string
		var ok bool
		if json.Unmarshal(p.Namespace.UUID, &us) != nil {
			return nil, errInvalParams
		}
		if uuid, ok = parseUUID36(us); !ok {
			return nil, errInvalParams
		}
	}
	if !tgtFound(p.TgtName) {
		return nil, errNoTarget
	}
	ss, ok := s.subsystems[p.NQN]
	if !ok {
		return nil, errInvalParams
	}
	// spdk_nvmf_subsystem_add_ns_ext
	nsid := p.Namespace.NSID
	if nsid == 0xffffffff {
		return nil, errInvalParams
	}
	if nsid == 0 {
		for nsid = 1; nsid <= ss.maxNS && ss.ns(nsid) != nil; nsid++ {
		}
	}
	if ss.ns(nsid) != nil || nsid > ss.maxNS {
		return nil, errInvalParams
	}
	grp := p.Namespace.ANAGrpID
	if grp == 0 {
		grp = nsid
	}
	if grp > ss.maxNS {
		return nil, errInvalParams
	}
	b := s.lookup(p.Namespace.BdevName)
	if b == nil || b.claim != "" {
		return nil, errInvalParams
	}
	raw, _ := parseUUID(b.uuid)
	ns := &namespace{nsid: nsid, b: b, anagrpid: grp, uuid: b.uuid, nguid: strings.ToUpper(fmt.Sprintf("%x", raw))}
	if uuid != nil && !allZero(uuid) {
		ns.uuid = formatUUID(uuid)
	}
	if nguid != nil && !allZero(nguid) {
		ns.nguid = strings.ToUpper(fmt.Sprintf("%x", nguid))
	}
	if eui64 != nil && !allZero(eui64) {
		ns.eui64 = strings.ToUpper(fmt.Sprintf("%x", eui64))
	}
	claimBdev(b, claimExclusiveWrite, "nvmf")
	ss.namespaces = append(ss.namespaces, ns)
	sort.Slice(ss.namespaces, func(i, j int) bool { return ss.namespaces[i].nsid < ss.namespaces[j].nsid })
	s.namespacesChanged(ss)
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
		NQN     string  `json:"nqn"`
		NSID    uint32  `json:"nsid"`
		TgtName *string `json:"tgt_name"`
	}
	if err := nvmfDecode(params, &p, false, "nqn", "nsid"); err != nil {
		return nil, err
	}
	if !tgtFound(p.TgtName) {
		return nil, errNoTarget
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
	s.namespacesChanged(ss)
}

// bdevResized is the target's answer to a bdev resize event
// (nvmf_ns_resize): every namespace of b reports its new size to the
// connected hosts with an async event (caller holds s.mu).
func (s *state) bdevResized(b *bdev) {
	if b.claimedBy != "nvmf" {
		return // not in a namespace: adding one claims the bdev
	}
	for _, ss := range s.subsystems {
		for _, ns := range ss.namespaces {
			if ns.b == b {
				s.fab.t.ResizeNamespace(ss.nqn, ns.nsid, b.numBlocks)
			}
		}
	}
}

// namespaceBdevRemoved drops the namespaces of a hot-removed bdev.
func (s *state) namespaceBdevRemoved(b *bdev) {
	if b.claimedBy != "nvmf" {
		return // not in a namespace: adding one claims the bdev
	}
	for _, ss := range s.subsystems {
		// Collected first (dropNamespace edits ss.namespaces), and only
		// where b is: a copy of every subsystem's list per removed bdev
		// was an allocation per subsystem on the node.
		var hit []*namespace
		for _, ns := range ss.namespaces {
			if ns.b == b {
				hit = append(hit, ns)
			}
		}
		for _, ns := range hit {
			s.dropNamespace(ss, ns)
		}
	}
}

// ---- hosts ----

type hostParams struct {
	NQN     string  `json:"nqn"`
	Host    string  `json:"host"`
	TgtName *string `json:"tgt_name"`
}

func (s *state) hostParams(params json.RawMessage, relaxed bool) (*subsystem, string, *Error) {
	var p hostParams
	if err := nvmfDecode(params, &p, relaxed, "nqn", "host"); err != nil {
		return nil, "", err
	}
	if !tgtFound(p.TgtName) {
		return nil, "", errNoTarget
	}
	ss, ok := s.subsystems[p.NQN]
	if !ok {
		return nil, "", errInvalParams
	}
	return ss, p.Host, nil
}

func nvmfAddHost(s *state, params json.RawMessage) (any, *Error) {
	ss, host, rerr := s.hostParams(params, true) // psk and the like are the transport's
	if rerr != nil {
		return nil, rerr
	}
	if !validNQN(host) {
		return nil, errInternal
	}
	for _, h := range ss.hosts {
		if h == host {
			return true, nil
		}
	}
	if s.transport("TCP") != nil && !tcpHostPSKOK(params) {
		return nil, errInternal // the TCP transport refused the host: it is removed again
	}
	ss.hosts = append([]string{host}, ss.hosts...)
	return true, nil
}

// tcpHostPSKOK is nvmf_tcp_subsystem_add_host's check of "psk": a path
// to a PSK in interchange format ("NVMeTLSkey-1:...") that can be read.
func tcpHostPSKOK(params json.RawMessage) bool {
	var m map[string]json.RawMessage
	_ = json.Unmarshal(params, &m)
	raw, ok := m["psk"]
	if !ok {
		return true
	}
	var path string
	if firstByte(raw) != '"' || json.Unmarshal(raw, &path) != nil || len(path) >= 4096 {
		return false
	}
	data, err := os.ReadFile(path)
	return err == nil && bytes.HasPrefix(data, []byte("NVMeTLSkey-1:"))
}

func nvmfRemoveHost(s *state, params json.RawMessage) (any, *Error) {
	ss, host, rerr := s.hostParams(params, false)
	if rerr != nil {
		return nil, rerr
	}
	for i, h := range ss.hosts {
		if h == host {
			ss.hosts = append(ss.hosts[:i:i], ss.hosts[i+1:]...)
			s.fab.DisconnectHost(ss.nqn, host)
			return true, nil
		}
	}
	return nil, errInternal
}

func nvmfAllowAnyHost(s *state, params json.RawMessage) (any, *Error) {
	var p struct {
		NQN          string  `json:"nqn"`
		AllowAnyHost bool    `json:"allow_any_host"`
		TgtName      *string `json:"tgt_name"`
	}
	if err := nvmfDecode(params, &p, false, "nqn", "allow_any_host"); err != nil {
		return nil, err
	}
	if !tgtFound(p.TgtName) {
		return nil, errNoTarget
	}
	ss, ok := s.subsystems[p.NQN]
	if !ok {
		return nil, errInvalParams
	}
	ss.allowAny = p.AllowAnyHost
	return true, nil
}

// ---- transport ids ----

// adrfamName parses an adrfam as spdk_nvme_transport_id_parse_adrfam does
// and returns how SPDK prints it.
func adrfamName(adrfam string) (string, bool) {
	switch strings.ToLower(adrfam) {
	case "ipv4":
		return "IPv4", true
	case "ipv6":
		return "IPv6", true
	case "ib":
		return "IB", true
	case "fc":
		return "FC", true
	case "intra_host":
		return "INTRA_HOST", true
	}
	return "", false
}

// normTrid upper-cases trtype/adrfam the way SPDK prints them.
func normTrid(trtype, adrfam, traddr, trsvcid string) fabric.TransportID {
	fam, ok := adrfamName(adrfam)
	if !ok {
		fam = "IPv4"
	}
	return fabric.TransportID{TrType: strings.ToUpper(trtype), AdrFam: fam, TrAddr: traddr, TrSvcID: trsvcid}
}

// localAddr reports whether addr can be bound on this host in family fam.
func localAddr(addr, fam string) bool {
	ip := net.ParseIP(addr)
	if ip == nil || strings.Contains(addr, "%") {
		return false
	}
	if (ip.To4() != nil) != (fam == "IPv4") {
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
	return err == nil && n > 0 && n < 65536 && strconv.Itoa(n) == p
}

package spdktest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vda-io/vda/spdk/spdktest/blockdev"
	"github.com/vda-io/vda/spdk/spdktest/fabric"
)

func init() {
	register("bdev_nvme_set_options", phaseBoth, bdevNvmeSetOptions)
	registerUnlocked("bdev_nvme_attach_controller", phaseRuntime, nvmeAttach)
	register("bdev_nvme_detach_controller", phaseRuntime, nvmeDetach)
	register("bdev_nvme_get_controllers", phaseRuntime, nvmeGetControllers)
	register("bdev_nvme_get_io_paths", phaseRuntime, nvmeGetIOPaths)
	register("bdev_nvme_set_multipath_policy", phaseRuntime, nvmeSetMultipathPolicy)
}

// dialTimeout bounds one NVMe-oF connect attempt.
const dialTimeout = 5 * time.Second

// Field sizes of SPDK's struct spdk_nvme_transport_id and
// spdk_nvme_ctrlr_opts: a value this long or longer does not fit.
const (
	trstringSize = 33  // SPDK_NVMF_TRSTRING_MAX_LEN + 1
	traddrSize   = 257 // SPDK_NVMF_TRADDR_MAX_LEN + 1
	trsvcidSize  = 33  // SPDK_NVMF_TRSVCID_MAX_LEN + 1
	nqnSize      = 224 // SPDK_NVMF_NQN_MAX_LEN + 1
)

// Timing of a reset with reconnect_delay_sec 0 (SPDK's default), as real
// SPDK showed it (testdata/diff/nvme_outage_*): bdev_nvme keeps resetting a
// lost controller, which is "failed" between attempts and reconnects by
// itself once the target takes it again; a connect the target rejects
// (host not allowed, no subsystem) keeps it "resetting" for about a
// second, a refused one fails it at once and is retried at once (it
// reconnects as soon as the target listens again). SPDK's exact retry
// period after a rejection is not observable over RPC; 1.5 s keeps the
// fake's states away from the recorded polls' edges.
const (
	defaultRetryInterval = 1500 * time.Millisecond
	refusedRetryInterval = 100 * time.Millisecond
	rejectedResetTime    = time.Second
	// failoverResetTime is how long a reset onto another path takes before
	// its connect (the disconnect and the I/O channels' reset).
	failoverResetTime = 200 * time.Millisecond
)

// nvmeOptions are bdev_nvme_set_options' values (SPDK's g_opts). Every call
// starts from the current values: what it leaves out stays.
type nvmeOptions struct {
	ActionOnTimeout      string `json:"action_on_timeout"`
	TimeoutUs            uint64 `json:"timeout_us"`
	TimeoutAdminUs       uint64 `json:"timeout_admin_us"`
	KeepAliveTimeoutMs   uint32 `json:"keep_alive_timeout_ms"`
	RetryCount           uint32 `json:"retry_count"`
	ArbitrationBurst     uint32 `json:"arbitration_burst"`
	LowPriorityWeight    uint32 `json:"low_priority_weight"`
	MediumPriorityWeight uint32 `json:"medium_priority_weight"`
	HighPriorityWeight   uint32 `json:"high_priority_weight"`
	AdminqPollPeriodUs   uint64 `json:"nvme_adminq_poll_period_us"`
	IOQPollPeriodUs      uint64 `json:"nvme_ioq_poll_period_us"`
	IOQueueRequests      uint32 `json:"io_queue_requests"`
	DelayCmdSubmit       bool   `json:"delay_cmd_submit"`
	TransportRetryCount  uint32 `json:"transport_retry_count"`
	BdevRetryCount       int32  `json:"bdev_retry_count"`
	TransportAckTimeout  uint8  `json:"transport_ack_timeout"`
	CtrlrLossTimeoutSec  int32  `json:"ctrlr_loss_timeout_sec"`
	ReconnectDelaySec    uint32 `json:"reconnect_delay_sec"`
	FastIOFailTimeoutSec uint32 `json:"fast_io_fail_timeout_sec"`
	DisableAutoFailback  bool   `json:"disable_auto_failback"`
	GenerateUUIDs        bool   `json:"generate_uuids"`
	TransportTOS         uint8  `json:"transport_tos"`
	NvmeErrorStat        bool   `json:"nvme_error_stat"`
	RdmaSrqSize          uint32 `json:"rdma_srq_size"`
	IOPathStat           bool   `json:"io_path_stat"`
	AllowAcceleratedSeq  bool   `json:"allow_accel_sequence"`
	RdmaMaxCqSize        uint32 `json:"rdma_max_cq_size"`
}

// ctrlrOpts are a controller's I/O error resiliency options.
type ctrlrOpts struct {
	lossSec     int32
	delaySec    uint32
	fastFailSec uint32
	// katoMs is the keep-alive timeout the controller connects with
	// (bdev_nvme_set_options' keep_alive_timeout_ms, 0 here meaning SPDK's
	// default): SPDK sends a keep-alive every half of it.
	katoMs uint32
}

// defaultKATOMs is SPDK_BDEV_NVME_DEFAULT_KEEP_ALIVE_TIMEOUT_IN_MS.
const defaultKATOMs = 10_000

// dialOptions are the fabric connection's keep-alive settings: one
// keep-alive every katoMs/2 (nvme_ctrlr.c: keep_alive_interval_us =
// keep_alive_timeout_ms * 1000 / 2), failing the connection once one goes
// unanswered for katoMs. The fabric's own default (one a second) cost a
// CN with 2,000 VD controllers 2,000 round trips a second.
func (o ctrlrOpts) dialOptions() fabric.DialOptions {
	kato := o.katoMs
	if kato == 0 {
		kato = defaultKATOMs
	}
	d := time.Duration(kato) * time.Millisecond
	return fabric.DialOptions{KeepAliveInterval: d / 2, KeepAliveTimeout: d}
}

// ioErrorResiliencyOK is bdev_nvme_check_io_error_resiliency_params.
func ioErrorResiliencyOK(o ctrlrOpts) bool {
	loss, delay, fast := o.lossSec, o.delaySec, o.fastFailSec
	switch {
	case loss < -1:
		return false
	case loss == -1:
		return delay != 0 && (fast == 0 || fast >= delay)
	case loss != 0:
		if delay == 0 || delay > uint32(loss) {
			return false
		}
		return fast == 0 || (fast >= delay && fast <= uint32(loss))
	default:
		return delay == 0 && fast == 0
	}
}

// pathID is one transport ID of a controller: its active one or an
// alternate (failover) one.
type pathID struct {
	trid   fabric.TransportID // as printed: TCP / IPv4
	subnqn string
}

func (p pathID) json() ctrlrTrid {
	return ctrlrTrid{TrType: p.trid.TrType, AdrFam: p.trid.AdrFam, TrAddr: p.trid.TrAddr, TrSvcID: p.trid.TrSvcID, SubNQN: p.subnqn}
}

// nvmePath is one NVMe controller (SPDK's struct nvme_ctrlr, one "ctrlrs"
// entry of bdev_nvme_get_controllers) under a name: its active transport
// ID, its alternate ones (failover), and its connection.
type nvmePath struct {
	pathID
	alts      []pathID
	hostnqn   string
	hostaddr  string
	hostsvcid string
	conn      *fabric.Conn // nil for a local PCIe device
	info      fabric.ControllerInfo
	// state is enabled, resetting, failed or reconnect_is_delayed.
	state string
	local *localNVMe // the device of a PCIe path
	opts  ctrlrOpts
	prchk bool
	stop  chan struct{} // closed when the path is removed
	once  sync.Once
}

func (p *nvmePath) close() {
	p.once.Do(func() {
		if p.stop != nil {
			close(p.stop)
		}
	})
	if p.conn != nil {
		_ = p.conn.Close()
	}
}

// nvmeCtrlr is a bdev_nvme controller (SPDK's struct nvme_bdev_ctrlr): a
// name, its controllers (paths) and its bdevs.
type nvmeCtrlr struct {
	// mu guards paths and their state/conn for the data path, which must
	// not take the state lock (I/O runs while handlers hold it).
	mu        sync.Mutex
	name      string
	paths     []*nvmePath
	bdevs     map[uint32]*bdev
	policy    map[uint32]string // mp_policy per namespace bdev (active_passive if unset)
	stop      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

func (c *nvmeCtrlr) closeAll() {
	c.closeOnce.Do(func() { close(c.stop) })
	c.mu.Lock()
	paths := c.paths
	c.mu.Unlock()
	for _, p := range paths {
		p.close()
	}
}

func bdevNvmeSetOptions(s *state, params json.RawMessage) (any, *Error) {
	o := s.nvmeOptions
	if params != nil {
		if err := decodeParams(params, &o); err != nil {
			return nil, err
		}
		var probe struct {
			ActionOnTimeout *string `json:"action_on_timeout"`
		}
		_ = json.Unmarshal(params, &probe)
		if probe.ActionOnTimeout != nil {
			switch *probe.ActionOnTimeout {
			case "none", "reset", "abort":
			default:
				return nil, errDecode
			}
		}
	}
	if (o.TimeoutUs == 0 && o.TimeoutAdminUs != 0) || o.BdevRetryCount < -1 ||
		!ioErrorResiliencyOK(ctrlrOpts{lossSec: o.CtrlrLossTimeoutSec, delaySec: o.ReconnectDelaySec, fastFailSec: o.FastIOFailTimeoutSec}) {
		return nil, rpcErr(-22, "Invalid argument")
	}
	if len(s.ctrlrs) > 0 {
		return nil, rpcErr(-1, "RPC not permitted with nvme controllers already attached")
	}
	s.nvmeOptions = o
	return true, nil
}

type attachParams struct {
	Name                    string  `json:"name"`
	TrType                  string  `json:"trtype"`
	TrAddr                  string  `json:"traddr"`
	AdrFam                  *string `json:"adrfam"`
	TrSvcID                 string  `json:"trsvcid"`
	Priority                string  `json:"priority"`
	SubNQN                  string  `json:"subnqn"`
	HostNQN                 string  `json:"hostnqn"`
	HostAddr                string  `json:"hostaddr"`
	HostSvcID               string  `json:"hostsvcid"`
	PrchkReftag             bool    `json:"prchk_reftag"`
	PrchkGuard              bool    `json:"prchk_guard"`
	Hdgst                   bool    `json:"hdgst"`
	Ddgst                   bool    `json:"ddgst"`
	FabricsConnectTimeoutUs uint64  `json:"fabrics_connect_timeout_us"`
	Multipath               *string `json:"multipath"`
	NumIOQueues             *uint32 `json:"num_io_queues"`
	CtrlrLossTimeoutSec     *int32  `json:"ctrlr_loss_timeout_sec"`
	ReconnectDelaySec       *uint32 `json:"reconnect_delay_sec"`
	FastIOFailTimeoutSec    *uint32 `json:"fast_io_fail_timeout_sec"`
	PSK                     *string `json:"psk"`
	MaxBdevs                *uint32 `json:"max_bdevs"`

	opts      ctrlrOpts
	multipath string // the mode; "" is failover
}

func (s *state) ctrlr(name string) *nvmeCtrlr { return s.ctrlrByName[name] }

// pathKey names one active path: SPDK allows a transport ID (with its
// subsystem NQN) as the active one of one controller only.
type pathKey struct {
	trid   fabric.TransportID
	subnqn string
}

// owner is nvme_ctrlr_get: the controller whose active path is k. Only
// the controllers that have had a path of k's subsystem NQN are looked at
// (a path's alternates share its NQN: bdev_nvme refuses another), not
// every controller: each attach of a promotion looked through thousands.
func (s *state) owner(k pathKey) *nvmeCtrlr {
	var hit *nvmeCtrlr
	cands := s.ctrlrsBySubNQN[k.subnqn]
	kept := cands[:0]
	for _, c := range cands {
		if s.ctrlrByName[c.name] != c || !slices.ContainsFunc(c.paths, func(p *nvmePath) bool { return p.subnqn == k.subnqn }) {
			continue // gone, or its paths of k.subnqn are: no longer a candidate
		}
		kept = append(kept, c)
		if hit != nil && slices.Index(s.ctrlrs, c) > slices.Index(s.ctrlrs, hit) {
			continue // the first in registration order, as a scan of s.ctrlrs finds
		}
		for _, p := range c.paths {
			if p.subnqn == k.subnqn && p.trid == k.trid {
				hit = c
				break
			}
		}
	}
	clear(cands[len(kept):])
	if len(kept) == 0 {
		delete(s.ctrlrsBySubNQN, k.subnqn)
	} else {
		s.ctrlrsBySubNQN[k.subnqn] = kept
	}
	return hit
}

// indexPath makes c a candidate of owner for p's subsystem NQN (caller
// holds s.mu).
func (s *state) indexPath(c *nvmeCtrlr, p *nvmePath) {
	cands := s.ctrlrsBySubNQN[p.subnqn]
	if !slices.Contains(cands, c) {
		s.ctrlrsBySubNQN[p.subnqn] = append(cands, c)
	}
}

// addCtrlr registers c (caller holds s.mu).
func (s *state) addCtrlr(c *nvmeCtrlr) {
	s.ctrlrs = append(s.ctrlrs, c)
	s.ctrlrByName[c.name] = c
	for _, p := range c.paths {
		s.indexPath(c, p)
	}
}

// parseAdrFam is spdk_nvme_transport_id_parse_adrfam.
func parseAdrFam(s string) (string, bool) {
	for _, f := range []string{"IPv4", "IPv6", "IB", "FC"} {
		if strings.EqualFold(s, f) {
			return f, true
		}
	}
	return "", false
}

// trtypeName is the trtype as SPDK prints it (spdk_nvme_transport_id_parse_trtype
// then _trtype_str; an unknown one is a custom transport, printed upper case).
func trtypeName(s string) string {
	for _, t := range []string{"PCIe", "RDMA", "FC", "TCP", "VFIOUSER"} {
		if strings.EqualFold(s, t) {
			return t
		}
	}
	return strings.ToUpper(s)
}

func tooLong(what, v string) *Error { return rpcErr(-22, what+" too long: "+v) }

// nvmeAttach is bdev_nvme_attach_controller: rpc_bdev_nvme_attach_controller's
// checks and bdev_nvme_create's answer at once; the connect is asynchronous
// (SPDK replies when the controller is up) and runs without holding the
// state lock, so a target may even attach to its own export.
func nvmeAttach(s *state, params json.RawMessage) (any, *Error) {
	var p attachParams
	if err := decodeParams(params, &p, "name", "trtype", "traddr"); err != nil {
		return nil, err
	}
	if p.Multipath != nil {
		switch *p.Multipath {
		case "failover", "multipath", "disable":
			p.multipath = *p.Multipath
		default:
			return nil, errDecode // bdev_nvme_decode_multipath refuses it
		}
	}
	if p.MaxBdevs != nil && *p.MaxBdevs == 0 {
		return nil, rpcErr(-22, "max_bdevs cannot be zero")
	}
	if len(p.TrType) >= trstringSize {
		return nil, rpcErr(-22, "Failed to parse trtype: "+p.TrType)
	}
	if len(p.TrAddr) >= traddrSize {
		return nil, tooLong("traddr", p.TrAddr)
	}
	adrfam := ""
	if p.AdrFam != nil {
		f, ok := parseAdrFam(*p.AdrFam)
		if !ok {
			return nil, rpcErr(-22, "Failed to parse adrfam: "+*p.AdrFam)
		}
		adrfam = f
	}
	if len(p.TrSvcID) >= trsvcidSize {
		return nil, tooLong("trsvcid", p.TrSvcID)
	}
	if len(p.SubNQN) >= nqnSize {
		return nil, tooLong("subnqn", p.SubNQN)
	}
	if len(p.HostNQN) >= nqnSize {
		p.HostNQN = p.HostNQN[:nqnSize-1] // snprintf into hostnqn
	}
	if p.PSK != nil {
		if _, err := os.Stat(*p.PSK); err != nil {
			return nil, rpcErr(-22, "Could not retrieve PSK from file: "+*p.PSK)
		}
	}
	if len(p.HostAddr) >= traddrSize {
		return nil, tooLong("hostaddr", p.HostAddr)
	}
	if len(p.HostSvcID) >= trsvcidSize {
		return nil, tooLong("hostsvcid", p.HostSvcID)
	}
	if p.HostNQN == "" {
		p.HostNQN = s.hostNQN
	}
	trtype := trtypeName(p.TrType)
	trid := fabric.TransportID{TrType: trtype, AdrFam: adrfam, TrAddr: p.TrAddr, TrSvcID: p.TrSvcID}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.ctrlr(p.Name); c != nil {
		if rerr := sameNameChecks(c, &p, trid); rerr != nil {
			return nil, rerr
		}
	}
	if p.NumIOQueues != nil && (*p.NumIOQueues == 0 || *p.NumIOQueues > 65536) {
		return nil, rpcErr(-22, "num_io_queues out of bounds, min: 1 max: 65536\n")
	}
	if trtype == "PCIe" {
		return s.attachPCIe(&p)
	}
	if s.owner(pathKey{trid, p.SubNQN}) != nil {
		return nil, errExists
	}
	p.opts = ctrlrOpts{s.nvmeOptions.CtrlrLossTimeoutSec, s.nvmeOptions.ReconnectDelaySec, s.nvmeOptions.FastIOFailTimeoutSec,
		s.nvmeOptions.KeepAliveTimeoutMs}
	if p.CtrlrLossTimeoutSec != nil {
		p.opts.lossSec = *p.CtrlrLossTimeoutSec
	}
	if p.ReconnectDelaySec != nil {
		p.opts.delaySec = *p.ReconnectDelaySec
	}
	if p.FastIOFailTimeoutSec != nil {
		p.opts.fastFailSec = *p.FastIOFailTimeoutSec
	}
	if !ioErrorResiliencyOK(p.opts) {
		return nil, rpcErr(-22, "Invalid argument")
	}
	// spdk_nvme_connect_async fails at once when the transport cannot even
	// try: an unknown transport, an address that is not a numeric one of
	// the family, a source address this fake cannot bind (with a source
	// port alone, nvme_parse_addr's getaddrinfo of "" fails in SPDK too).
	if trtype != "TCP" || !dialable(trid) || p.HostAddr != "" || p.HostSvcID != "" {
		return nil, errNoDevice
	}
	select {
	case <-s.in.done:
		return nil, errNoDevice
	default:
	}
	return async(func() (any, *Error) { return s.attachTCP(&p, trid) }), nil
}

// dialable reports whether the TCP transport can connect to trid: a
// numeric address of its family and a numeric port.
func dialable(trid fabric.TransportID) bool {
	ip := net.ParseIP(trid.TrAddr)
	if ip == nil {
		return false
	}
	if (trid.AdrFam == "IPv4") != (ip.To4() != nil) || (trid.AdrFam != "IPv4" && trid.AdrFam != "IPv6") {
		return false
	}
	var port uint16
	if _, err := fmt.Sscanf(trid.TrSvcID, "%d", &port); err != nil || fmt.Sprint(port) != trid.TrSvcID {
		return false
	}
	return true
}

// connectErr maps a failed NVMe-oF connect to what the attach answers: the
// target's rejection of the connect command (host not allowed, no such
// subsystem, no free cntlid) fails the probe (-32602), a connection that
// cannot be made fails spdk_nvme_connect_async (-19).
func connectErr(err error) *Error {
	if errors.Is(err, fabric.ErrNotAllowed) || errors.Is(err, fabric.ErrNoSubsystem) || errors.Is(err, fabric.ErrInvalid) ||
		errors.Is(err, fabric.ErrRejected) {
		return errInvalParams
	}
	return errNoDevice
}

// attachTCP connects one path of an attach and adds it.
func (s *state) attachTCP(p *attachParams, trid fabric.TransportID) (any, *Error) {
	if p.SubNQN == "" {
		return nil, errInvalParams // the connect to an empty subsystem NQN is rejected
	}
	conn, err := s.dial(pathID{trid, p.SubNQN}, p.HostNQN, p.opts)
	if err != nil {
		return nil, connectErr(err)
	}
	if t := p.FabricsConnectTimeoutUs; t > 0 && t < minConnectUs {
		// The fabrics CONNECT did not complete in time: the probe fails.
		_ = conn.Close()
		return nil, errInvalParams
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.in.done:
		_ = conn.Close()
		return nil, errNoDevice
	default:
	}
	return s.attachPath(p, trid, conn)
}

// minConnectUs is the shortest fabrics_connect_timeout_us in which a
// CONNECT completes: on loopback, real SPDK v24.01 failed every attach
// with 1,000 us and below and completed them with 10,000 us
// (nvme_attach_connect_timeout).
const minConnectUs = 5000

// dial connects to id as hostnqn, giving up when the instance stops.
func (s *state) dial(id pathID, hostnqn string, o ctrlrOpts) (*fabric.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	go func() {
		select {
		case <-s.in.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	return fabric.DialWith(ctx, wireTrid(id.trid), id.subnqn, hostnqn, o.dialOptions())
}

func (s *state) attachPath(p *attachParams, trid fabric.TransportID, conn *fabric.Conn) (any, *Error) {
	info := conn.Info()
	id := pathID{trid, p.SubNQN}
	c := s.ctrlr(p.Name)
	if c != nil && p.multipath != "multipath" {
		// A failover path: checked against the first controller, kept as
		// an alternate transport ID, and disconnected until needed.
		_ = conn.Close()
		first := c.paths[0]
		if first.local != nil || first.trid.TrType != trid.TrType || first.subnqn != id.subnqn {
			return nil, errInvalParams
		}
		if first.pathID == id || slices.Contains(first.alts, id) {
			return nil, errInvalParams // "This path ... is already registered"
		}
		c.mu.Lock()
		first.alts = append(first.alts, id)
		c.mu.Unlock()
		return []string{}, nil
	}
	if s.owner(pathKey{trid, p.SubNQN}) != nil {
		_ = conn.Close()
		return nil, errExists
	}
	path := &nvmePath{pathID: id, hostnqn: p.HostNQN, hostaddr: p.HostAddr, hostsvcid: p.HostSvcID,
		conn: conn, info: info, state: "enabled", opts: p.opts, prchk: p.PrchkReftag || p.PrchkGuard,
		stop: make(chan struct{})}
	names := []string{}
	if c != nil {
		for _, x := range c.paths {
			if x.info.CntlID == info.CntlID {
				_ = conn.Close()
				return nil, errInvalParams // "cntlid N are duplicated"
			}
		}
		c.mu.Lock()
		c.paths = append(c.paths, path)
		c.mu.Unlock()
		s.indexPath(c, path)
		for _, ns := range info.Namespaces {
			if b, ok := c.bdevs[ns.NSID]; ok {
				names = append(names, b.name)
			}
		}
	} else {
		c = &nvmeCtrlr{name: p.Name, bdevs: map[uint32]*bdev{}, stop: make(chan struct{}), paths: []*nvmePath{path}}
		s.addCtrlr(c)
		for _, ns := range info.Namespaces {
			b := s.nvmeBdev(c, ns)
			if rerr := s.registerBdev(b); rerr != nil {
				s.in.log.Warn("nvme bdev name clash", "bdev", b.name, "uuid", b.uuid)
				continue
			}
			c.bdevs[ns.NSID] = b
			names = append(names, b.name)
		}
	}
	hubRegister(wireTrid(trid), p.SubNQN, c, func(nsid uint32) { s.nvmeNamespaceGone(c, nsid) })
	s.watchPath(c, path, conn)
	max := uint32(128)
	if p.MaxBdevs != nil {
		max = *p.MaxBdevs
	}
	if uint64(len(names)) > uint64(max) {
		// The controller stays; the RPC cannot return every name.
		return nil, errInvalParams
	}
	return names, nil
}

// nvmeBdev builds the bdev of one namespace: named <ctrlr>n<nsid>, with the
// namespace's NGUID as uuid (its UUID only when there is no NGUID).
func (s *state) nvmeBdev(c *nvmeCtrlr, ns fabric.NamespaceInfo) *bdev {
	uuid := ns.UUID
	if g, ok := parseUUID(ns.NGUID); ok && strings.Trim(ns.NGUID, "0-") != "" {
		uuid = formatUUID(g)
	}
	b := &bdev{
		name: fmt.Sprintf("%sn%d", c.name, ns.NSID), uuid: uuid, aliases: []string{uuid},
		product: "NVMe disk", blockSize: ns.BlockSize, numBlocks: ns.NumBlocks, io: ioNVMe,
	}
	nsid := ns.NSID
	md := &multipathDevice{s: s, c: c, nsid: nsid, bs: ns.BlockSize}
	md.n.Store(ns.NumBlocks)
	b.dev = md
	b.driver = func() any { return nvmeDriver(c, nsid) }
	b.driverJSON = nvmeDriverJSON{c, nsid}
	return b
}

// nsInfo returns p's controller data as of now (with ANA changes since
// connect) and whether p shows namespace nsid (a local PCIe path always
// does). The caller holds the controller's lock.
func (p *nvmePath) nsInfo(nsid uint32) (fabric.ControllerInfo, bool) {
	info := p.info
	if p.conn != nil {
		info = p.conn.Info()
	}
	_, ok := info.Namespace(nsid)
	return info, ok || p.local != nil
}

func nvmeDriver(c *nvmeCtrlr, nsid uint32) obj {
	paths := []obj{}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.paths {
		info, ok := p.nsInfo(nsid)
		if !ok {
			continue
		}
		o := obj{}
		if p.local != nil {
			o = append(o, kv{"pci_address", p.trid.TrAddr})
		}
		nsData := obj{{"id", nsid}}
		if info.ANAReporting {
			ana := info.ANAState
			if ana == "" {
				ana = "optimized"
			}
			nsData = append(nsData, kv{"ana_state", ana})
		}
		nsData = append(nsData, kv{"can_share", p.local == nil})
		o = append(o,
			kv{"trid", p.json()},
			kv{"ctrlr_data", obj{
				{"cntlid", p.info.CntlID}, {"vendor_id", "0x8086"}, {"model_number", p.info.ModelNumber},
				{"serial_number", p.info.SerialNumber}, {"firmware_revision", "24.01"}, {"subnqn", p.info.SubNQN},
				{"oacs", obj{{"security", 0}, {"format", 0}, {"firmware", 0}, {"ns_manage", 0}}},
				{"multi_ctrlr", p.local == nil}, {"ana_reporting", p.info.ANAReporting},
			}},
			kv{"vs", obj{{"nvme_version", "1.3"}}},
			kv{"ns_data", nsData},
		)
		paths = append(paths, o)
	}
	policy := c.policy[nsid]
	if policy == "" {
		policy = "active_passive"
	}
	return obj{{"nvme", paths}, {"mp_policy", policy}}
}

// nvmeDriverJSON appends what nvmeDriver(c, nsid) encodes to, without
// building it: a controller node lists an NVMe bdev per VD it attaches
// and per primary a secondary proxies, on every sync, and the tree of
// objects and interfaces was most of the fake's cost for that listing.
// TestNVMeDriverJSONAsObj holds the two to the same bytes.
type nvmeDriverJSON struct {
	c    *nvmeCtrlr
	nsid uint32
}

// MarshalJSON is appendJSON for encoding/json.
func (d nvmeDriverJSON) MarshalJSON() ([]byte, error) { return d.appendJSON(nil) }

func (d nvmeDriverJSON) appendJSON(b []byte) ([]byte, error) {
	c, nsid := d.c, d.nsid
	c.mu.Lock()
	defer c.mu.Unlock()
	b = append(b, `{"nvme":[`...)
	first := true
	for _, p := range c.paths {
		info, ok := p.nsInfo(nsid)
		if !ok {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, '{')
		if p.local != nil {
			b = append(appendStr(append(b, `"pci_address":`...), p.trid.TrAddr), ',')
		}
		var err error
		if b, err = p.json().appendJSON(append(b, `"trid":`...)); err != nil {
			return nil, err
		}
		b = strconv.AppendUint(append(b, `,"ctrlr_data":{"cntlid":`...), uint64(p.info.CntlID), 10)
		b = appendStr(append(b, `,"vendor_id":"0x8086","model_number":`...), p.info.ModelNumber)
		b = appendStr(append(b, `,"serial_number":`...), p.info.SerialNumber)
		b = appendStr(append(b, `,"firmware_revision":"24.01","subnqn":`...), p.info.SubNQN)
		b = append(b, `,"oacs":{"security":0,"format":0,"firmware":0,"ns_manage":0},"multi_ctrlr":`...)
		b = strconv.AppendBool(b, p.local == nil)
		b = strconv.AppendBool(append(b, `,"ana_reporting":`...), p.info.ANAReporting)
		b = strconv.AppendUint(append(b, `},"vs":{"nvme_version":"1.3"},"ns_data":{"id":`...), uint64(nsid), 10)
		if info.ANAReporting {
			ana := info.ANAState
			if ana == "" {
				ana = "optimized"
			}
			b = appendStr(append(b, `,"ana_state":`...), ana)
		}
		b = strconv.AppendBool(append(b, `,"can_share":`...), p.local == nil)
		b = append(b, "}}"...)
	}
	policy := c.policy[nsid]
	if policy == "" {
		policy = "active_passive"
	}
	return append(appendStr(append(b, `],"mp_policy":`...), policy), '}'), nil
}

// multipathDevice sends I/O down the first enabled path (active/passive).
type multipathDevice struct {
	s    *state
	c    *nvmeCtrlr
	nsid uint32
	bs   uint32
	n    atomic.Uint64 // grows when the namespace does (nvmeNamespacesChanged)
}

var errPathDown = errors.New("spdktest: no usable nvme path")

func (d *multipathDevice) BlockSize() uint32 { return d.bs }
func (d *multipathDevice) NumBlocks() uint64 { return d.n.Load() }

func (d *multipathDevice) pick() blockdev.Device {
	d.c.mu.Lock()
	defer d.c.mu.Unlock()
	for _, p := range d.c.paths {
		if p.state == "enabled" && p.conn != nil {
			return p.conn.Device(d.nsid)
		}
	}
	return nil
}

func (d *multipathDevice) ReadAt(b []byte, off int64) (int, error) {
	dev := d.pick()
	if dev == nil {
		return 0, errPathDown
	}
	return dev.ReadAt(b, off)
}

func (d *multipathDevice) WriteAt(b []byte, off int64) (int, error) {
	dev := d.pick()
	if dev == nil {
		return 0, errPathDown
	}
	return dev.WriteAt(b, off)
}

// watchPath starts SPDK's reset sequence when conn, p's connection, drops.
func (s *state) watchPath(c *nvmeCtrlr, p *nvmePath, conn *fabric.Conn) {
	c.wg.Add(1)
	s.in.wg.Add(1)
	go func() {
		defer s.in.wg.Done()
		defer c.wg.Done()
		for up := true; up; {
			select {
			case <-conn.Done():
				up = false
			case <-conn.Events():
				s.nvmeNamespacesChanged(c, conn)
			case <-c.stop:
				return
			case <-p.stop:
				return
			}
		}
		// A removed path closes stop before its connection.
		select {
		case <-c.stop:
			return
		case <-p.stop:
			return
		default:
		}
		s.recover(c, p, conn, 0, nil)
	}()
}

// goRecover runs recover in the background, tracked as the instance's work.
func (s *state) goRecover(c *nvmeCtrlr, p *nvmePath, old *fabric.Conn, delay time.Duration, dialed chan<- struct{}) {
	c.wg.Add(1)
	s.in.wg.Add(1)
	go func() {
		defer s.in.wg.Done()
		defer c.wg.Done()
		s.recover(c, p, old, delay, dialed)
	}()
}

// sleep waits d unless the path or controller goes away first.
func sleepPath(c *nvmeCtrlr, p *nvmePath, d time.Duration) bool {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-c.stop:
	case <-p.stop:
	}
	return false
}

// recover is bdev_nvme's reset sequence for a controller whose connection
// old dropped (or, with delay, that a detach moved to an alternate path:
// its connect then completes delay after it reached the target):
// it reconnects its active path, failing over to the alternate ones in
// turn. With reconnect_delay_sec it retries every reconnect_delay_sec
// ("reconnect_is_delayed" in between) and deletes the controller once
// ctrlr_loss_timeout_sec has passed since the loss (-1: never); with the
// default 0 it keeps resetting ("failed" in between) and never gives up.
//
// dialed, if not nil, is closed once the first connect attempt has reached
// the target (or failed): a caller that must not race it waits for that.
func (s *state) recover(c *nvmeCtrlr, p *nvmePath, old *fabric.Conn, delay time.Duration, dialed chan<- struct{}) {
	start := time.Now()
	signal := func() {}
	if dialed != nil {
		signal = sync.OnceFunc(func() { close(dialed) })
		defer signal()
	}
	c.mu.Lock()
	if p.conn != old {
		c.mu.Unlock()
		return
	}
	p.state = "resetting"
	if len(p.alts) > 0 && delay == 0 {
		// bdev_nvme_failover_trid: the next alternate becomes active,
		// the failed one goes to the end of the list.
		next := p.alts[0]
		p.alts = append(p.alts[1:], p.pathID)
		p.pathID = next
	}
	c.mu.Unlock()
	for {
		c.mu.Lock()
		id, host, opts := p.pathID, p.hostnqn, p.opts
		p.state = "resetting"
		c.mu.Unlock()
		conn, err := s.dial(id, host, opts)
		signal()
		if err == nil && delay > 0 && !sleepPath(c, p, delay) {
			// The connect reached the target (it took a controller id)
			// before the reset completed; the path went away meanwhile.
			_ = conn.Close()
			return
		}
		delay = 0
		if err == nil {
			s.mu.Lock()
			c.mu.Lock()
			alive := s.ctrlr(c.name) == c && slices.Contains(c.paths, p)
			if alive {
				p.conn, p.info, p.state = conn, conn.Info(), "enabled"
			}
			c.mu.Unlock()
			if !alive {
				s.mu.Unlock()
				_ = conn.Close()
				return
			}
			s.watchPath(c, p, conn)
			s.mu.Unlock()
			return
		}
		rejected := errors.Is(err, fabric.ErrNotAllowed) || errors.Is(err, fabric.ErrNoSubsystem)
		if opts.delaySec == 0 {
			if rejected && !sleepPath(c, p, rejectedResetTime) {
				return
			}
			c.mu.Lock()
			p.state = "failed"
			c.mu.Unlock()
			wait := refusedRetryInterval
			if rejected {
				wait = defaultRetryInterval
			}
			if !sleepPath(c, p, wait) {
				return
			}
			continue
		}
		if opts.lossSec > 0 && time.Since(start) >= time.Duration(opts.lossSec)*time.Second {
			s.mu.Lock()
			if s.ctrlr(c.name) == c {
				s.removePath(c, p)
			}
			s.mu.Unlock()
			return
		}
		c.mu.Lock()
		p.state = "reconnect_is_delayed"
		if len(p.alts) > 0 {
			next := p.alts[0]
			p.alts = append(p.alts[1:], p.pathID)
			p.pathID = next
		}
		c.mu.Unlock()
		if !sleepPath(c, p, time.Duration(opts.delaySec)*time.Second) {
			return
		}
	}
}

// nvmeNamespacesChanged is bdev_nvme's answer to a Namespace Attribute
// Changed event (aer_cb, nvme_ctrlr_populate_namespaces): a namespace whose
// size changed resizes its bdev (spdk_bdev_notify_blockcnt_change), which
// the NVMe-oF target exporting that bdev passes on to its own hosts; a new
// namespace gets its bdev; a namespace no path reports any more loses its
// bdev.
func (s *state) nvmeNamespacesChanged(c *nvmeCtrlr, conn *fabric.Conn) {
	info := conn.Info()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctrlr(c.name) != c {
		return
	}
	for nsid, b := range c.bdevs {
		ni, ok := info.Namespace(nsid)
		if !ok || ni.NumBlocks == b.numBlocks || ni.BlockSize != b.blockSize {
			continue
		}
		b.numBlocks = ni.NumBlocks
		if md, ok := b.dev.(*multipathDevice); ok {
			md.n.Store(ni.NumBlocks)
		}
		s.bdevResized(b)
	}
	for _, ns := range info.Namespaces {
		if _, ok := c.bdevs[ns.NSID]; ok {
			continue
		}
		b := s.nvmeBdev(c, ns)
		if rerr := s.registerBdev(b); rerr != nil {
			s.in.log.Warn("nvme bdev name clash", "bdev", b.name, "uuid", b.uuid)
			continue
		}
		c.bdevs[ns.NSID] = b
	}
	for nsid, b := range c.bdevs {
		if !c.anyPathHas(nsid) {
			delete(c.bdevs, nsid)
			s.unregisterBdev(b)
		}
	}
}

// anyPathHas reports whether some path of c reports namespace nsid.
func (c *nvmeCtrlr) anyPathHas(nsid uint32) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.paths {
		info := p.info
		if p.conn != nil {
			info = p.conn.Info()
		}
		if _, ok := info.Namespace(nsid); ok || p.local != nil {
			return true
		}
	}
	return false
}

// nvmeNamespaceGone removes the bdev of a namespace the target dropped.
func (s *state) nvmeNamespaceGone(c *nvmeCtrlr, nsid uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctrlr(c.name) != c {
		return
	}
	if b, ok := c.bdevs[nsid]; ok {
		delete(c.bdevs, nsid)
		s.unregisterBdev(b)
	}
}

// removePath deletes one controller (path) of c, and c with it when it was
// the last (caller holds s.mu).
func (s *state) removePath(c *nvmeCtrlr, p *nvmePath) {
	c.mu.Lock()
	kept := slices.DeleteFunc(slices.Clone(c.paths), func(x *nvmePath) bool { return x == p })
	if len(kept) > 0 {
		c.paths = kept
	}
	c.mu.Unlock()
	p.close()
	if len(kept) == 0 {
		s.removeCtrlr(c)
		return
	}
	for nsid, b := range c.bdevs {
		still := false
		for _, x := range kept {
			if _, ok := x.info.Namespace(nsid); ok {
				still = true
			}
		}
		if !still {
			delete(c.bdevs, nsid)
			s.unregisterBdev(b)
		}
	}
}

// removeCtrlr deletes c and its bdevs (caller holds s.mu).
func (s *state) removeCtrlr(c *nvmeCtrlr) {
	if i := slices.Index(s.ctrlrs, c); i >= 0 {
		s.ctrlrs = slices.Delete(s.ctrlrs, i, i+1)
	}
	if s.ctrlrByName[c.name] == c {
		delete(s.ctrlrByName, c.name)
	}
	for _, b := range c.bdevs {
		s.unregisterBdev(b)
	}
	hubUnregister(c)
	c.closeAll()
}

// detachPath is struct nvme_path_id as bdev_nvme_detach_controller fills
// it: empty fields match anything (nvme_path_id_compare).
type detachPath struct {
	trtype, traddr, adrfam, trsvcid, subnqn, hostaddr, hostsvcid string
}

func (d detachPath) match(p *nvmePath, id pathID) bool {
	return (d.trtype == "" || d.trtype == id.trid.TrType) &&
		(d.traddr == "" || strings.EqualFold(d.traddr, id.trid.TrAddr)) &&
		(d.adrfam == "" || d.adrfam == id.trid.AdrFam) &&
		(d.trsvcid == "" || strings.EqualFold(d.trsvcid, id.trid.TrSvcID)) &&
		(d.subnqn == "" || d.subnqn == id.subnqn) &&
		(d.hostaddr == "" || d.hostaddr == p.hostaddr) &&
		(d.hostsvcid == "" || d.hostsvcid == p.hostsvcid)
}

func nvmeDetach(s *state, params json.RawMessage) (any, *Error) {
	var p struct {
		Name      string  `json:"name"`
		TrType    *string `json:"trtype"`
		TrAddr    string  `json:"traddr"`
		AdrFam    *string `json:"adrfam"`
		TrSvcID   string  `json:"trsvcid"`
		SubNQN    string  `json:"subnqn"`
		HostAddr  string  `json:"hostaddr"`
		HostSvcID string  `json:"hostsvcid"`
	}
	if err := decodeParams(params, &p, "name"); err != nil {
		return nil, err
	}
	d := detachPath{traddr: p.TrAddr, trsvcid: p.TrSvcID, subnqn: p.SubNQN, hostaddr: p.HostAddr, hostsvcid: p.HostSvcID}
	if p.TrType != nil {
		if len(*p.TrType) >= trstringSize {
			return nil, rpcErr(-22, "Failed to parse trtype: "+*p.TrType)
		}
		d.trtype = trtypeName(*p.TrType)
	}
	if len(p.TrAddr) >= traddrSize {
		return nil, tooLong("traddr", p.TrAddr)
	}
	if p.AdrFam != nil {
		f, ok := parseAdrFam(*p.AdrFam)
		if !ok {
			return nil, rpcErr(-22, "Failed to parse adrfam: "+*p.AdrFam)
		}
		d.adrfam = f
	}
	if len(p.TrSvcID) >= trsvcidSize {
		return nil, tooLong("trsvcid", p.TrSvcID)
	}
	if len(p.SubNQN) >= nqnSize {
		return nil, tooLong("subnqn", p.SubNQN)
	}
	if len(p.HostAddr) >= traddrSize {
		return nil, tooLong("hostaddr", p.HostAddr)
	}
	if len(p.HostSvcID) >= trsvcidSize {
		return nil, tooLong("hostsvcid", p.HostSvcID)
	}
	c := s.ctrlr(p.Name)
	if c == nil {
		return nil, errNoDevice
	}
	found := false
	var failovers []chan struct{}
	for _, x := range slices.Clone(c.paths) {
		// _bdev_nvme_delete: alternates first, then the active path.
		c.mu.Lock()
		kept := x.alts[:0:0]
		for _, a := range x.alts {
			if d.match(x, a) {
				found = true
				continue
			}
			kept = append(kept, a)
		}
		x.alts = kept
		active := d.match(x, x.pathID)
		c.mu.Unlock()
		if !active {
			continue
		}
		found = true
		if len(x.alts) == 0 {
			s.removePath(c, x)
			if s.ctrlr(p.Name) != c {
				break
			}
			continue
		}
		// Fail over to the next alternate, dropping the active path.
		// The old connection's watcher sees it is no longer the path's.
		c.mu.Lock()
		old := x.conn
		x.conn = nil
		x.pathID, x.alts = x.alts[0], x.alts[1:]
		x.state = "resetting"
		c.mu.Unlock()
		if old != nil {
			_ = old.Close()
		}
		// SPDK's reset reaches the next path's target (taking a
		// controller id there) long before the next RPC: so does the
		// fake's, whatever the load.
		dialed := make(chan struct{})
		s.goRecover(c, x, nil, failoverResetTime, dialed)
		failovers = append(failovers, dialed)
	}
	// Without the state lock: a target in this instance answers the
	// CONNECT under it (bounded, then the reset goes on alone).
	for _, d := range failovers {
		s.mu.Unlock()
		select {
		case <-d:
		case <-time.After(5 * time.Second):
		}
		s.mu.Lock()
	}
	if !found {
		return nil, rpcErr(-6, "No such device or address")
	}
	return true, nil
}

type ctrlrHost struct {
	NQN   string `json:"nqn"`
	Addr  string `json:"addr"`
	SvcID string `json:"svcid"`
}

// ctrlrTrid is a transport ID as SPDK prints it: empty fields are left out
// (a PCIe trid has only trtype and traddr).
type ctrlrTrid struct {
	TrType  string `json:"trtype"`
	AdrFam  string `json:"adrfam,omitempty"`
	TrAddr  string `json:"traddr,omitempty"`
	TrSvcID string `json:"trsvcid,omitempty"`
	SubNQN  string `json:"subnqn,omitempty"`
}

// appendJSON appends t as encoding/json writes it: the trid of every path
// of every NVMe bdev a node lists went through its reflection.
func (t ctrlrTrid) appendJSON(b []byte) ([]byte, error) {
	b = appendStr(append(b, `{"trtype":`...), t.TrType)
	for _, f := range [...]struct{ k, v string }{
		{`,"adrfam":`, t.AdrFam}, {`,"traddr":`, t.TrAddr}, {`,"trsvcid":`, t.TrSvcID}, {`,"subnqn":`, t.SubNQN},
	} {
		if f.v != "" {
			b = appendStr(append(b, f.k...), f.v)
		}
	}
	return append(b, '}'), nil
}

type ctrlrPathJSON struct {
	State          string      `json:"state"`
	Trid           ctrlrTrid   `json:"trid"`
	AlternateTrids []ctrlrTrid `json:"alternate_trids,omitempty"`
	CntlID         uint16      `json:"cntlid"`
	Host           ctrlrHost   `json:"host"`
}

type nvmeCtrlrJSON struct {
	Name   string          `json:"name"`
	Ctrlrs []ctrlrPathJSON `json:"ctrlrs"`
}

func nvmeGetControllers(s *state, params json.RawMessage) (any, *Error) {
	var p struct {
		Name string `json:"name"`
	}
	if err := decodeParams(params, &p); err != nil {
		return nil, err
	}
	out := []nvmeCtrlrJSON{}
	for _, c := range s.ctrlrs {
		if p.Name != "" && c.name != p.Name {
			continue
		}
		j := nvmeCtrlrJSON{Name: c.name, Ctrlrs: []ctrlrPathJSON{}}
		c.mu.Lock()
		for _, x := range c.paths {
			e := ctrlrPathJSON{State: x.state, Trid: x.json(), CntlID: x.info.CntlID,
				Host: ctrlrHost{NQN: x.hostnqn, Addr: x.hostaddr, SvcID: x.hostsvcid}}
			for _, a := range x.alts {
				e.AlternateTrids = append(e.AlternateTrids, a.json())
			}
			j.Ctrlrs = append(j.Ctrlrs, e)
		}
		c.mu.Unlock()
		out = append(out, j)
	}
	if p.Name != "" && len(out) == 0 {
		return nil, rpcErr(22, "Controller "+p.Name+" does not exist")
	}
	return out, nil
}

// nvmeGetIOPaths reports no poll groups: the fake has no I/O channels, as
// real SPDK before any I/O.
func nvmeGetIOPaths(_ *state, params json.RawMessage) (any, *Error) {
	var p struct {
		Name string `json:"name"`
	}
	if err := decodeParams(params, &p); err != nil {
		return nil, rpcErr(codeInvalidParams, "bdev_nvme_get_io_paths requires no parameters")
	}
	return obj{{"poll_groups", []any{}}}, nil
}

// nvmeSetMultipathPolicy is bdev_nvme_set_multipath_policy.
func nvmeSetMultipathPolicy(s *state, params json.RawMessage) (any, *Error) {
	var p struct {
		Name     string  `json:"name"`
		Policy   string  `json:"policy"`
		Selector *string `json:"selector"`
		RRMinIO  *uint32 `json:"rr_min_io"`
	}
	if err := decodeParams(params, &p, "name", "policy"); err != nil {
		return nil, err
	}
	if p.Policy != "active_passive" && p.Policy != "active_active" {
		return nil, errDecode
	}
	if p.Selector != nil && *p.Selector != "round_robin" && *p.Selector != "queue_depth" {
		return nil, errDecode
	}
	if p.Policy != "active_active" && p.Selector != nil {
		return nil, errDecode // "selector only works in active_active mode"
	}
	if p.Policy == "active_active" && p.Selector != nil && *p.Selector == "round_robin" {
		if p.RRMinIO != nil && *p.RRMinIO == 0 {
			return nil, rpcErr(-22, "Invalid argument")
		}
	} else if p.RRMinIO != nil && *p.RRMinIO != 0xffffffff {
		return nil, rpcErr(-22, "Invalid argument")
	}
	b := s.byName[p.Name]
	if b == nil {
		return nil, errNoDevice
	}
	for _, c := range s.ctrlrs {
		for nsid, nb := range c.bdevs {
			if nb == b {
				c.mu.Lock()
				if c.policy == nil {
					c.policy = map[uint32]string{}
				}
				c.policy[nsid] = p.Policy
				c.mu.Unlock()
				return true, nil
			}
		}
	}
	return nil, errNoDevice
}

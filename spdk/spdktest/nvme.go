package spdktest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/vda-io/vda/spdk/spdktest/blockdev"
	"github.com/vda-io/vda/spdk/spdktest/fabric"
	"slices"
	"strings"
	"sync"
	"time"
)

func init() {
	register("bdev_nvme_set_options", phaseBoth, bdevNvmeSetOptions)
	registerUnlocked("bdev_nvme_attach_controller", phaseRuntime, nvmeAttach)
	register("bdev_nvme_detach_controller", phaseRuntime, nvmeDetach)
	register("bdev_nvme_get_controllers", phaseRuntime, nvmeGetControllers)
	register("bdev_nvme_get_io_paths", phaseRuntime, nvmeGetIOPaths)
}

// dialTimeout bounds one NVMe-oF connect attempt.
const dialTimeout = 5 * time.Second

type nvmeOptions struct {
	ctrlrLossTimeoutSec int32
	reconnectDelaySec   uint32
}

// nvmePath is one connection (one "ctrlrs" entry) of an NVMe controller.
type nvmePath struct {
	trid    fabric.TransportID // as printed: TCP / IPv4
	subnqn  string
	hostnqn string
	conn    *fabric.Conn // nil for a local PCIe device
	info    fabric.ControllerInfo
	state   string     // enabled, failed, resetting
	local   *localNVMe // the device of a PCIe path
}

// nvmeCtrlr is a bdev_nvme controller: a name, its paths and its bdevs.
type nvmeCtrlr struct {
	// mu guards paths and their state/conn for the data path, which must
	// not take the state lock (I/O runs while handlers hold it).
	mu        sync.Mutex
	name      string
	paths     []*nvmePath
	bdevs     map[uint32]*bdev
	lossSec   int32
	delaySec  uint32
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
		if p.conn != nil {
			_ = p.conn.Close()
		}
	}
}

func bdevNvmeSetOptions(s *state, params json.RawMessage) (any, *Error) {
	var p struct {
		ActionOnTimeout      string `json:"action_on_timeout"`
		TimeoutUs            uint64 `json:"timeout_us"`
		TimeoutAdminUs       uint64 `json:"timeout_admin_us"`
		KeepAliveTimeoutMs   uint32 `json:"keep_alive_timeout_ms"`
		RetryCount           uint32 `json:"retry_count"`
		TransportRetryCount  uint32 `json:"transport_retry_count"`
		ArbitrationBurst     uint32 `json:"arbitration_burst"`
		LowPriorityWeight    uint32 `json:"low_priority_weight"`
		MediumPriorityWeight uint32 `json:"medium_priority_weight"`
		HighPriorityWeight   uint32 `json:"high_priority_weight"`
		AdminqPollPeriodUs   uint64 `json:"nvme_adminq_poll_period_us"`
		IOQPollPeriodUs      uint64 `json:"nvme_ioq_poll_period_us"`
		IOQueueRequests      uint32 `json:"io_queue_requests"`
		DelayCmdSubmit       bool   `json:"delay_cmd_submit"`
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
		RdmaCmEventTimeoutMs uint16 `json:"rdma_cm_event_timeout_ms"`
		DhchapDigests        []any  `json:"dhchap_digests"`
		DhchapDhgroups       []any  `json:"dhchap_dhgroups"`
	}
	if err := decodeParams(params, &p); err != nil {
		return nil, err
	}
	if len(s.ctrlrs) > 0 {
		return nil, rpcErr(-1, "Operation not permitted")
	}
	s.nvmeOptions = nvmeOptions{ctrlrLossTimeoutSec: p.CtrlrLossTimeoutSec, reconnectDelaySec: p.ReconnectDelaySec}
	return true, nil
}

type attachParams struct {
	Name                    string  `json:"name"`
	TrType                  string  `json:"trtype"`
	TrAddr                  string  `json:"traddr"`
	AdrFam                  string  `json:"adrfam"`
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
	Multipath               string  `json:"multipath"`
	NumIOQueues             uint32  `json:"num_io_queues"`
	CtrlrLossTimeoutSec     *int32  `json:"ctrlr_loss_timeout_sec"`
	ReconnectDelaySec       *uint32 `json:"reconnect_delay_sec"`
	FastIOFailTimeoutSec    uint32  `json:"fast_io_fail_timeout_sec"`
	PSK                     string  `json:"psk"`
	MaxBdevs                uint32  `json:"max_bdevs"`
	DhchapKey               string  `json:"dhchap_key"`
	DhchapCtrlrKey          string  `json:"dhchap_ctrlr_key"`
}

func (s *state) ctrlr(name string) *nvmeCtrlr { return s.ctrlrByName[name] }

// pathKey names one path: SPDK allows a transport ID and subsystem NQN in
// one controller only.
type pathKey struct {
	trid   fabric.TransportID
	subnqn string
}

// addCtrlr registers c and its paths (caller holds s.mu).
func (s *state) addCtrlr(c *nvmeCtrlr) {
	s.ctrlrs = append(s.ctrlrs, c)
	s.ctrlrByName[c.name] = c
	for _, p := range c.paths {
		s.pathOwner[pathKey{p.trid, p.subnqn}] = c
	}
}

// addPath adds p to c (caller holds s.mu).
func (s *state) addPath(c *nvmeCtrlr, p *nvmePath) {
	c.mu.Lock()
	c.paths = append(c.paths, p)
	c.mu.Unlock()
	s.pathOwner[pathKey{p.trid, p.subnqn}] = c
}

// setPaths replaces c's paths by kept, a subset (caller holds s.mu).
func (s *state) setPaths(c *nvmeCtrlr, kept []*nvmePath) {
	for _, p := range c.paths {
		if !slices.Contains(kept, p) {
			delete(s.pathOwner, pathKey{p.trid, p.subnqn})
		}
	}
	c.mu.Lock()
	c.paths = kept
	c.mu.Unlock()
}

// nvmeAttach is bdev_nvme_attach_controller. The name and path checks answer
// at once; the connect is asynchronous (SPDK replies when the controller is
// up) and runs without holding the state lock, so a target may even attach
// to its own export.
func nvmeAttach(s *state, params json.RawMessage) (any, *Error) {
	var p attachParams
	if err := decodeParams(params, &p, "name", "trtype", "traddr"); err != nil {
		return nil, err
	}
	switch p.Multipath {
	case "", "failover", "multipath", "disable":
	default:
		return nil, errDecode // bdev_nvme_decode_multipath refuses it
	}
	if p.HostNQN == "" {
		p.HostNQN = s.hostNQN
	}
	if strings.EqualFold(p.TrType, "pcie") {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.attachPCIe(&p)
	}
	if !strings.EqualFold(p.TrType, "tcp") {
		return nil, errNoDevice
	}
	trid := normTrid(p.TrType, p.AdrFam, p.TrAddr, p.TrSvcID)
	s.mu.Lock()
	rerr := s.attachPrecheck(&p, trid)
	s.mu.Unlock()
	if rerr != nil {
		return nil, rerr
	}
	return async(func() (any, *Error) { return s.attachTCP(&p, trid) }), nil
}

// attachTCP connects one path of an attach and adds it.
func (s *state) attachTCP(p *attachParams, trid fabric.TransportID) (any, *Error) {
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	go func() {
		select {
		case <-s.in.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	conn, err := fabric.Dial(ctx, wireTrid(trid), p.SubNQN, p.HostNQN)
	cancel()
	if err != nil {
		// The target answered the CONNECT with a failure status (host not
		// allowed, no such subsystem, no free cntlid): SPDK answers -32602.
		if errors.Is(err, fabric.ErrNotAllowed) || errors.Is(err, fabric.ErrNoSubsystem) || errors.Is(err, fabric.ErrRejected) {
			return nil, errInvalParams
		}
		return nil, errNoDevice
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if rerr := s.attachPrecheck(p, trid); rerr != nil {
		_ = conn.Close()
		return nil, rerr
	}
	return s.attachPath(p, trid, conn)
}

// attachPrecheck applies the name/path rules before and after connecting.
func (s *state) attachPrecheck(p *attachParams, trid fabric.TransportID) *Error {
	select {
	case <-s.in.done:
		return errNoDevice
	default:
	}
	if c := s.ctrlr(p.Name); c != nil {
		return sameNameChecks(c, p, trid)
	}
	if s.pathOwner[pathKey{trid, p.SubNQN}] != nil {
		return errExists
	}
	return nil
}

func (s *state) attachPath(p *attachParams, trid fabric.TransportID, conn *fabric.Conn) (any, *Error) {
	info := conn.Info()
	path := &nvmePath{trid: trid, subnqn: p.SubNQN, hostnqn: p.HostNQN, conn: conn, info: info, state: "enabled"}
	c := s.ctrlr(p.Name)
	if c != nil {
		for _, x := range c.paths {
			if x.info.CntlID == info.CntlID {
				_ = conn.Close()
				return nil, errInvalParams // "cntlid N are duplicated"
			}
		}
		s.addPath(c, path)
		hubRegister(wireTrid(trid), p.SubNQN, c, func(nsid uint32) { s.nvmeNamespaceGone(c, nsid) })
		s.watchPath(c, path)
		names := []string{}
		for _, ns := range info.Namespaces {
			if b, ok := c.bdevs[ns.NSID]; ok {
				names = append(names, b.name)
			}
		}
		return names, nil
	}
	c = &nvmeCtrlr{
		name: p.Name, bdevs: map[uint32]*bdev{}, stop: make(chan struct{}),
		lossSec: s.nvmeOptions.ctrlrLossTimeoutSec, delaySec: s.nvmeOptions.reconnectDelaySec,
	}
	if p.CtrlrLossTimeoutSec != nil {
		c.lossSec = *p.CtrlrLossTimeoutSec
	}
	if p.ReconnectDelaySec != nil {
		c.delaySec = *p.ReconnectDelaySec
	}
	c.paths = []*nvmePath{path}
	s.addCtrlr(c)
	hubRegister(wireTrid(trid), p.SubNQN, c, func(nsid uint32) { s.nvmeNamespaceGone(c, nsid) })
	names := []string{}
	for _, ns := range info.Namespaces {
		b := s.nvmeBdev(c, ns)
		if rerr := s.registerBdev(b); rerr != nil {
			s.in.log.Warn("nvme bdev name clash", "bdev", b.name, "uuid", b.uuid)
			continue
		}
		c.bdevs[ns.NSID] = b
		names = append(names, b.name)
	}
	s.watchPath(c, path)
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
	b.dev = &multipathDevice{s: s, c: c, nsid: nsid, bs: ns.BlockSize, n: ns.NumBlocks}
	b.driver = func() any { return nvmeDriver(c, nsid) }
	return b
}

func nvmeDriver(c *nvmeCtrlr, nsid uint32) obj {
	paths := []obj{}
	for _, p := range c.paths {
		trid := ctrlrTrid{TrType: p.trid.TrType, AdrFam: p.trid.AdrFam, TrAddr: p.trid.TrAddr, TrSvcID: p.trid.TrSvcID, SubNQN: p.subnqn}
		o := obj{}
		if p.local != nil {
			o = append(o, kv{"pci_address", p.trid.TrAddr})
		}
		o = append(o,
			kv{"trid", trid},
			kv{"ctrlr_data", obj{
				{"cntlid", p.info.CntlID}, {"vendor_id", "0x8086"}, {"model_number", p.info.ModelNumber},
				{"serial_number", p.info.SerialNumber}, {"firmware_revision", "24.01"}, {"subnqn", p.info.SubNQN},
				{"oacs", obj{{"security", 0}, {"format", 0}, {"firmware", 0}, {"ns_manage", 0}}},
				{"multi_ctrlr", p.local == nil}, {"ana_reporting", p.info.ANAReporting},
			}},
			kv{"vs", obj{{"nvme_version", "1.3"}}},
			kv{"ns_data", obj{{"id", nsid}, {"can_share", p.local == nil}}},
		)
		paths = append(paths, o)
	}
	return obj{{"nvme", paths}, {"mp_policy", "active_passive"}}
}

// multipathDevice sends I/O down the first enabled path (active/passive).
type multipathDevice struct {
	s    *state
	c    *nvmeCtrlr
	nsid uint32
	bs   uint32
	n    uint64
}

var errPathDown = errors.New("spdktest: no usable nvme path")

func (d *multipathDevice) BlockSize() uint32 { return d.bs }
func (d *multipathDevice) NumBlocks() uint64 { return d.n }

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

// watchPath marks a path failed when its connection drops and, when the
// controller has a loss timeout, reconnects every reconnect delay until the
// timeout expires, then deletes the controller.
func (s *state) watchPath(c *nvmeCtrlr, p *nvmePath) {
	conn := p.conn
	c.wg.Add(1)
	s.in.wg.Add(1)
	go func() {
		defer s.in.wg.Done()
		defer c.wg.Done()
		select {
		case <-conn.Done():
		case <-c.stop:
			return
		}
		s.mu.Lock()
		c.mu.Lock()
		if p.conn == conn {
			p.state = "failed"
			if c.lossSec != 0 && c.delaySec > 0 {
				p.state = "resetting"
			}
		}
		c.mu.Unlock()
		s.mu.Unlock()
		if c.lossSec != 0 && c.delaySec > 0 {
			s.reconnect(c, p)
		}
	}()
}

func (s *state) reconnect(c *nvmeCtrlr, p *nvmePath) {
	var deadline <-chan time.Time
	if c.lossSec > 0 {
		tm := time.NewTimer(time.Duration(c.lossSec) * time.Second)
		defer tm.Stop()
		deadline = tm.C
	}
	tick := time.NewTicker(time.Duration(c.delaySec) * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-deadline:
			s.mu.Lock()
			if s.ctrlr(c.name) == c {
				s.removeCtrlr(c)
			}
			s.mu.Unlock()
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
		conn, err := fabric.Dial(ctx, wireTrid(p.trid), p.subnqn, p.hostnqn)
		cancel()
		if err != nil {
			continue
		}
		s.mu.Lock()
		if s.ctrlr(c.name) != c {
			s.mu.Unlock()
			_ = conn.Close()
			return
		}
		c.mu.Lock()
		p.conn, p.info, p.state = conn, conn.Info(), "enabled"
		c.mu.Unlock()
		s.watchPath(c, p)
		s.mu.Unlock()
		return
	}
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

// removeCtrlr deletes c and its bdevs (caller holds s.mu).
func (s *state) removeCtrlr(c *nvmeCtrlr) {
	if i := slices.Index(s.ctrlrs, c); i >= 0 {
		s.ctrlrs = slices.Delete(s.ctrlrs, i, i+1)
	}
	if s.ctrlrByName[c.name] == c {
		delete(s.ctrlrByName, c.name)
	}
	for _, p := range c.paths {
		if s.pathOwner[pathKey{p.trid, p.subnqn}] == c {
			delete(s.pathOwner, pathKey{p.trid, p.subnqn})
		}
	}
	for _, b := range c.bdevs {
		s.unregisterBdev(b)
	}
	hubUnregister(c)
	c.closeAll()
}

func nvmeDetach(s *state, params json.RawMessage) (any, *Error) {
	var p struct {
		Name      string `json:"name"`
		TrType    string `json:"trtype"`
		TrAddr    string `json:"traddr"`
		AdrFam    string `json:"adrfam"`
		TrSvcID   string `json:"trsvcid"`
		SubNQN    string `json:"subnqn"`
		HostAddr  string `json:"hostaddr"`
		HostSvcID string `json:"hostsvcid"`
	}
	if err := decodeParams(params, &p, "name"); err != nil {
		return nil, err
	}
	c := s.ctrlr(p.Name)
	if c == nil {
		return nil, errNoDevice
	}
	if p.TrAddr == "" && p.TrSvcID == "" && p.SubNQN == "" {
		s.removeCtrlr(c)
		return true, nil
	}
	kept := c.paths[:0:0]
	for _, x := range c.paths {
		match := (p.TrAddr == "" || x.trid.TrAddr == p.TrAddr) && (p.TrSvcID == "" || x.trid.TrSvcID == p.TrSvcID) &&
			(p.SubNQN == "" || x.subnqn == p.SubNQN)
		if match {
			if x.conn != nil {
				_ = x.conn.Close()
			}
			continue
		}
		kept = append(kept, x)
	}
	if len(kept) == len(c.paths) {
		return nil, errNoDevice
	}
	s.setPaths(c, kept)
	if len(kept) == 0 {
		s.removeCtrlr(c)
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

type ctrlrPathJSON struct {
	State  string    `json:"state"`
	Trid   ctrlrTrid `json:"trid"`
	CntlID uint16    `json:"cntlid"`
	Host   ctrlrHost `json:"host"`
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
		for _, x := range c.paths {
			j.Ctrlrs = append(j.Ctrlrs, ctrlrPathJSON{
				State:  x.state,
				Trid:   ctrlrTrid{TrType: x.trid.TrType, AdrFam: x.trid.AdrFam, TrAddr: x.trid.TrAddr, TrSvcID: x.trid.TrSvcID, SubNQN: x.subnqn},
				CntlID: x.info.CntlID,
				Host:   ctrlrHost{NQN: x.hostnqn},
			})
		}
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
		return nil, err
	}
	return obj{{"poll_groups", []any{}}}, nil
}

package nvmetcp

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
	"net"
	"sync"
	"testing"
)

// testDisk is namespace 1's storage, shared by every target (path) of a
// subsystem.
type testDisk struct {
	mu        sync.Mutex
	blockSize uint32
	data      []byte
	uuid      UUID
}

func newTestDisk(blockSize uint32, blocks int) *testDisk {
	return &testDisk{blockSize: blockSize, data: make([]byte, int(blockSize)*blocks),
		uuid: UUID{0x6b, 0x2d, 0x0f, 0x31, 0x7a, 0x11, 0x4c, 0x4e, 0x9a, 0x3e, 0x1f, 0x60, 0x5c, 0x11, 0x22, 0x33}}
}

func (d *testDisk) blocks() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return uint64(len(d.data)) / uint64(d.blockSize)
}

func (d *testDisk) snapshot(off, n int) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]byte(nil), d.data[off:off+n]...)
}

// testTarget is a scripted NVMe/TCP controller of one subsystem with
// namespace 1 on a testDisk. The zero values of its knobs behave like
// SPDK's defaults: 4 KiB in-capsule data, MAXH2CDATA 128 KiB, MDTS 128 KiB,
// C2H data in one PDU with the SUCCESS flag.
type testTarget struct {
	subNQN     string
	hosts      []string // allowed host NQNs; empty: any
	disk       *testDisk
	mdts       uint8  // 2^mdts pages per command; 0 means 5 (128 KiB)
	ioccsz     uint32 // 16-byte units; 0 means 260 (4 KiB of data)
	maxH2C     uint32 // 0 means 128 KiB
	cpda       uint8
	c2hChunk   int    // C2H data in PDUs of at most this many bytes (0: one)
	r2tChunk   uint32 // R2Ts of at most this many bytes (0: maxH2C)
	noSuccess  bool   // never use the C2H SUCCESS flag
	writeChunk int    // write everything to the host in pieces this small (0: whole PDUs)
	ana        bool   // report ANA
	cntlidBase uint16
	// hook sees every command first; it returns true when it handled it.
	hook func(tc *tconn, c *tcmd) bool

	mu         sync.Mutex
	anaState   ANAState
	nextCntlid uint16
	ctrls      map[uint16]*tctrl
	conns      map[*tconn]bool
	keepAlives int
	ops        []string // "qid:op" of every command received
	refuse     error    // dial error while set
	wg         sync.WaitGroup
	// Per connection (in the order they were opened): what the target sent
	// after each PDU it received, when record is set (fuzz seeds).
	record     bool
	recordings [][][]byte
}

type tctrl struct {
	cntlid    uint16
	cc, csts  uint32
	admin     *tconn
	aers      []uint16 // outstanding AER command IDs
	pending   bool     // an ANA change waits for the next AER (as SPDK queues it)
	nsPending bool     // a namespace attribute notice waits for the next AER
}

// tconn is one queue (connection) of the target.
type tconn struct {
	t       *testTarget
	conn    net.Conn
	br      *bufio.Reader
	wl      chan struct{}
	qid     uint16
	ctrl    *tctrl
	pending map[uint16]*twrite
	ttag    uint16
	rec     int // index in recordings
}

// tcmd is a received command.
type tcmd struct {
	sqe  command
	data []byte // in-capsule data
	cid  uint16
	opc  uint8
	nsid uint32
}

func (c *tcmd) cdw(i int) uint32 { return binary.LittleEndian.Uint32(c.sqe[i*4:]) }
func (c *tcmd) sglLen() uint32   { return binary.LittleEndian.Uint32(c.sqe[32:]) }

type twrite struct {
	c        *tcmd
	buf      []byte
	got, end uint32
	ttag     uint16
}

func newTestTarget(subNQN string, disk *testDisk) *testTarget {
	return &testTarget{subNQN: subNQN, disk: disk, anaState: ANAOptimized, ctrls: map[uint16]*tctrl{},
		conns: map[*tconn]bool{}}
}

// dial connects the host to the target over net.Pipe (usable inside a
// synctest bubble).
func (t *testTarget) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	t.mu.Lock()
	refuse := t.refuse
	t.mu.Unlock()
	if refuse != nil {
		return nil, refuse
	}
	a, b := net.Pipe()
	t.start(b)
	return a, nil
}

// listen serves the target on a loopback TCP listener until the test ends.
func (t *testTarget) listen(tb testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.start(c)
		}
	}()
	tb.Cleanup(func() { _ = ln.Close(); <-done; t.shutdown() })
	return ln.Addr().String()
}

func (t *testTarget) start(c net.Conn) {
	tc := &tconn{t: t, conn: c, br: bufio.NewReader(c), wl: make(chan struct{}, 1), pending: map[uint16]*twrite{}}
	t.mu.Lock()
	t.conns[tc] = true
	tc.rec = len(t.recordings)
	t.recordings = append(t.recordings, nil)
	t.mu.Unlock()
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		tc.serve()
		_ = c.Close()
		t.mu.Lock()
		delete(t.conns, tc)
		t.mu.Unlock()
	}()
}

// shutdown closes every connection and waits for them.
func (t *testTarget) shutdown() {
	t.dropAll()
	t.wg.Wait()
}

// dropAll closes every connection (the target vanished).
func (t *testTarget) dropAll() {
	t.mu.Lock()
	for tc := range t.conns {
		_ = tc.conn.Close()
	}
	t.mu.Unlock()
}

func (t *testTarget) setRefuse(err error) {
	t.mu.Lock()
	t.refuse = err
	t.mu.Unlock()
}

func (t *testTarget) opsSeen() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.ops...)
}

func (t *testTarget) keepAliveCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.keepAlives
}

// anaChangeEvent is the AER completion of an ANA change notice.
const anaChangeEvent = 0x2 | 0x03<<8 | uint32(logANA)<<16

// setANA changes the ANA state and completes an outstanding AER of every
// controller with an ANA change notice (when notify).
func (t *testTarget) setANA(s ANAState, notify bool) {
	t.mu.Lock()
	t.anaState = s
	type aer struct {
		tc  *tconn
		cid uint16
	}
	var fire []aer
	if notify {
		for _, c := range t.ctrls {
			switch {
			case len(c.aers) > 0 && c.admin != nil:
				fire = append(fire, aer{c.admin, c.aers[0]})
				c.aers = c.aers[1:]
			default:
				c.pending = true
			}
		}
	}
	t.mu.Unlock()
	for _, a := range fire {
		_ = a.tc.respond(a.cid, 0, 0, anaChangeEvent)
	}
}

// nsChangeEvent is the AER completion of a Namespace Attribute Changed
// notice (what SPDK sends when a namespace's bdev is resized).
const nsChangeEvent = 0x2 | 0x00<<8 | uint32(logChangedNSList)<<16

// growDisk grows the disk to blocks and completes an outstanding AER of
// every controller with a namespace attribute notice (or queues it).
func (t *testTarget) growDisk(blocks int) {
	t.disk.mu.Lock()
	t.disk.data = append(t.disk.data, make([]byte, blocks*int(t.disk.blockSize)-len(t.disk.data))...)
	t.disk.mu.Unlock()
	t.mu.Lock()
	type aer struct {
		tc  *tconn
		cid uint16
	}
	var fire []aer
	for _, c := range t.ctrls {
		if len(c.aers) > 0 && c.admin != nil {
			fire = append(fire, aer{c.admin, c.aers[0]})
			c.aers = c.aers[1:]
		} else {
			c.nsPending = true
		}
	}
	t.mu.Unlock()
	for _, a := range fire {
		_ = a.tc.respond(a.cid, 0, 0, nsChangeEvent)
	}
}

// send writes one PDU (in writeChunk pieces when set).
func (tc *tconn) send(bufs ...[]byte) error {
	var b []byte
	for _, x := range bufs {
		b = append(b, x...)
	}
	tc.wl <- struct{}{}
	defer func() { <-tc.wl }()
	if tc.t.record {
		tc.t.mu.Lock()
		r := tc.t.recordings[tc.rec]
		r[len(r)-1] = append(r[len(r)-1], b...)
		tc.t.mu.Unlock()
	}
	if n := tc.t.writeChunk; n > 0 {
		for len(b) > 0 {
			k := min(n, len(b))
			if _, err := tc.conn.Write(b[:k]); err != nil {
				return err
			}
			b = b[k:]
		}
		return nil
	}
	_, err := tc.conn.Write(b)
	return err
}

// respond sends a CapsuleResp.
func (tc *tconn) respond(cid uint16, sct, sc uint8, dw0 uint32) error {
	return tc.send(respPDU(cid, sct, sc, dw0, 0))
}

func respPDU(cid uint16, sct, sc uint8, dw0, dw1 uint32) []byte {
	b := make([]byte, respLen)
	header{typ: pduCapsuleResp, hlen: respLen, plen: respLen}.put(b)
	binary.LittleEndian.PutUint32(b[8:], dw0)
	binary.LittleEndian.PutUint32(b[12:], dw1)
	binary.LittleEndian.PutUint16(b[20:], cid)
	binary.LittleEndian.PutUint16(b[22:], uint16(sc)<<1|uint16(sct)<<9)
	return b
}

func c2hPDU(cid uint16, datao uint32, data []byte, flags uint8) []byte {
	b := make([]byte, dataHdrLen)
	header{typ: pduC2HData, flags: flags, hlen: dataHdrLen, pdo: dataHdrLen, plen: dataHdrLen + uint32(len(data))}.put(b)
	binary.LittleEndian.PutUint16(b[8:], cid)
	binary.LittleEndian.PutUint32(b[12:], datao)
	binary.LittleEndian.PutUint32(b[16:], uint32(len(data)))
	return append(b, data...)
}

func r2tPDU(cid, ttag uint16, off, n uint32) []byte {
	b := make([]byte, r2tLen)
	header{typ: pduR2T, hlen: r2tLen, plen: r2tLen}.put(b)
	binary.LittleEndian.PutUint16(b[8:], cid)
	binary.LittleEndian.PutUint16(b[10:], ttag)
	binary.LittleEndian.PutUint32(b[12:], off)
	binary.LittleEndian.PutUint32(b[16:], n)
	return b
}

// sendData sends data for command cid as C2H PDUs, the last with SUCCESS
// unless disabled (then a CapsuleResp follows).
func (tc *tconn) sendData(cid uint16, data []byte) error {
	chunk := len(data)
	if tc.t.c2hChunk > 0 {
		chunk = tc.t.c2hChunk
	}
	for off := 0; off < len(data); off += chunk {
		end := min(off+chunk, len(data))
		var flags uint8
		if end == len(data) {
			flags = flagLast
			if !tc.t.noSuccess {
				flags |= flagSuccess
			}
		}
		if err := tc.send(c2hPDU(cid, uint32(off), data[off:end], flags)); err != nil {
			return err
		}
	}
	if tc.t.noSuccess || len(data) == 0 {
		return tc.respond(cid, 0, 0, 0)
	}
	return nil
}

func (t *testTarget) maxH2CData() uint32 {
	if t.maxH2C == 0 {
		return 128 << 10
	}
	return t.maxH2C
}

// serve runs the connection until it fails.
func (tc *tconn) serve() {
	b := make([]byte, icLen)
	if _, err := io.ReadFull(tc.br, b); err != nil || b[0] != pduICReq {
		return
	}
	tc.received()
	resp := make([]byte, icLen)
	header{typ: pduICResp, hlen: icLen, plen: icLen}.put(resp)
	resp[10] = tc.t.cpda
	binary.LittleEndian.PutUint32(resp[12:], tc.t.maxH2CData())
	if tc.send(resp) != nil {
		return
	}
	for {
		ch := make([]byte, chLen)
		if _, err := io.ReadFull(tc.br, ch); err != nil {
			return
		}
		h := parseHeader(ch)
		if h.plen < chLen || h.plen > 1<<24 {
			return
		}
		rest := make([]byte, h.plen-chLen)
		if _, err := io.ReadFull(tc.br, rest); err != nil {
			return
		}
		pdu := append(ch, rest...)
		tc.received()
		var err error
		switch h.typ {
		case pduCapsuleCmd:
			err = tc.onCapsule(h, pdu)
		case pduH2CData:
			err = tc.onH2C(h, pdu)
		default:
			err = fmt.Errorf("unexpected %s", pduName(h.typ))
		}
		if err != nil {
			tc.terminate(err)
			return
		}
	}
}

// received starts a new recorded chunk: what the target sends until the
// next PDU arrives.
func (tc *tconn) received() {
	tc.t.mu.Lock()
	tc.t.recordings[tc.rec] = append(tc.t.recordings[tc.rec], nil)
	tc.t.mu.Unlock()
}

// terminate sends a C2HTermReq saying what the host did wrong.
func (tc *tconn) terminate(why error) {
	msg := []byte(why.Error())
	b := make([]byte, termHdrLen)
	n := min(len(msg), termMaxLen-termHdrLen)
	header{typ: pduC2HTermReq, hlen: termHdrLen, plen: uint32(termHdrLen + n)}.put(b)
	binary.LittleEndian.PutUint16(b[8:], fesInvalidHeader)
	_ = tc.send(b, msg[:n])
}

func (tc *tconn) onCapsule(h header, pdu []byte) error {
	if h.hlen != cmdHdrLen {
		return fmt.Errorf("capsule hlen %d", h.hlen)
	}
	c := &tcmd{}
	copy(c.sqe[:], pdu[chLen:cmdHdrLen])
	c.cid = binary.LittleEndian.Uint16(c.sqe[2:])
	c.opc = c.sqe[0]
	c.nsid = binary.LittleEndian.Uint32(c.sqe[4:])
	if c.sqe[1] != psdtSGL {
		return fmt.Errorf("command flags %#x, want SGL", c.sqe[1])
	}
	sgl := c.sqe[39]
	if h.pdo != 0 {
		want := dataOffset(cmdHdrLen, tc.t.cpda)
		if int(h.pdo) != want {
			return fmt.Errorf("capsule pdo %d, want %d", h.pdo, want)
		}
		c.data = pdu[h.pdo:]
		if sgl != sglInCapsule || c.sglLen() != uint32(len(c.data)) || binary.LittleEndian.Uint64(c.sqe[24:]) != 0 {
			return fmt.Errorf("in-capsule data of %d bytes with SGL type %#x length %d", len(c.data), sgl, c.sglLen())
		}
	} else if sgl != sglTransport {
		return fmt.Errorf("SGL type %#x without in-capsule data", sgl)
	}
	tc.t.mu.Lock()
	qid := tc.qid
	if c.opc == opcFabrics && c.sqe[4] == fctConnect {
		qid = binary.LittleEndian.Uint16(c.sqe[42:])
	}
	tc.t.ops = append(tc.t.ops, fmt.Sprintf("%d:%s", qid, opName(&c.sqe, qid == 0)))
	tc.t.mu.Unlock()
	if tc.t.hook != nil && tc.t.hook(tc, c) {
		return nil
	}
	if c.opc == opcFabrics {
		return tc.fabrics(c)
	}
	if tc.ctrl == nil {
		return tc.respond(c.cid, 0, SCCommandSequenceError, 0)
	}
	if tc.qid == 0 {
		return tc.adminCmd(c)
	}
	return tc.ioCmd(c)
}

func (tc *tconn) fabrics(c *tcmd) error {
	t := tc.t
	switch c.sqe[4] {
	case fctConnect:
		if len(c.data) != 1024 {
			return fmt.Errorf("connect data of %d bytes", len(c.data))
		}
		sub := cstr(c.data[256:512])
		host := cstr(c.data[512:768])
		qid := binary.LittleEndian.Uint16(c.sqe[42:])
		if sub != t.subNQN {
			return tc.respond(c.cid, SCTCommandSpecific, SCConnectInvalidParam, 0)
		}
		if len(t.hosts) > 0 && !contains(t.hosts, host) {
			return tc.respond(c.cid, SCTCommandSpecific, SCConnectInvalidHost, 0)
		}
		t.mu.Lock()
		if qid == 0 {
			t.nextCntlid++
			tc.ctrl = &tctrl{cntlid: t.cntlidBase + t.nextCntlid, admin: tc}
			t.ctrls[tc.ctrl.cntlid] = tc.ctrl
		} else {
			tc.ctrl = t.ctrls[binary.LittleEndian.Uint16(c.data[16:])]
		}
		ctrl := tc.ctrl
		t.mu.Unlock()
		if ctrl == nil {
			return tc.respond(c.cid, SCTCommandSpecific, SCConnectInvalidParam, 0)
		}
		tc.qid = qid
		return tc.respond(c.cid, 0, 0, uint32(ctrl.cntlid))
	}
	if tc.ctrl == nil {
		return tc.respond(c.cid, 0, SCCommandSequenceError, 0)
	}
	switch c.sqe[4] {
	case fctPropertyGet:
		ofst := binary.LittleEndian.Uint32(c.sqe[44:])
		var v uint64
		switch ofst {
		case propCAP:
			v = 127 | 1<<24 | 1<<37 // MQES 127, TO 500 ms, CSS NVM
		case propVS:
			v = 0x00010400
		case propCSTS:
			v = uint64(tc.ctrl.csts)
		case propCC:
			v = uint64(tc.ctrl.cc)
		}
		return tc.send(respPDU(c.cid, 0, 0, uint32(v), uint32(v>>32)))
	case fctPropertySet:
		if binary.LittleEndian.Uint32(c.sqe[44:]) == propCC {
			tc.ctrl.cc = binary.LittleEndian.Uint32(c.sqe[48:])
			tc.ctrl.csts = tc.ctrl.cc & 1
		}
		return tc.respond(c.cid, 0, 0, 0)
	}
	return tc.respond(c.cid, 0, 0x01, 0)
}

func (tc *tconn) adminCmd(c *tcmd) error {
	t := tc.t
	switch c.opc {
	case opcIdentify:
		return tc.sendData(c.cid, t.identify(uint8(c.cdw(10)), c.nsid, tc.ctrl.cntlid)[:c.sglLen()])
	case opcGetLogPage:
		if uint8(c.cdw(10)) == logChangedNSList {
			return tc.sendData(c.cid, make([]byte, c.sglLen()))
		}
		if uint8(c.cdw(10)) != logANA {
			return tc.respond(c.cid, SCTCommandSpecific, 0x09, 0)
		}
		off := uint64(c.cdw(12)) | uint64(c.cdw(13))<<32
		n := int(c.sglLen())
		page := make([]byte, int(off)+n)
		copy(page, t.anaLog())
		return tc.sendData(c.cid, page[off:])
	case opcSetFeatures:
		return tc.respond(c.cid, 0, 0, 0)
	case opcAER:
		t.mu.Lock()
		pending, nsPending := tc.ctrl.pending, tc.ctrl.nsPending
		switch {
		case pending:
			tc.ctrl.pending = false
		case nsPending:
			tc.ctrl.nsPending = false
		default:
			tc.ctrl.aers = append(tc.ctrl.aers, c.cid)
		}
		t.mu.Unlock()
		if pending {
			return tc.respond(c.cid, 0, 0, anaChangeEvent)
		}
		if nsPending {
			return tc.respond(c.cid, 0, 0, nsChangeEvent)
		}
		return nil
	case opcKeepAlive:
		t.mu.Lock()
		t.keepAlives++
		t.mu.Unlock()
		return tc.respond(c.cid, 0, 0, 0)
	}
	return tc.respond(c.cid, 0, 0x01, 0)
}

func (t *testTarget) identify(cns uint8, nsid uint32, cntlid uint16) []byte {
	b := make([]byte, 4096)
	switch cns {
	case cnsController:
		binary.LittleEndian.PutUint16(b[0:], 0x1b96)
		copy(b[4:24], "TESTSERIAL0001      ")
		copy(b[24:64], fmt.Sprintf("%-40s", "nvmetcp test target"))
		copy(b[64:72], "1.0     ")
		mdts := t.mdts
		if mdts == 0 {
			mdts = 5
		}
		b[77] = mdts
		binary.LittleEndian.PutUint16(b[78:], cntlid)
		if t.ana {
			b[76] = 1 << 3
			b[342] = 10
			b[343] = 0x47
			binary.LittleEndian.PutUint32(b[344:], 1)
			binary.LittleEndian.PutUint32(b[348:], 1)
		}
		binary.LittleEndian.PutUint16(b[320:], 100)
		binary.LittleEndian.PutUint32(b[516:], 1)
		ioccsz := t.ioccsz
		if ioccsz == 0 {
			ioccsz = 260
		}
		binary.LittleEndian.PutUint32(b[1792:], ioccsz)
	case cnsNamespace:
		if nsid != 1 {
			return b
		}
		binary.LittleEndian.PutUint64(b[0:], t.disk.blocks())
		binary.LittleEndian.PutUint64(b[8:], t.disk.blocks())
		b[128+2] = uint8(bits.TrailingZeros32(t.disk.blockSize))
		binary.LittleEndian.PutUint32(b[92:], 1)
	case cnsActiveNSList:
		binary.LittleEndian.PutUint32(b[0:], 1)
	case cnsNSDescriptors:
		if nsid == 1 {
			b[0], b[1] = 3, 16
			copy(b[4:], t.disk.uuid[:])
		}
	}
	return b
}

func (t *testTarget) anaLog() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := make([]byte, 16+32+4)
	binary.LittleEndian.PutUint16(b[8:], 1)
	binary.LittleEndian.PutUint32(b[16:], 1) // group 1
	binary.LittleEndian.PutUint32(b[20:], 1) // one namespace
	b[16+16] = uint8(t.anaState)
	binary.LittleEndian.PutUint32(b[48:], 1)
	return b
}

func (tc *tconn) ioCmd(c *tcmd) error {
	d := tc.t.disk
	if c.nsid != 1 {
		return tc.respond(c.cid, 0, SCInvalidNamespace, 0)
	}
	if c.opc != opcRead && c.opc != opcWrite {
		return tc.respond(c.cid, 0, 0x01, 0)
	}
	tc.t.mu.Lock()
	state := tc.t.anaState
	tc.t.mu.Unlock()
	switch state { // as SPDK does
	case ANAInaccessible:
		return tc.respond(c.cid, SCTPath, SCANAInaccessible, 0)
	case ANAPersistentLoss:
		return tc.respond(c.cid, SCTPath, SCANAPersistentLoss, 0)
	case ANAChange:
		return tc.respond(c.cid, SCTPath, SCANATransition, 0)
	}
	slba := uint64(c.cdw(10)) | uint64(c.cdw(11))<<32
	nlb := uint64(c.cdw(12)&0xffff) + 1
	n := nlb * uint64(d.blockSize)
	if n != uint64(c.sglLen()) {
		return fmt.Errorf("command for %d blocks with SGL length %d", nlb, c.sglLen())
	}
	if slba+nlb > d.blocks() {
		return tc.respond(c.cid, 0, SCLBAOutOfRange, 0)
	}
	off := int(slba) * int(d.blockSize)
	if c.opc == opcRead {
		return tc.sendData(c.cid, d.snapshot(off, int(n)))
	}
	if c.data != nil {
		tc.write(off, c.data)
		return tc.respond(c.cid, 0, 0, 0)
	}
	tc.ttag++
	w := &twrite{c: c, buf: make([]byte, n), ttag: tc.ttag}
	tc.pending[c.cid] = w
	return tc.nextR2T(w)
}

func (tc *tconn) write(off int, data []byte) {
	d := tc.t.disk
	d.mu.Lock()
	copy(d.data[off:], data)
	d.mu.Unlock()
}

func (tc *tconn) nextR2T(w *twrite) error {
	n := uint32(len(w.buf)) - w.got
	limit := tc.t.r2tChunk
	if limit == 0 {
		limit = tc.t.maxH2CData()
	}
	n = min(n, limit)
	w.end = w.got + n
	return tc.send(r2tPDU(w.c.cid, w.ttag, w.got, n))
}

func (tc *tconn) onH2C(h header, pdu []byte) error {
	if h.hlen != dataHdrLen || int(h.pdo) != dataOffset(dataHdrLen, tc.t.cpda) {
		return fmt.Errorf("H2CData hlen %d pdo %d", h.hlen, h.pdo)
	}
	cid := binary.LittleEndian.Uint16(pdu[8:])
	ttag := binary.LittleEndian.Uint16(pdu[10:])
	datao := binary.LittleEndian.Uint32(pdu[12:])
	datal := binary.LittleEndian.Uint32(pdu[16:])
	w := tc.pending[cid]
	switch {
	case w == nil || w.ttag != ttag:
		return fmt.Errorf("H2CData for command %d ttag %d, not expected", cid, ttag)
	case datao != w.got || datao+datal > w.end || datal > tc.t.maxH2CData():
		return fmt.Errorf("H2CData %d+%d, want from %d to %d", datao, datal, w.got, w.end)
	case int(h.pdo)+int(datal) != len(pdu):
		return fmt.Errorf("H2CData datal %d in a PDU of %d", datal, len(pdu))
	case (h.flags&flagLast != 0) != (datao+datal == w.end):
		return fmt.Errorf("H2CData LAST_PDU flag %v at %d of %d", h.flags&flagLast != 0, datao+datal, w.end)
	}
	copy(w.buf[datao:], pdu[h.pdo:])
	w.got += datal
	if w.got < w.end {
		return nil
	}
	if w.got < uint32(len(w.buf)) {
		return tc.nextR2T(w)
	}
	delete(tc.pending, cid)
	slba := uint64(w.c.cdw(10)) | uint64(w.c.cdw(11))<<32
	tc.write(int(slba)*int(tc.t.disk.blockSize), w.buf)
	return tc.respond(cid, 0, 0, 0)
}

func cstr(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

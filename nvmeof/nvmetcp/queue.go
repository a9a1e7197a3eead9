package nvmetcp

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
)

// maxDataPDU bounds the data of one H2CData PDU we send (MAXH2CDATA may
// allow more) and the reader's buffer.
const maxDataPDU = 128 << 10

// queue is one NVMe/TCP connection: the admin queue or an I/O queue.
//
// Goroutines: the reader parses every PDU from the target, copies C2H data
// into the requests' buffers and completes them; the sender answers R2Ts
// with H2CData PDUs. Callers write command capsules themselves. Writes to
// the connection are serialised by wlock (a channel, so that a blocked
// writer is durably blocked under testing/synctest). mu guards the request
// table and the failure; a request's data is guarded by its own mutex;
// neither is held across I/O.
type queue struct {
	qid     uint16
	conn    net.Conn
	br      *bufio.Reader
	log     *slog.Logger
	timeout time.Duration
	cpda    uint8
	maxH2C  uint32
	icd     int // largest write sent in-capsule (0: never)

	wlock  chan struct{}
	slots  chan uint16    // free command IDs
	r2ts   chan r2tJob    // to the sender
	done   chan struct{}  // closed on failure
	wg     sync.WaitGroup // reader and sender
	onFail func(error)

	mu   sync.Mutex
	reqs []*request // in flight, by command ID
	err  error
}

// request is one command in flight.
type request struct {
	cid    uint16
	op     string
	dir    int
	length uint32 // bytes of data to transfer
	icd    bool   // write data went in the capsule
	res    chan result

	mu   sync.Mutex
	data []byte // nil once the caller may no longer be written to or read from

	recvd uint32 // C2H bytes so far; reader only

	// Under queue.mu.
	complete bool
	sending  bool   // the sender is answering an R2T
	sent     uint32 // bytes sent for R2Ts so far
	timer    *time.Timer
}

type result struct {
	cpl completion
	err error
}

type r2tJob struct {
	r        *request
	ttag     uint16
	off, len uint32
}

// openQueue dials addr and exchanges ICReq/ICResp. depth is the number of
// commands that may be in flight.
// onFail is called (once) when the queue fails.
func openQueue(ctx context.Context, addr string, qid uint16, depth int, o *Options, onFail func(error)) (*queue, error) {
	conn, err := o.Dial(ctx, "tcp", addr)
	if err != nil {
		return nil, transportErr("dial %s: %w", addr, err)
	}
	q := &queue{qid: qid, conn: conn, br: bufio.NewReaderSize(conn, maxDataPDU), log: o.Logger,
		timeout: o.CommandTimeout, wlock: make(chan struct{}, 1), slots: make(chan uint16, depth),
		r2ts: make(chan r2tJob, depth), done: make(chan struct{}), reqs: make([]*request, depth), onFail: onFail}
	if err := q.initialize(ctx); err != nil {
		_ = conn.Close()
		return nil, err
	}
	for i := range depth {
		q.slots <- uint16(i)
	}
	q.wg.Add(2)
	go q.reader()
	go q.sender()
	return q, nil
}

// initialize sends ICReq and checks ICResp, within ctx.
func (q *queue) initialize(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { _ = q.conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if d, ok := ctx.Deadline(); ok {
		_ = q.conn.SetDeadline(d)
	}
	fail := func(err error) error {
		if ctx.Err() != nil {
			return fmt.Errorf("%w: initialize connection: %w", ErrTransport, ctx.Err())
		}
		return err
	}
	if _, err := q.conn.Write(icReq()); err != nil {
		return fail(transportErr("send ICReq: %w", err))
	}
	b := make([]byte, icLen)
	if _, err := io.ReadFull(q.br, b[:chLen]); err != nil {
		return fail(transportErr("read ICResp: %w", err))
	}
	h := parseHeader(b)
	if h.typ == pduC2HTermReq {
		return fail(q.readTermReq(h, b))
	}
	if h.typ != pduICResp || h.hlen != icLen || h.plen != icLen {
		return protocolErr("want ICResp, got %s (hlen %d, plen %d)", pduName(h.typ), h.hlen, h.plen)
	}
	if _, err := io.ReadFull(q.br, b[chLen:]); err != nil {
		return fail(transportErr("read ICResp: %w", err))
	}
	ic := parseICResp(b)
	switch {
	case ic.pfv != 0:
		return protocolErr("ICResp: PDU format version %d, want 0", ic.pfv)
	case ic.digests != 0:
		return protocolErr("ICResp: digests enabled (%#x) though none were asked for", ic.digests)
	case ic.cpda > 31:
		return protocolErr("ICResp: CPDA %d out of range", ic.cpda)
	case ic.maxH2CData < minMaxH2C || ic.maxH2CData%4 != 0:
		return protocolErr("ICResp: MAXH2CDATA %d invalid", ic.maxH2CData)
	}
	q.cpda, q.maxH2C = ic.cpda, min(ic.maxH2CData, maxDataPDU)
	if q.qid == 0 {
		q.icd = adminICData
	}
	if err := q.conn.SetDeadline(time.Time{}); err != nil {
		return transportErr("clear deadline: %w", err)
	}
	return nil
}

// lock takes the connection's write lock.
func (q *queue) lock()   { q.wlock <- struct{}{} }
func (q *queue) unlock() { <-q.wlock }

// write sends bufs as one PDU.
func (q *queue) write(bufs ...[]byte) error {
	q.lock()
	defer q.unlock()
	nb := net.Buffers(bufs)
	_, err := nb.WriteTo(q.conn)
	return err
}

// submit sends cmd, with data for dir (dirRead: filled from the target;
// dirWrite: sent to it), and returns the request to wait for. timeout 0
// means the command may stay outstanding forever (an AER).
func (q *queue) submit(ctx context.Context, cmd *command, dir int, data []byte, timeout time.Duration) (*request, error) {
	var cid uint16
	select {
	case cid = <-q.slots:
	case <-q.done:
		return nil, q.failure()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	r := &request{cid: cid, op: opName(cmd, q.qid == 0), dir: dir, length: uint32(len(data)),
		data: data, res: make(chan result, 1)}
	cmd.setCID(cid)
	// Fabrics commands (Connect) may carry 8 KiB in the capsule on any queue.
	icd := q.icd
	if cmd.opcode() == opcFabrics {
		icd = max(icd, adminICData)
	}
	if dir == dirWrite && len(data) <= icd {
		r.icd = true
		cmd.setSGL(sglInCapsule, r.length)
	} else {
		cmd.setSGL(sglTransport, r.length)
	}
	q.mu.Lock()
	if q.err != nil {
		q.mu.Unlock()
		return nil, q.err
	}
	q.reqs[cid] = r
	if timeout > 0 {
		r.timer = time.AfterFunc(timeout, func() { q.expire(r, timeout) })
	}
	q.mu.Unlock()

	var err error
	if r.icd && len(data) > 0 {
		hdr, pad := capsuleHeader(cmd, len(data), q.cpda)
		err = q.write(hdr, make([]byte, pad), data)
	} else {
		hdr, _ := capsuleHeader(cmd, 0, q.cpda)
		err = q.write(hdr)
	}
	if err != nil {
		q.fail(transportErr("send %s: %w", r.op, err))
	}
	return r, nil
}

// wait returns r's completion, or ctx's error after abandoning r: the
// command stays outstanding (its ID is reused only when the target
// completes it, or the queue fails), a read's data is dropped, a write's
// data is copied so the target can still fetch it.
func (q *queue) wait(ctx context.Context, r *request) (completion, error) {
	select {
	case res := <-r.res:
		return res.cpl, res.err
	case <-ctx.Done():
	}
	r.mu.Lock()
	if r.data != nil && r.dir == dirWrite && !r.icd {
		r.data = bytes.Clone(r.data)
	} else {
		r.data = nil
	}
	r.mu.Unlock()
	select {
	case res := <-r.res: // completed meanwhile
		return res.cpl, res.err
	default:
		return completion{}, ctx.Err()
	}
}

// do submits cmd and waits for it.
func (q *queue) do(ctx context.Context, cmd *command, dir int, data []byte) (completion, error) {
	r, err := q.submit(ctx, cmd, dir, data, q.timeout)
	if err != nil {
		return completion{}, err
	}
	cpl, err := q.wait(ctx, r)
	if err != nil {
		return cpl, err
	}
	return cpl, cpl.statusError(r.op)
}

// finish delivers r's result. r must have been removed from the table.
func (r *request) finish(res result) {
	if r.timer != nil {
		r.timer.Stop()
	}
	r.mu.Lock()
	r.data = nil
	r.mu.Unlock()
	r.res <- res
}

// expire fails the queue when r is still in flight after its timeout.
func (q *queue) expire(r *request, timeout time.Duration) {
	q.mu.Lock()
	live := q.err == nil && q.reqs[r.cid] == r
	q.mu.Unlock()
	if live {
		q.fail(fmt.Errorf("%w: %w: %s (command ID %d on queue %d) got no response in %v",
			ErrTransport, ErrTimeout, r.op, r.cid, q.qid, timeout))
	}
}

// failure returns why the queue failed.
func (q *queue) failure() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.err
}

// fail tears the queue down once: the connection is closed and every
// command in flight fails with err.
func (q *queue) fail(err error) {
	q.mu.Lock()
	if q.err != nil {
		q.mu.Unlock()
		return
	}
	q.err = err
	var inflight []*request
	for i, r := range q.reqs {
		if r != nil {
			r.complete = true
			inflight = append(inflight, r)
			q.reqs[i] = nil
		}
	}
	q.mu.Unlock()
	close(q.done)
	_ = q.conn.Close()
	if q.onFail != nil {
		q.onFail(err) // before the callers learn of it: the controller is failed when they look
	}
	for _, r := range inflight {
		r.finish(result{err: err})
	}
}

// close fails the queue with err and waits for its goroutines.
func (q *queue) close(err error) {
	q.fail(err)
	q.wg.Wait()
}

// complete removes r (command cid) from the table and delivers res, or
// reports that no such command is in flight.
func (q *queue) complete(cid uint16, res result) error {
	q.mu.Lock()
	if int(cid) >= len(q.reqs) || q.reqs[cid] == nil {
		q.mu.Unlock()
		return protocolErr("completion for command ID %d, which is not in flight", cid)
	}
	r := q.reqs[cid]
	q.reqs[cid] = nil
	r.complete = true
	release := !r.sending // else the sender releases the ID when it is done
	q.mu.Unlock()
	if release {
		q.slots <- cid // before the caller learns of it: which ID comes next is deterministic
	}
	r.finish(res)
	return nil
}

// lookup returns command cid in flight.
func (q *queue) lookup(cid uint16, pdu string) (*request, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if int(cid) >= len(q.reqs) || q.reqs[cid] == nil {
		return nil, protocolErr("%s for command ID %d, which is not in flight", pdu, cid)
	}
	return q.reqs[cid], nil
}

// reader reads PDUs until the connection fails.
func (q *queue) reader() {
	defer q.wg.Done()
	hdr := make([]byte, termMaxLen)
	for {
		err := q.readPDU(hdr)
		if err == nil {
			continue
		}
		q.mu.Lock()
		failed := q.err != nil
		q.mu.Unlock()
		if !failed {
			if errors.Is(err, ErrProtocol) {
				q.terminate(err, hdr)
			}
			if !errors.Is(err, ErrTransport) {
				err = transportErr("queue %d: %w", q.qid, err)
			}
			q.log.Debug("nvmetcp queue failed", "qid", q.qid, "err", err)
		}
		q.fail(err)
		return
	}
}

// terminate tells the target why we drop the connection (best effort).
func (q *queue) terminate(err error, offending []byte) {
	var pe *pduError
	fes := uint16(fesInvalidHeader)
	if errors.As(err, &pe) {
		fes = pe.fes
	}
	_ = q.conn.SetWriteDeadline(time.Now().Add(time.Second))
	_ = q.write(termReq(fes, 0, offending[:chLen]))
}

// pduError is a protocol violation with the FES we report to the target.
type pduError struct {
	fes uint16
	err error
}

func (e *pduError) Error() string { return e.err.Error() }
func (e *pduError) Unwrap() error { return e.err }

func badPDU(fes uint16, format string, args ...any) error {
	return &pduError{fes: fes, err: protocolErr(format, args...)}
}

// readPDU reads and handles one PDU; hdr is scratch of termMaxLen bytes.
func (q *queue) readPDU(hdr []byte) error {
	if _, err := io.ReadFull(q.br, hdr[:chLen]); err != nil {
		return readErr(err)
	}
	h := parseHeader(hdr)
	if h.flags&(flagHDGST|flagDDGST) != 0 {
		return badPDU(fesInvalidHeader, "%s with digests, which were not negotiated", pduName(h.typ))
	}
	switch h.typ {
	case pduCapsuleResp:
		if h.hlen != respLen || h.plen != respLen {
			return badPDU(fesInvalidHeader, "CapsuleResp hlen %d plen %d, want %d", h.hlen, h.plen, respLen)
		}
		if _, err := io.ReadFull(q.br, hdr[chLen:respLen]); err != nil {
			return readErr(err)
		}
		return q.onResponse(parseCompletion(hdr[chLen:respLen]))
	case pduC2HData:
		if h.hlen != dataHdrLen || h.pdo < dataHdrLen || uint32(h.pdo) > h.plen {
			return badPDU(fesInvalidHeader, "C2HData hlen %d pdo %d plen %d", h.hlen, h.pdo, h.plen)
		}
		if _, err := io.ReadFull(q.br, hdr[chLen:dataHdrLen]); err != nil {
			return readErr(err)
		}
		return q.onC2HData(h, hdr)
	case pduR2T:
		if h.hlen != r2tLen || h.plen != r2tLen {
			return badPDU(fesInvalidHeader, "R2T hlen %d plen %d, want %d", h.hlen, h.plen, r2tLen)
		}
		if _, err := io.ReadFull(q.br, hdr[chLen:r2tLen]); err != nil {
			return readErr(err)
		}
		return q.onR2T(hdr)
	case pduC2HTermReq:
		return q.readTermReq(h, hdr)
	}
	return badPDU(fesInvalidHeader, "unexpected %s from the target", pduName(h.typ))
}

func readErr(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return transportErr("connection closed by the target")
	}
	return transportErr("read: %w", err)
}

// readTermReq reads the rest of a C2HTermReq whose common header is in b
// and returns the failure it reports.
func (q *queue) readTermReq(h header, b []byte) error {
	if h.hlen != termHdrLen || h.plen < termHdrLen || h.plen > termMaxLen {
		return protocolErr("C2HTermReq hlen %d plen %d", h.hlen, h.plen)
	}
	if _, err := io.ReadFull(q.br, b[chLen:h.plen]); err != nil {
		return readErr(err)
	}
	fes := binary.LittleEndian.Uint16(b[8:])
	fei := binary.LittleEndian.Uint32(b[10:])
	return transportErr("target terminated the connection: %s (FES %#x, FEI %#x)", fesName(fes), fes, fei)
}

func (q *queue) onResponse(cpl completion) error {
	r, err := q.lookup(cpl.cid, "CapsuleResp")
	if err != nil {
		return err
	}
	if cpl.statusError("") == nil && r.dir == dirRead && r.recvd != r.length {
		return badPDU(fesSequenceError, "%s (command ID %d) succeeded with %d of %d bytes", r.op, r.cid,
			r.recvd, r.length)
	}
	return q.complete(cpl.cid, result{cpl: cpl})
}

func (q *queue) onC2HData(h header, b []byte) error {
	cid := binary.LittleEndian.Uint16(b[8:])
	datao := binary.LittleEndian.Uint32(b[12:])
	datal := binary.LittleEndian.Uint32(b[16:])
	r, err := q.lookup(cid, "C2HData")
	if err != nil {
		return err
	}
	switch {
	case r.dir != dirRead:
		return badPDU(fesInvalidHeader, "C2HData for %s (command ID %d), which reads nothing", r.op, cid)
	case uint64(h.pdo)+uint64(datal) != uint64(h.plen):
		return badPDU(fesInvalidHeader, "C2HData pdo %d + datal %d != plen %d", h.pdo, datal, h.plen)
	case datao != r.recvd:
		return badPDU(fesSequenceError, "C2HData offset %d for command ID %d, want %d", datao, cid, r.recvd)
	case uint64(datao)+uint64(datal) > uint64(r.length):
		return badPDU(fesOutOfRange, "C2HData %d+%d beyond %d bytes of command ID %d", datao, datal, r.length, cid)
	case h.flags&flagSuccess != 0 && h.flags&flagLast == 0:
		return badPDU(fesInvalidHeader, "C2HData with SUCCESS but not LAST_PDU (command ID %d)", cid)
	case h.flags&flagSuccess != 0 && datao+datal != r.length:
		return badPDU(fesSequenceError, "C2HData SUCCESS after %d of %d bytes (command ID %d)", datao+datal,
			r.length, cid)
	}
	if _, err := q.br.Discard(int(h.pdo) - dataHdrLen); err != nil {
		return readErr(err)
	}
	for done := uint32(0); done < datal; {
		n := min(int(datal-done), q.br.Size())
		chunk, err := q.br.Peek(n)
		if err != nil {
			return readErr(err)
		}
		r.mu.Lock()
		if r.data != nil {
			copy(r.data[datao+done:], chunk)
		}
		r.mu.Unlock()
		_, _ = q.br.Discard(n)
		done += uint32(n)
	}
	r.recvd += datal
	if h.flags&flagSuccess != 0 {
		return q.complete(cid, result{})
	}
	return nil
}

func (q *queue) onR2T(b []byte) error {
	cid := binary.LittleEndian.Uint16(b[8:])
	job := r2tJob{ttag: binary.LittleEndian.Uint16(b[10:]), off: binary.LittleEndian.Uint32(b[12:]),
		len: binary.LittleEndian.Uint32(b[16:])}
	q.mu.Lock()
	defer q.mu.Unlock()
	if int(cid) >= len(q.reqs) || q.reqs[cid] == nil {
		return badPDU(fesInvalidHeader, "R2T for command ID %d, which is not in flight", cid)
	}
	r := q.reqs[cid]
	switch {
	case r.dir != dirWrite || r.icd:
		return badPDU(fesInvalidHeader, "R2T for %s (command ID %d), which has no data to fetch", r.op, cid)
	case r.sending:
		return badPDU(fesLimitExceeded, "R2T for command ID %d while another is outstanding", cid)
	case job.len == 0 || job.off != r.sent || uint64(job.off)+uint64(job.len) > uint64(r.length):
		return badPDU(fesOutOfRange, "R2T %d+%d for command ID %d (sent %d of %d bytes)", job.off, job.len,
			cid, r.sent, r.length)
	}
	r.sending = true
	job.r = r
	q.r2ts <- job // never blocks: at most one job per command in flight
	return nil
}

// sender answers R2Ts until the queue fails.
func (q *queue) sender() {
	defer q.wg.Done()
	buf := make([]byte, q.maxH2C)
	hdr := make([]byte, 128+dataHdrLen)
	for {
		select {
		case <-q.done:
			return
		case j := <-q.r2ts:
			if err := q.sendData(j, buf, hdr); err != nil {
				q.fail(err)
				return
			}
		}
	}
}

// sendData sends the bytes R2T j asked for as H2CData PDUs. The request
// stops being "sending" while the last PDU is written under the write lock:
// the target may answer it with the next R2T before the write returns, and
// a command that reuses the ID can only be sent after it.
func (q *queue) sendData(j r2tJob, buf, hdr []byte) error {
	r, end := j.r, j.off+j.len
	release := false
	for off := j.off; ; {
		n := min(end-off, uint32(len(buf)))
		r.mu.Lock()
		ok := r.data != nil // nil: the command completed (or the queue failed) meanwhile
		if ok {
			copy(buf[:n], r.data[off:off+n])
		}
		r.mu.Unlock()
		last := !ok || off+n == end
		q.lock()
		if last {
			q.mu.Lock()
			r.sending, r.sent = false, end
			release = r.complete && q.err == nil
			q.mu.Unlock()
		}
		var err error
		if ok {
			nb := net.Buffers{h2cHeader(hdr, r.cid, j.ttag, off, n, off+n == end, q.cpda), buf[:n]}
			_, err = nb.WriteTo(q.conn)
		}
		q.unlock()
		if err != nil {
			return transportErr("send H2CData: %w", err)
		}
		if last {
			break
		}
		off += n
	}
	if release {
		q.slots <- r.cid // the target completed it while we were sending
	}
	return nil
}

package nvmetcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"
)

// Controller is a connection to one NVMe-oF controller over NVMe/TCP: an
// admin queue and one I/O queue, each its own TCP connection. It is safe
// for concurrent use. When either connection fails, the Controller is done
// (Done is closed, Err says why) and every command fails with ErrTransport;
// connect again for a new one (Multipath does).
type Controller struct {
	o     Options
	log   *slog.Logger
	admin *queue
	io    *queue
	info  ControllerInfo
	maxIO uint64 // bytes per command (MDTS); 0: no limit
	done  chan struct{}
	wg    sync.WaitGroup // keep-alive and event goroutines

	mu  sync.Mutex
	err error
	ns  map[uint32]NamespaceInfo
	ana anaLog
}

// Connect connects to subsystem subNQN at addr (host:port): it opens the
// admin queue (Fabrics Connect, enable the controller, identify it and its
// active namespaces, read the ANA log page) and one I/O queue. ctx bounds
// the whole connect; the Controller lives until Close or a failure.
func Connect(ctx context.Context, addr, subNQN string, o Options) (*Controller, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := validNQN("subsystem", subNQN); err != nil {
		return nil, err
	}
	if err := validAddr(addr); err != nil {
		return nil, err
	}
	c := &Controller{o: o, log: o.Logger.With("addr", addr, "subnqn", subNQN), done: make(chan struct{}),
		ns: map[uint32]NamespaceInfo{}}
	c.info.Addr, c.info.SubNQN = addr, subNQN
	if err := c.start(ctx); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("nvmetcp: connect %s %s: %w", addr, subNQN, err)
	}
	c.log.Info("nvmetcp controller connected", "cntlid", c.info.CntlID, "namespaces", len(c.ns))
	return c, nil
}

func (c *Controller) start(ctx context.Context) error {
	admin, err := openQueue(ctx, c.info.Addr, 0, adminDepth, &c.o, c.fail)
	if err != nil {
		return fmt.Errorf("admin queue: %w", err)
	}
	c.mu.Lock()
	c.admin = admin
	c.mu.Unlock()
	kato := uint32(0)
	if c.o.KeepAlive > 0 {
		kato = uint32(c.o.KeepAlive / time.Millisecond)
	}
	cntlid, err := c.connectQueue(ctx, admin, 0xffff, adminDepth-1, kato)
	if err != nil {
		return fmt.Errorf("admin queue: %w", err)
	}
	if kato > 0 {
		c.wg.Add(1)
		go c.keepAlive(c.o.KeepAlive / 2)
	}
	depth, err := c.enable(ctx)
	if err != nil {
		return err
	}
	if err := c.identify(ctx); err != nil {
		return err
	}
	c.info.QueueDepth = depth
	if c.info.ANAReporting {
		if err := c.startEvents(ctx); err != nil {
			return err
		}
	}
	if err := c.scanNamespaces(ctx); err != nil {
		return err
	}
	if c.info.ANAReporting {
		if err := c.RefreshANA(ctx); err != nil {
			return err
		}
	}
	io, err := openQueue(ctx, c.info.Addr, 1, depth, &c.o, c.fail)
	if err != nil {
		return fmt.Errorf("I/O queue: %w", err)
	}
	c.mu.Lock()
	c.io = io
	failed := c.err
	c.mu.Unlock()
	if failed != nil {
		io.close(failed)
		return failed
	}
	io.icd = int(c.info.InCapsuleBytes)
	c.info.MaxH2CDataBytes = io.maxH2C
	if _, err := c.connectQueue(ctx, io, cntlid, uint16(depth-1), 0); err != nil {
		return fmt.Errorf("I/O queue: %w", err)
	}
	return nil
}

// connectQueue sends Fabrics Connect on q and returns the controller ID.
func (c *Controller) connectQueue(ctx context.Context, q *queue, cntlid, sqsize uint16, kato uint32) (uint16, error) {
	data := connectData(c.o.HostID, cntlid, c.info.SubNQN, c.o.HostNQN)
	cpl, err := q.do(ctx, connectCommand(q.qid, sqsize, kato), dirWrite, data)
	if err != nil {
		return 0, err
	}
	if authreq := cpl.dw0 >> 16; authreq != 0 {
		return 0, fmt.Errorf("%w: the target requires authentication (AUTHREQ %#x), which this host does not do",
			errors.ErrUnsupported, authreq)
	}
	got := uint16(cpl.dw0)
	if q.qid == 0 {
		c.info.CntlID = got
	} else if got != cntlid {
		return 0, protocolErr("I/O queue connected to controller %d, want %d", got, cntlid)
	}
	return got, nil
}

// enable reads CAP and VS, sets CC.EN and waits for CSTS.RDY. It returns
// the I/O queue depth the controller allows.
func (c *Controller) enable(ctx context.Context) (int, error) {
	cpl, err := c.admin.do(ctx, propertyGet(propCAP, true), dirNone, nil)
	if err != nil {
		return 0, fmt.Errorf("read CAP: %w", err)
	}
	capReg := uint64(cpl.dw0) | uint64(cpl.dw1)<<32
	cpl, err = c.admin.do(ctx, propertyGet(propVS, false), dirNone, nil)
	if err != nil {
		return 0, fmt.Errorf("read VS: %w", err)
	}
	c.info.Version = fmt.Sprintf("%d.%d", cpl.dw0>>16, cpl.dw0>>8&0xff)
	if ter := cpl.dw0 & 0xff; ter != 0 {
		c.info.Version += fmt.Sprintf(".%d", ter)
	}
	mqes := int(capReg&0xffff) + 1
	mpsmin := capReg >> 48 & 0xf
	c.maxIO = 4096 << mpsmin // the page size; times 2^MDTS once identified
	// EN, CSS 0 (NVM), MPS = MPSMIN, AMS 0, IOSQES 6 (64 bytes), IOCQES 4 (16 bytes).
	cc := uint32(1) | uint32(mpsmin)<<7 | 6<<16 | 4<<20
	if _, err := c.admin.do(ctx, propertySet(propCC, cc), dirNone, nil); err != nil {
		return 0, fmt.Errorf("enable (set CC): %w", err)
	}
	limit := time.Duration(capReg>>24&0xff) * 500 * time.Millisecond
	if err := c.waitReady(ctx, max(limit, time.Second)); err != nil {
		return 0, err
	}
	return min(c.o.QueueDepth, mqes), nil
}

// waitReady polls CSTS until RDY, for at most limit.
func (c *Controller) waitReady(ctx context.Context, limit time.Duration) error {
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		cpl, err := c.admin.do(ctx, propertyGet(propCSTS, false), dirNone, nil)
		if err != nil {
			return fmt.Errorf("read CSTS: %w", err)
		}
		switch {
		case cpl.dw0&2 != 0:
			return fmt.Errorf("%w: controller fatal status (CSTS %#x)", ErrTransport, cpl.dw0)
		case cpl.dw0&1 != 0:
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return fmt.Errorf("%w: controller not ready after %v (CSTS %#x)", ErrTransport, limit, cpl.dw0)
		case <-tick.C:
		}
	}
}

// identify reads Identify Controller.
func (c *Controller) identify(ctx context.Context) error {
	b, err := c.identifyData(ctx, cnsController, 0)
	if err != nil {
		return fmt.Errorf("identify controller: %w", err)
	}
	cntlid := c.info.CntlID
	mdts, icdoff := identifyController(b, &c.info)
	if c.info.CntlID != cntlid {
		return protocolErr("identify says controller %d, connect said %d", c.info.CntlID, cntlid)
	}
	if mdts == 0 {
		c.maxIO = 0
	} else {
		c.maxIO = min(c.maxIO<<min(mdts, 31), 1<<31)
	}
	c.info.MaxTransferBytes = uint32(c.maxIO)
	if icdoff != 0 {
		c.info.InCapsuleBytes = 0 // data at an offset in the capsule: not supported, use R2T
	}
	return nil
}

func (c *Controller) identifyData(ctx context.Context, cns uint8, nsid uint32) ([]byte, error) {
	b := make([]byte, 4096)
	_, err := c.admin.do(ctx, identifyCommand(cns, nsid), dirRead, b)
	return b, err
}

// scanNamespaces identifies every active namespace.
func (c *Controller) scanNamespaces(ctx context.Context) error {
	b, err := c.identifyData(ctx, cnsActiveNSList, 0)
	if err != nil {
		return fmt.Errorf("list namespaces: %w", err)
	}
	for _, nsid := range activeNamespaces(b) {
		if _, err := c.identifyNamespace(ctx, nsid); err != nil && !errors.Is(err, ErrNoNamespace) {
			return err
		}
	}
	return nil
}

// identifyNamespace identifies nsid and caches it.
func (c *Controller) identifyNamespace(ctx context.Context, nsid uint32) (NamespaceInfo, error) {
	b, err := c.identifyData(ctx, cnsNamespace, nsid)
	if err != nil {
		return NamespaceInfo{}, fmt.Errorf("identify namespace %d: %w", nsid, err)
	}
	ni, err := identifyNamespace(b, nsid)
	if err != nil {
		return ni, err
	}
	b, err = c.identifyData(ctx, cnsNSDescriptors, nsid)
	if IsTransportError(err) {
		return ni, fmt.Errorf("identify namespace %d descriptors: %w", nsid, err)
	}
	if err == nil { // a status: an old controller without the list
		namespaceDescriptors(b, &ni)
	}
	c.mu.Lock()
	c.ns[nsid] = ni
	c.mu.Unlock()
	return ni, nil
}

// Namespace returns namespace nsid, identifying it if it was not active at
// connect.
func (c *Controller) Namespace(ctx context.Context, nsid uint32) (NamespaceInfo, error) {
	if nsid == 0 || nsid == 0xffffffff {
		return NamespaceInfo{}, fmt.Errorf("%w: namespace ID %#x", ErrInvalid, nsid)
	}
	c.mu.Lock()
	ni, ok := c.ns[nsid]
	c.mu.Unlock()
	if ok {
		return ni, nil
	}
	return c.identifyNamespace(ctx, nsid)
}

// Namespaces lists the namespaces known (active at connect, or looked up
// since), by ID.
func (c *Controller) Namespaces() []NamespaceInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]NamespaceInfo, 0, len(c.ns))
	for _, ni := range c.ns {
		out = append(out, ni)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].NSID < out[j].NSID })
	return out
}

// ControllerStats counts the traffic of a controller's I/O queue.
type ControllerStats struct {
	Commands        uint64 // commands sent
	InCapsuleWrites uint64 // writes whose data went in the command capsule
	R2Ts            uint64 // R2T PDUs received (the target fetching write data)
	H2CDataPDUs     uint64 // H2CData PDUs sent
	C2HDataPDUs     uint64 // C2HData PDUs received
}

// Stats returns the I/O queue's counters so far.
func (c *Controller) Stats() ControllerStats {
	s := &c.io.stats
	return ControllerStats{Commands: s.commands.Load(), InCapsuleWrites: s.inCapsule.Load(), R2Ts: s.r2ts.Load(),
		H2CDataPDUs: s.h2c.Load(), C2HDataPDUs: s.c2h.Load()}
}

// Info returns what the controller reported at connect.
func (c *Controller) Info() ControllerInfo { return c.info }

// ANAState returns namespace nsid's ANA state through this controller as
// last read (at connect, on an ANA change event, or by RefreshANA). A
// controller without ANA reporting is optimized for every namespace.
func (c *Controller) ANAState(nsid uint32) ANAState {
	if !c.info.ANAReporting {
		return ANAOptimized
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.ana.ns[nsid]; ok {
		return s
	}
	if ni, ok := c.ns[nsid]; ok {
		return c.ana.groups[ni.ANAGroupID]
	}
	return 0
}

// RefreshANA reads the ANA log page again.
func (c *Controller) RefreshANA(ctx context.Context) error {
	if !c.info.ANAReporting {
		return nil
	}
	size := anaLogSize(c.info.ANAGroups, c.info.Namespaces)
	b, err := c.getLogPage(ctx, logANA, size)
	if err != nil {
		return fmt.Errorf("read ANA log page: %w", err)
	}
	l, err := parseANALog(b)
	if err != nil {
		c.fail(err)
		return err
	}
	c.mu.Lock()
	c.ana = l
	c.mu.Unlock()
	return nil
}

// getLogPage reads n bytes of log lid, in pieces of the largest transfer.
func (c *Controller) getLogPage(ctx context.Context, lid uint8, n uint32) ([]byte, error) {
	b := make([]byte, n)
	step := uint32(len(b))
	if c.maxIO > 0 {
		step = min(step, uint32(c.maxIO))
	}
	for off := uint32(0); off < n; off += step {
		k := min(step, n-off)
		if _, err := c.admin.do(ctx, getLogPageCommand(lid, k, uint64(off), false), dirRead, b[off:off+k]); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// keepAlive sends Keep Alive every interval until the controller is done.
func (c *Controller) keepAlive(interval time.Duration) {
	defer c.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		if _, err := c.admin.do(context.Background(), newCommand(opcKeepAlive), dirNone, nil); err != nil {
			if !IsTransportError(err) {
				err = transportErr("keep alive failed: %w", err)
			}
			c.fail(err)
			return
		}
	}
}

// namespacesChanged answers a Namespace Attribute Changed notice (SPDK
// sends one when a namespace's bdev is resized): it reads the Changed
// Namespace List, which re-arms the event, and identifies the known
// namespaces again, as Linux rescans them, so Namespace reports their new
// size.
func (c *Controller) namespacesChanged(ctx context.Context) error {
	if _, err := c.getLogPage(ctx, logChangedNSList, 512); err != nil {
		return err
	}
	c.mu.Lock()
	nsids := make([]uint32, 0, len(c.ns))
	for nsid := range c.ns {
		nsids = append(nsids, nsid)
	}
	c.mu.Unlock()
	var errs []error
	for _, nsid := range nsids {
		if _, err := c.identifyNamespace(ctx, nsid); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// startEvents enables ANA change and namespace attribute notices and posts
// an Asynchronous Event Request; a goroutine re-reads the ANA log page or
// the namespaces on every notice.
func (c *Controller) startEvents(ctx context.Context) error {
	_, err := c.admin.do(ctx, setFeaturesCommand(featAsyncEventCfg, aecANAChange|aecNSAttrChange), dirNone, nil)
	if IsTransportError(err) {
		return fmt.Errorf("enable ANA change notices: %w", err)
	}
	if err != nil {
		c.log.Debug("nvmetcp ANA change notices not enabled", "err", err)
	}
	r, err := c.admin.submit(ctx, newCommand(opcAER), dirNone, nil, 0)
	if err != nil {
		return fmt.Errorf("asynchronous event request: %w", err)
	}
	c.wg.Add(1)
	go c.events(r)
	return nil
}

// events waits for asynchronous events until the controller is done.
func (c *Controller) events(r *request) {
	defer c.wg.Done()
	for {
		cpl, err := c.admin.wait(context.Background(), r)
		if err == nil {
			err = cpl.statusError(r.op)
		}
		if err != nil {
			if !IsTransportError(err) && !errors.Is(err, ErrClosed) {
				c.log.Debug("nvmetcp asynchronous events stopped", "err", err)
			}
			return
		}
		lid := uint8(cpl.dw0 >> 16)
		ctx, cancel := context.WithTimeout(context.Background(), c.o.CommandTimeout)
		switch {
		case lid == logANA:
			err = c.RefreshANA(ctx)
			c.log.Debug("nvmetcp ANA change notice", "err", err)
		case lid == logChangedNSList:
			err = c.namespacesChanged(ctx)
			c.log.Debug("nvmetcp namespace attribute notice", "err", err)
		case lid != 0:
			_, err = c.getLogPage(ctx, lid, 512) // reading it re-arms the event
		}
		cancel()
		if IsTransportError(err) {
			return
		}
		if r, err = c.admin.submit(context.Background(), newCommand(opcAER), dirNone, nil, 0); err != nil {
			return
		}
	}
}

// fail marks the controller failed once and tears both queues down.
func (c *Controller) fail(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	admin, io := c.admin, c.io
	c.mu.Unlock()
	if !errors.Is(err, ErrClosed) {
		c.log.Info("nvmetcp controller failed", "cntlid", c.info.CntlID, "err", err)
	}
	close(c.done)
	if admin != nil {
		admin.fail(err)
	}
	if io != nil {
		io.fail(err)
	}
}

// Done is closed when the controller failed or was closed.
func (c *Controller) Done() <-chan struct{} { return c.done }

// Err returns why the controller is done, or nil while it works.
func (c *Controller) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close closes both connections (commands in flight fail with ErrClosed)
// and waits for the Controller's goroutines. It is idempotent.
func (c *Controller) Close() error {
	c.fail(ErrClosed)
	c.mu.Lock()
	admin, io := c.admin, c.io
	c.mu.Unlock()
	if admin != nil {
		admin.close(ErrClosed)
	}
	if io != nil {
		io.close(ErrClosed)
	}
	c.wg.Wait()
	return nil
}

package fabric

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
)

// connectTimeout bounds how long an accepted connection may take to send
// its connect frame.
const connectTimeout = 10 * time.Second

// maxInflight bounds the requests a session serves at once.
const maxInflight = 128

// Target is the target side of one fake SPDK instance: its listeners and
// the sessions of connected hosts. It is safe for concurrent use.
type Target struct {
	admit  Admit
	logger hclog.Logger
	listen ListenFunc

	mu        sync.Mutex
	listeners map[string]*listener
	// sessions by subsystem NQN: a connect, a host removal or an ANA
	// change looks at one subsystem's sessions, not every session of a
	// node with thousands.
	sessions map[string]map[*session]struct{}
	ana      map[string]string // subNQN + listener key -> state
	closed   bool
	wg       sync.WaitGroup
}

type listener struct {
	trid TransportID
	ln   net.Listener
}

// ListenFunc opens a TCP listener on addr (host:port) for a target.
type ListenFunc func(addr string) (net.Listener, error)

// TargetOption configures NewTarget.
type TargetOption func(*Target)

// WithListenFunc makes the target listen through fn instead of net.Listen,
// for example on ports held by package reserve (spdktest does). An error
// wrapping syscall.EADDRINUSE is reported as ErrAddrInUse.
func WithListenFunc(fn ListenFunc) TargetOption { return func(t *Target) { t.listen = fn } }

// NewTarget returns a target that asks admit about every connecting host.
// A nil logger is silent.
func NewTarget(admit Admit, logger hclog.Logger, opts ...TargetOption) *Target {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	t := &Target{admit: admit, logger: logger.Named("fabric"), listeners: map[string]*listener{},
		sessions: map[string]map[*session]struct{}{}, ana: map[string]string{}}
	for _, o := range opts {
		o(t)
	}
	if t.listen == nil {
		t.listen = func(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }
	}
	return t
}

// Listen listens on exactly trid's traddr:trsvcid over TCP.
func (t *Target) Listen(trid TransportID) error {
	_, err := t.ListenTCP(trid)
	return err
}

// ListenTCP is Listen that returns the transport id actually bound, which
// differs from trid when its trsvcid is "0" (any free port).
func (t *Target) ListenTCP(trid TransportID) (TransportID, error) {
	if !trid.valid() {
		return trid, fmt.Errorf("%w: transport id %+v", ErrInvalid, trid)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return trid, ErrClosed
	}
	if _, ok := t.listeners[trid.key()]; ok {
		return trid, fmt.Errorf("%w: listener %s", ErrExists, trid.key())
	}
	ln, err := t.listen(trid.key())
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return trid, fmt.Errorf("%w: %w", ErrAddrInUse, err)
		}
		return trid, fmt.Errorf("fabric: listen %s: %w", trid.key(), err)
	}
	if trid.TrSvcID == "0" {
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		trid.TrSvcID = port
	}
	l := &listener{trid: trid, ln: ln}
	t.listeners[trid.key()] = l
	t.wg.Add(1)
	go t.acceptLoop(l)
	t.logger.Info("listening", "addr", trid.key())
	return trid, nil
}

// Listeners lists the bound transport ids.
func (t *Target) Listeners() []TransportID {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]TransportID, 0, len(t.listeners))
	for _, l := range t.listeners {
		out = append(out, l.trid)
	}
	slices.SortFunc(out, func(a, b TransportID) int {
		if a.key() < b.key() {
			return -1
		}
		if a.key() > b.key() {
			return 1
		}
		return 0
	})
	return out
}

// Unlisten closes the listener and drops the sessions that came through it.
func (t *Target) Unlisten(trid TransportID) error {
	t.mu.Lock()
	l, ok := t.listeners[trid.key()]
	if !ok {
		t.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrNoListener, trid.key())
	}
	delete(t.listeners, trid.key())
	drop := t.matchLocked("", func(s *session) bool { return s.local.sameAddr(l.trid) })
	t.mu.Unlock()
	err := l.ln.Close()
	dropAll(drop)
	t.logger.Info("stopped listening", "addr", trid.key(), "dropped", len(drop))
	return err
}

// DisconnectHost drops the host's sessions to the subsystem
// (nvmf_subsystem_remove_host).
func (t *Target) DisconnectHost(subNQN, hostNQN string) {
	t.mu.Lock()
	drop := t.matchLocked(subNQN, func(s *session) bool { return s.hostNQN == hostNQN })
	t.mu.Unlock()
	dropAll(drop)
}

// DisconnectSubsystem drops every session to the subsystem
// (nvmf_delete_subsystem).
func (t *Target) DisconnectSubsystem(subNQN string) {
	t.mu.Lock()
	drop := t.matchLocked(subNQN, func(*session) bool { return true })
	t.mu.Unlock()
	dropAll(drop)
}

// Sessions lists the subsystem's connected hosts ("" lists all).
func (t *Target) Sessions(subNQN string) []Session {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []Session
	t.eachLocked(subNQN, func(s *session) { out = append(out, s.public()) })
	slices.SortFunc(out, func(a, b Session) int { return int(a.CntlID) - int(b.CntlID) })
	return out
}

// SetANAState changes the ANA state the subsystem reports through the
// listener trid, for connected hosts (which are told at once) and for
// later ones.
func (t *Target) SetANAState(subNQN string, trid TransportID, state string) {
	t.mu.Lock()
	t.ana[subNQN+"|"+trid.key()] = state
	var hit []*session
	for s := range t.sessions[subNQN] {
		if s.local.sameAddr(trid) {
			hit = append(hit, s)
		}
	}
	t.mu.Unlock()
	for _, s := range hit {
		s.setANAState(state)
	}
}

// ResizeNamespace records that namespace nsid of subNQN now has numBlocks
// blocks and tells every connected host with an async event, as SPDK's
// target does when a namespace's bdev is resized (Namespace Attribute
// Changed); Identify answers the new size from then on.
func (t *Target) ResizeNamespace(subNQN string, nsid uint32, numBlocks uint64) {
	for _, s := range t.sessionsOf(subNQN) {
		s.resizeNamespace(nsid, numBlocks)
	}
}

// SetNamespaces makes nss the namespaces of subNQN for every connected
// host and tells each host whose list changed with an async event, as
// SPDK's target does when a namespace is added or removed (Namespace
// Attribute Changed: the host rescans its active namespace list). A
// namespace without a device is left out. Later connections get what the
// admit policy returns.
func (t *Target) SetNamespaces(subNQN string, nss []Namespace) {
	for _, s := range t.sessionsOf(subNQN) {
		s.setNamespaces(nss)
	}
}

// sessionsOf returns the sessions connected to subNQN.
func (t *Target) sessionsOf(subNQN string) []*session {
	t.mu.Lock()
	defer t.mu.Unlock()
	var hit []*session
	for s := range t.sessions[subNQN] {
		hit = append(hit, s)
	}
	return hit
}

// Close is a crash: every listener and session goes at once. Close waits
// for the target's goroutines and is idempotent.
func (t *Target) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		t.wg.Wait()
		return nil
	}
	t.closed = true
	var errs []error
	for k, l := range t.listeners {
		errs = append(errs, l.ln.Close())
		delete(t.listeners, k)
	}
	drop := t.matchLocked("", func(*session) bool { return true })
	t.mu.Unlock()
	dropAll(drop)
	t.wg.Wait()
	return errors.Join(errs...)
}

// matchLocked removes and returns the sessions of subNQN ("" for every
// subsystem) that fn picks.
func (t *Target) matchLocked(subNQN string, fn func(*session) bool) []*session {
	var out []*session
	t.eachLocked(subNQN, func(s *session) {
		if fn(s) {
			out = append(out, s)
			t.removeLocked(s)
		}
	})
	return out
}

// eachLocked calls fn for every session of subNQN ("" for every
// subsystem); fn may remove the session it is given.
func (t *Target) eachLocked(subNQN string, fn func(*session)) {
	if subNQN != "" {
		for s := range t.sessions[subNQN] {
			fn(s)
		}
		return
	}
	for _, set := range t.sessions {
		for s := range set {
			fn(s)
		}
	}
}

func (t *Target) addLocked(s *session) {
	set := t.sessions[s.subNQN]
	if set == nil {
		set = map[*session]struct{}{}
		t.sessions[s.subNQN] = set
	}
	set[s] = struct{}{}
}

func (t *Target) removeLocked(s *session) {
	set := t.sessions[s.subNQN]
	delete(set, s)
	if len(set) == 0 {
		delete(t.sessions, s.subNQN)
	}
}

func dropAll(ss []*session) {
	for _, s := range ss {
		s.close()
	}
}

func (t *Target) acceptLoop(l *listener) {
	defer t.wg.Done()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return // closed by Unlisten or Close
		}
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			_ = c.Close()
			return
		}
		t.wg.Add(1)
		t.mu.Unlock()
		go t.serveConn(l.trid, c)
	}
}

// serveConn admits one connection and then serves its requests.
func (t *Target) serveConn(local TransportID, c net.Conn) {
	defer t.wg.Done()
	s, err := t.handshake(local, c)
	if err != nil {
		t.logger.Debug("connect refused", "peer", c.RemoteAddr().String(), "error", err)
		_ = c.Close()
		return
	}
	s.serve()
	t.mu.Lock()
	t.removeLocked(s)
	t.mu.Unlock()
	s.close()
	s.inflight.Wait()
	t.logger.Debug("session closed", "subnqn", s.subNQN, "hostnqn", s.hostNQN, "cntlid", s.info.CntlID)
}

func (t *Target) handshake(local TransportID, c net.Conn) (*session, error) {
	_ = c.SetReadDeadline(time.Now().Add(connectTimeout))
	fr := newFrameReader(c)
	h, body, err := readFrame(fr)
	if err != nil {
		return nil, err
	}
	if h.op != opConnect {
		return nil, fmt.Errorf("%w: first frame is op %#x", ErrProtocol, h.op)
	}
	cb, err := decodeConnect(body)
	if err != nil {
		return nil, err
	}
	_ = c.SetReadDeadline(time.Time{})
	var info ControllerInfo
	var nss []Namespace
	if t.admit == nil {
		err = fmt.Errorf("%w: no admit policy", ErrNoSubsystem)
	} else {
		info, nss, err = t.admit(cb.SubNQN, cb.HostNQN, local)
	}
	if err != nil {
		st := stRejected
		switch {
		case errors.Is(err, ErrNotAllowed):
			st = stNotAllowed
		case errors.Is(err, ErrNoSubsystem):
			st = stNoSubsystem
		}
		_ = writeFrame(c, header{op: opConnect | opReply, status: st, tag: h.tag}, []byte(err.Error()))
		return nil, err
	}
	s := newSession(t, local, c, fr, cb, info, nss)
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil, ErrClosed
	}
	if st, ok := t.ana[cb.SubNQN+"|"+local.key()]; ok {
		s.info.ANAState = st
	}
	t.addLocked(s)
	ib, _ := json.Marshal(s.info)
	t.mu.Unlock()
	if err := s.write(header{op: opConnect | opReply, tag: h.tag}, ib); err != nil {
		t.mu.Lock()
		t.removeLocked(s)
		t.mu.Unlock()
		return nil, err
	}
	t.logger.Info("host connected", "subnqn", cb.SubNQN, "hostnqn", cb.HostNQN, "cntlid", info.CntlID, "local", local.key())
	return s, nil
}

func writeFrame(c net.Conn, h header, body []byte) error {
	h.bodyLen = uint32(len(body))
	hb := make([]byte, headerLen)
	h.put(hb)
	bufs := net.Buffers{hb, body}
	_, err := bufs.WriteTo(c)
	return err
}

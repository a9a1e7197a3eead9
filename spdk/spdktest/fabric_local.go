package spdktest

// An in-process NVMe-oF fabric between the fakes of one process: listeners
// bind real TCP sockets (so ports in use, refused connections and closing a
// listener behave as they should) and admission goes through the target's
// allow-list, but the data moves by function call, not over the socket. It
// follows the fabric contract of the project (spdk/spdktest/fabric) and lives
// here until that package lands.

import (
	"context"
	"errors"
	"net"
	"sync"

	"github.com/hashicorp/go-hclog"
)

type transportID struct{ TrType, AdrFam, TrAddr, TrSvcID string }
type fabNamespace struct {
	NSID        uint32
	NGUID, UUID string
	Dev         blockDevice
}
type namespaceInfo struct {
	NSID        uint32
	NGUID, UUID string
	BlockSize   uint32
	NumBlocks   uint64
}
type controllerInfo struct {
	CntlID                            uint16
	SerialNumber, ModelNumber, SubNQN string
	ANAReporting                      bool
	ANAState                          string
	Namespaces                        []namespaceInfo
}
type admitFunc func(subNQN, hostNQN string, local transportID) (controllerInfo, []fabNamespace, error)
type fabSession struct {
	CntlID          uint16
	HostNQN, HostID string
	Local           transportID
	conn            *fabConn
}

var (
	errFabRefused     = errors.New("fabric: refused")
	errFabNotAllowed  = errors.New("fabric: not allowed")
	errFabNoSubsystem = errors.New("fabric: no subsystem")
)

var (
	fabRegistryMu sync.Mutex
	fabRegistry   = map[string]*fabTarget{}
)

type fabTarget struct {
	admit    admitFunc
	mu       sync.Mutex
	lns      map[string]net.Listener
	sessions []*fabSession
}

func tidKey(t transportID) string { return t.TrAddr + ":" + t.TrSvcID }

func newFabTarget(admit admitFunc, logger hclog.Logger) *fabTarget {
	return &fabTarget{admit: admit, lns: map[string]net.Listener{}}
}
func (t *fabTarget) Listen(trid transportID) error {
	ln, err := net.Listen("tcp", net.JoinHostPort(trid.TrAddr, trid.TrSvcID))
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.lns[tidKey(trid)] = ln
	t.mu.Unlock()
	fabRegistryMu.Lock()
	fabRegistry[tidKey(trid)] = t
	fabRegistryMu.Unlock()
	return nil
}
func (t *fabTarget) Unlisten(trid transportID) error {
	t.mu.Lock()
	ln := t.lns[tidKey(trid)]
	delete(t.lns, tidKey(trid))
	t.mu.Unlock()
	fabRegistryMu.Lock()
	if fabRegistry[tidKey(trid)] == t {
		delete(fabRegistry, tidKey(trid))
	}
	fabRegistryMu.Unlock()
	if ln != nil {
		ln.Close()
	}
	t.drop(func(s *fabSession) bool { return tidKey(s.Local) == tidKey(trid) })
	return nil
}
func (t *fabTarget) drop(f func(*fabSession) bool) {
	t.mu.Lock()
	var keep []*fabSession
	var gone []*fabSession
	for _, s := range t.sessions {
		if f(s) {
			gone = append(gone, s)
		} else {
			keep = append(keep, s)
		}
	}
	t.sessions = keep
	t.mu.Unlock()
	for _, s := range gone {
		s.conn.lost()
	}
}
func (t *fabTarget) DisconnectHost(sub, host string) {
	t.drop(func(s *fabSession) bool { return s.conn.sub == sub && s.HostNQN == host })
}
func (t *fabTarget) DisconnectSubsystem(sub string) {
	t.drop(func(s *fabSession) bool { return s.conn.sub == sub })
}

// RemoveNamespace tells the hosts connected to sub that nsid is gone (an
// NVMe namespace-attribute-changed event).
func (t *fabTarget) RemoveNamespace(sub string, nsid uint32) {
	t.mu.Lock()
	var conns []*fabConn
	for _, s := range t.sessions {
		if s.conn.sub == sub {
			conns = append(conns, s.conn)
		}
	}
	t.mu.Unlock()
	for _, c := range conns {
		c.mu.Lock()
		f := c.onNSRemoved
		c.mu.Unlock()
		if f != nil {
			f(nsid)
		}
	}
}
func (t *fabTarget) DisconnectListener(sub string, trid transportID) {
	t.drop(func(s *fabSession) bool { return s.conn.sub == sub && tidKey(s.Local) == tidKey(trid) })
}
func (t *fabTarget) Sessions(sub string) []fabSession {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []fabSession
	for _, s := range t.sessions {
		if s.conn.sub == sub {
			out = append(out, *s)
		}
	}
	return out
}
func (t *fabTarget) SetANAState(a string, trid transportID, s string) {}
func (t *fabTarget) Close() error {
	t.mu.Lock()
	lns := t.lns
	t.lns = map[string]net.Listener{}
	t.mu.Unlock()
	fabRegistryMu.Lock()
	for k := range lns {
		if fabRegistry[k] == t {
			delete(fabRegistry, k)
		}
	}
	fabRegistryMu.Unlock()
	for _, ln := range lns {
		ln.Close()
	}
	t.drop(func(*fabSession) bool { return true })
	return nil
}

type fabConn struct {
	mu          sync.Mutex
	onNSRemoved func(nsid uint32)
	sub         string
	info        controllerInfo
	devs        map[uint32]blockDevice
	done        chan struct{}
	once        sync.Once
	t           *fabTarget
}

func (c *fabConn) lost() { c.once.Do(func() { close(c.done) }) }

var hostSeq int

func fabDial(ctx context.Context, trid transportID, sub, host string) (*fabConn, error) {
	fabRegistryMu.Lock()
	t := fabRegistry[tidKey(trid)]
	hostSeq++
	fabRegistryMu.Unlock()
	if t == nil {
		return nil, errFabRefused
	}
	info, nss, err := t.admit(sub, host, trid)
	if err != nil {
		return nil, err
	}
	c := &fabConn{sub: sub, info: info, devs: map[uint32]blockDevice{}, done: make(chan struct{}), t: t}
	for _, ns := range nss {
		c.devs[ns.NSID] = ns.Dev
	}
	t.mu.Lock()
	t.sessions = append(t.sessions, &fabSession{CntlID: info.CntlID, HostNQN: host, HostID: "00000000-0000-0000-0000-000000000001", Local: trid, conn: c})
	t.mu.Unlock()
	return c, nil
}
func (c *fabConn) Info() controllerInfo { return c.info }

// OnNamespaceRemoved registers f to run (without the target's locks held)
// when the target removes a namespace of this controller.
func (c *fabConn) OnNamespaceRemoved(f func(nsid uint32)) {
	c.mu.Lock()
	c.onNSRemoved = f
	c.mu.Unlock()
}
func (c *fabConn) Device(nsid uint32) blockDevice {
	return fabConnDev{c, c.devs[nsid]}
}
func (c *fabConn) Done() <-chan struct{} { return c.done }
func (c *fabConn) Err() error            { return nil }
func (c *fabConn) Close() error {
	c.t.drop(func(s *fabSession) bool { return s.conn == c })
	c.lost()
	return nil
}

type fabConnDev struct {
	c *fabConn
	d blockDevice
}

func (d fabConnDev) BlockSize() uint32 { return d.d.BlockSize() }
func (d fabConnDev) NumBlocks() uint64 { return d.d.NumBlocks() }
func (d fabConnDev) ReadAt(p []byte, off int64) (int, error) {
	select {
	case <-d.c.done:
		return 0, errors.New("path lost")
	default:
	}
	return d.d.ReadAt(p, off)
}
func (d fabConnDev) WriteAt(p []byte, off int64) (int, error) {
	select {
	case <-d.c.done:
		return 0, errors.New("path lost")
	default:
	}
	return d.d.WriteAt(p, off)
}

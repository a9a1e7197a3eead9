package fabric

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"

	"github.com/vda-io/vda/internal/bufpool"
	"github.com/vda-io/vda/spdk/spdktest/blockdev"
)

// session is one admitted host connection on the target.
type session struct {
	t               *Target
	local           TransportID
	conn            net.Conn
	fr              *frameReader // the handshake's: it may hold the next request
	subNQN, hostNQN string
	ns              map[uint32]blockdev.Device
	sem             chan struct{}
	inflight        sync.WaitGroup
	closeOnce       sync.Once
	writeMu         sync.Mutex
	mu              sync.Mutex // guards info and ns
	info            ControllerInfo
}

func newSession(t *Target, local TransportID, c net.Conn, fr *frameReader, cb connectBody, info ControllerInfo, nss []Namespace) *session {
	s := &session{t: t, local: local, conn: c, fr: fr, subNQN: cb.SubNQN, hostNQN: cb.HostNQN,
		ns: map[uint32]blockdev.Device{}, sem: make(chan struct{}, maxInflight), info: info}
	if s.info.SubNQN == "" {
		s.info.SubNQN = cb.SubNQN
	}
	for _, n := range nss {
		if n.Dev == nil {
			continue
		}
		s.ns[n.NSID] = n.Dev
		if _, ok := s.info.Namespace(n.NSID); !ok {
			s.info.Namespaces = append(s.info.Namespaces, n.info())
		}
	}
	return s
}

func (n Namespace) info() NamespaceInfo {
	return NamespaceInfo{NSID: n.NSID, NGUID: n.NGUID, UUID: n.UUID, BlockSize: n.Dev.BlockSize(), NumBlocks: n.Dev.NumBlocks()}
}

// setNamespaces replaces the session's namespaces with nss and, when the
// list the host knows changed, tells it with an async event.
func (s *session) setNamespaces(nss []Namespace) {
	s.mu.Lock()
	ns := map[uint32]blockdev.Device{}
	var infos []NamespaceInfo
	for _, n := range nss {
		if n.Dev == nil {
			continue
		}
		ns[n.NSID] = n.Dev
		infos = append(infos, n.info())
	}
	changed := !slices.Equal(infos, s.info.Namespaces)
	s.ns, s.info.Namespaces = ns, infos
	s.mu.Unlock()
	if !changed {
		return
	}
	if err := s.write(header{op: opAEN}, s.infoJSON()); err != nil {
		s.close()
	}
}

func (s *session) public() Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Session{CntlID: s.info.CntlID, SubNQN: s.subNQN, HostNQN: s.hostNQN, Local: s.local,
		PeerAddr: s.conn.RemoteAddr().String(), ANAState: s.info.ANAState}
}

func (s *session) close() { s.closeOnce.Do(func() { _ = s.conn.Close() }) }

func (s *session) write(h header, body []byte) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	return writeFrame(s.conn, h, body)
}

func (s *session) infoJSON() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, _ := json.Marshal(s.info)
	return b
}

// setANAState records the state and tells the host with an async event.
func (s *session) setANAState(state string) {
	s.mu.Lock()
	s.info.ANAState = state
	s.mu.Unlock()
	if err := s.write(header{op: opAEN}, s.infoJSON()); err != nil {
		s.close()
	}
}

// resizeNamespace records a namespace's new size and tells the host with
// an async event.
func (s *session) resizeNamespace(nsid uint32, numBlocks uint64) {
	s.mu.Lock()
	changed := false
	for i := range s.info.Namespaces {
		if n := &s.info.Namespaces[i]; n.NSID == nsid && n.NumBlocks != numBlocks {
			n.NumBlocks, changed = numBlocks, true
		}
	}
	s.mu.Unlock()
	if !changed {
		return
	}
	if err := s.write(header{op: opAEN}, s.infoJSON()); err != nil {
		s.close()
	}
}

// serve reads requests until the connection fails or is closed.
func (s *session) serve() {
	for {
		h, err := s.fr.header()
		if err != nil {
			return
		}
		var pooled *[]byte
		var body []byte
		if h.op == opWrite {
			pooled = writeBufs.Get(int(h.bodyLen))
			body = *pooled
		} else {
			body = make([]byte, h.bodyLen)
		}
		if err := s.fr.body(body); err != nil {
			return
		}
		switch h.op {
		case opKeepAlive:
			err = s.write(header{op: opKeepAlive | opReply, tag: h.tag}, nil)
		case opIdentify:
			err = s.write(header{op: opIdentify | opReply, tag: h.tag}, s.infoJSON())
		case opRead, opWrite, opZeroes:
			s.sem <- struct{}{}
			s.inflight.Add(1)
			go func() {
				defer func() { <-s.sem; s.inflight.Done() }()
				s.handleIO(h, body)
				if pooled != nil {
					writeBufs.Put(pooled)
				}
			}()
		default:
			s.t.logger.Debug("protocol error", "hostnqn", s.hostNQN, "op", h.op)
			return
		}
		if err != nil {
			return
		}
	}
}

// handleIO serves one read, write or write-zeroes request.
func (s *session) handleIO(h header, body []byte) {
	rh := header{op: h.op | opReply, tag: h.tag, nsid: h.nsid, arg: h.arg}
	s.mu.Lock()
	dev, ok := s.ns[h.nsid]
	s.mu.Unlock()
	if !ok {
		rh.status = stNoNamespace
		_ = s.write(rh, []byte(fmt.Sprintf("nsid %d", h.nsid)))
		return
	}
	var reply []byte
	var err error
	off := int64(h.arg)
	switch h.op {
	case opRead:
		if len(body) != 4 {
			err = fmt.Errorf("%w: read body", blockdev.ErrInvalid)
			break
		}
		n := uint32(body[0]) | uint32(body[1])<<8 | uint32(body[2])<<16 | uint32(body[3])<<24
		if n > MaxBody {
			err = fmt.Errorf("%w: read of %d bytes", blockdev.ErrInvalid, n)
			break
		}
		buf := readBufs.GetZeroed(int(n))
		defer readBufs.Put(buf)
		reply = (*buf)[:n]
		_, err = dev.ReadAt(reply, off)
	case opWrite:
		_, err = dev.WriteAt(body, off)
	case opZeroes:
		if len(body) != 8 {
			err = fmt.Errorf("%w: zeroes body", blockdev.ErrInvalid)
			break
		}
		var n int64
		for i := 7; i >= 0; i-- {
			n = n<<8 | int64(body[i])
		}
		err = blockdev.WriteZeroes(dev, off, n)
	}
	if err != nil {
		rh.status = stIOError
		switch {
		case errors.Is(err, blockdev.ErrOutOfRange):
			rh.status = stOutOfRange
		case errors.Is(err, blockdev.ErrInvalid):
			rh.status = stInvalid
		}
		reply = []byte(err.Error())
	}
	if werr := s.write(rh, reply); werr != nil {
		s.close()
	}
}

// readBufs recycles read replies' buffers: a fresh one per read (64 KiB to
// 256 KiB during a lvstore examine) cost its page faults and GC work on
// every read. A reply is written out before handleIO returns; a recycled
// buffer is zeroed as a fresh one is (GetZeroed): a device that leaves a
// hole untouched must not reply with an earlier read's data.
var readBufs = bufpool.Pool{Max: maxPooledRead}

// writeBufs recycles write requests' bodies (a lvstore's metadata arrives
// in strips of 64 KiB), which the body read fills whole: every device
// writes its data out or copies it before WriteAt returns, and handleIO
// has replied by then.
var writeBufs = bufpool.Pool{Max: maxPooledRead}

// maxPooledRead is the largest buffer kept for reuse.
const maxPooledRead = 1 << 20

package fabric

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/vda-io/vda/spdk/spdktest/blockdev"
)

// Sentinel errors. Callers match them with errors.Is.
var (
	ErrRefused      = errors.New("fabric: connection refused")
	ErrNotAllowed   = errors.New("fabric: host not allowed")
	ErrNoSubsystem  = errors.New("fabric: no such subsystem")
	ErrRejected     = errors.New("fabric: connect rejected")
	ErrAddrInUse    = errors.New("fabric: address in use")
	ErrNoListener   = errors.New("fabric: no such listener")
	ErrExists       = errors.New("fabric: already exists")
	ErrInvalid      = errors.New("fabric: invalid argument")
	ErrDisconnected = errors.New("fabric: disconnected")
	ErrNoNamespace  = errors.New("fabric: no such namespace")
	ErrIO           = errors.New("fabric: i/o error")
	ErrProtocol     = errors.New("fabric: protocol error")
	ErrClosed       = errors.New("fabric: closed")
)

// Frame opcodes.
const (
	opConnect   uint8 = 1
	opIdentify  uint8 = 2
	opRead      uint8 = 3
	opWrite     uint8 = 4
	opZeroes    uint8 = 5
	opKeepAlive uint8 = 6
	opAEN       uint8 = 7 // target -> host, tag 0: new ControllerInfo
	opReply     uint8 = 0x80
)

// Reply statuses.
const (
	stOK uint8 = iota
	stNotAllowed
	stNoSubsystem
	stRejected
	stNoNamespace
	stOutOfRange
	stIOError
	stInvalid
)

const (
	headerLen = 32
	magic     = 0x5646 // "VF"
	// MaxBody bounds one frame's body; larger host I/O is split.
	MaxBody = 4 << 20
)

// header is a frame header. The wire layout (little endian):
//
//	0  magic u16   2 op u8   3 status u8   4 body length u32
//	8  tag u64    16 nsid u32  20 reserved u32   24 offset/length u64
type header struct {
	op      uint8
	status  uint8
	bodyLen uint32
	tag     uint64
	nsid    uint32
	arg     uint64 // offset, or for reads the length
}

func (h header) put(b []byte) {
	le := binary.LittleEndian
	le.PutUint16(b[0:], magic)
	b[2], b[3] = h.op, h.status
	le.PutUint32(b[4:], h.bodyLen)
	le.PutUint64(b[8:], h.tag)
	le.PutUint32(b[16:], h.nsid)
	le.PutUint32(b[20:], 0)
	le.PutUint64(b[24:], h.arg)
}

// parseHeader decodes and checks a header.
func parseHeader(b []byte) (header, error) {
	if len(b) < headerLen {
		return header{}, fmt.Errorf("%w: short header", ErrProtocol)
	}
	le := binary.LittleEndian
	if le.Uint16(b[0:]) != magic {
		return header{}, fmt.Errorf("%w: bad magic", ErrProtocol)
	}
	h := header{op: b[2], status: b[3], bodyLen: le.Uint32(b[4:]), tag: le.Uint64(b[8:]), nsid: le.Uint32(b[16:]), arg: le.Uint64(b[24:])}
	if h.bodyLen > MaxBody+4096 {
		return header{}, fmt.Errorf("%w: body of %d bytes", ErrProtocol, h.bodyLen)
	}
	switch h.op &^ opReply {
	case opConnect, opIdentify, opRead, opWrite, opZeroes, opKeepAlive, opAEN:
	default:
		return header{}, fmt.Errorf("%w: opcode %#x", ErrProtocol, h.op)
	}
	return h, nil
}

// readFrame reads one frame (header and body).
func readFrame(fr *frameReader) (header, []byte, error) {
	h, err := fr.header()
	if err != nil {
		return header{}, nil, err
	}
	body := make([]byte, h.bodyLen)
	if err := fr.body(body); err != nil {
		return header{}, nil, err
	}
	return h, body, nil
}

// frameReadAhead is how much a frameReader reads at once: a header and a
// request's body (a read's length, a connect's NQNs) fit, a read reply's
// data does not.
const frameReadAhead = 512

// frameReader reads the frames of one connection. A frame is written with
// one writev, so its header and body arrive together: a read of up to
// frameReadAhead bytes takes a header with a small body (or several small
// frames) in one system call, where reading the header and then the body
// took two. A larger body is read past the buffer, straight into its
// destination. Not safe for concurrent use.
type frameReader struct {
	r      io.Reader
	buf    [frameReadAhead]byte
	lo, hi int // buf[lo:hi] is read and not yet consumed
}

func newFrameReader(r io.Reader) *frameReader { return &frameReader{r: r} }

// header reads and checks the next frame's header.
func (fr *frameReader) header() (header, error) {
	for fr.hi-fr.lo < headerLen {
		if fr.lo > 0 {
			fr.hi = copy(fr.buf[:], fr.buf[fr.lo:fr.hi])
			fr.lo = 0
		}
		n, err := fr.r.Read(fr.buf[fr.hi:])
		fr.hi += n
		if err != nil && fr.hi-fr.lo < headerLen {
			if err == io.EOF && fr.hi > fr.lo {
				err = io.ErrUnexpectedEOF // as io.ReadFull says it
			}
			return header{}, err
		}
	}
	h, err := parseHeader(fr.buf[fr.lo : fr.lo+headerLen])
	fr.lo += headerLen
	return h, err
}

// body fills p with the rest of the frame whose header was just read.
func (fr *frameReader) body(p []byte) error {
	n := copy(p, fr.buf[fr.lo:fr.hi])
	fr.lo += n
	if n == len(p) {
		return nil
	}
	_, err := io.ReadFull(fr.r, p[n:])
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// connectBody is the body of a connect request.
type connectBody struct {
	SubNQN  string `json:"subnqn"`
	HostNQN string `json:"hostnqn"`
}

func decodeConnect(b []byte) (connectBody, error) {
	var c connectBody
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("%w: connect: %v", ErrProtocol, err)
	}
	if c.SubNQN == "" || c.HostNQN == "" {
		return c, fmt.Errorf("%w: connect without nqn", ErrProtocol)
	}
	return c, nil
}

func decodeInfo(b []byte) (ControllerInfo, error) {
	var ci ControllerInfo
	if err := json.Unmarshal(b, &ci); err != nil {
		return ci, fmt.Errorf("%w: controller info: %v", ErrProtocol, err)
	}
	return ci, nil
}

// statusError maps a reply status and message to an error.
func statusError(st uint8, msg string) error {
	var base error
	switch st {
	case stOK:
		return nil
	case stNotAllowed:
		base = ErrNotAllowed
	case stNoSubsystem:
		base = ErrNoSubsystem
	case stRejected:
		base = ErrRejected
	case stNoNamespace:
		base = ErrNoNamespace
	case stOutOfRange:
		return fmt.Errorf("%w: %w: %s", ErrIO, blockdev.ErrOutOfRange, msg)
	case stInvalid:
		base = ErrInvalid
	default:
		base = ErrIO
	}
	if msg == "" {
		return base
	}
	return fmt.Errorf("%w: %s", base, msg)
}

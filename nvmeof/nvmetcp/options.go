package nvmetcp

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"
	"unicode/utf8"
)

// Defaults for zero Options fields.
const (
	DefaultKeepAlive      = 10 * time.Second
	DefaultCommandTimeout = 10 * time.Second
	DefaultQueueDepth     = 32
	// MaxQueueDepth bounds Options.QueueDepth (the target may allow fewer:
	// CAP.MQES).
	MaxQueueDepth = 1024
	adminDepth    = 32
	maxNQNLen     = 223
)

// DialFunc opens a connection, like net.Dialer.DialContext.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Options tunes a connection to a controller. HostNQN is required; zero
// values of the other fields take the defaults.
type Options struct {
	// HostNQN identifies this host to the target (its allow-list).
	HostNQN string
	// HostID is the host identifier sent in Connect; zero derives one from
	// HostNQN (the UUID of a "nqn.2014-08.org.nvmexpress:uuid:" NQN, else a
	// name-based UUID of the NQN), so a host always presents the same ID.
	HostID [16]byte
	// Dial opens the TCP connections (one per queue); nil uses net.Dialer.
	Dial DialFunc
	// KeepAlive is the keep-alive timeout (KATO) asked for; Keep Alive
	// commands go out every KeepAlive/2. Negative: no keep-alive (KATO 0).
	// SPDK rounds KATO up to a multiple of 10 s.
	KeepAlive time.Duration
	// CommandTimeout bounds every command. A command without a response by
	// then fails the whole controller (ErrTimeout, ErrTransport).
	CommandTimeout time.Duration
	// QueueDepth is the number of I/O commands in flight at most.
	QueueDepth int
	// Logger receives lifecycle events (connected, failed); nil is silent.
	Logger *slog.Logger
}

// withDefaults validates o and fills in the defaults.
func (o Options) withDefaults() (Options, error) {
	if err := validNQN("host", o.HostNQN); err != nil {
		return o, err
	}
	switch {
	case o.CommandTimeout < 0:
		return o, fmt.Errorf("%w: negative command timeout %v", ErrInvalid, o.CommandTimeout)
	case o.QueueDepth < 0 || o.QueueDepth > MaxQueueDepth:
		return o, fmt.Errorf("%w: queue depth %d (want 1..%d)", ErrInvalid, o.QueueDepth, MaxQueueDepth)
	case o.KeepAlive > 0 && o.KeepAlive < time.Millisecond:
		return o, fmt.Errorf("%w: keep alive %v below 1 ms", ErrInvalid, o.KeepAlive)
	case o.KeepAlive/time.Millisecond > 1<<32-1:
		return o, fmt.Errorf("%w: keep alive %v too long", ErrInvalid, o.KeepAlive)
	}
	if o.HostID == ([16]byte{}) {
		o.HostID = HostIDFromNQN(o.HostNQN)
	}
	if o.Dial == nil {
		var d net.Dialer
		o.Dial = d.DialContext
	}
	if o.KeepAlive == 0 {
		o.KeepAlive = DefaultKeepAlive
	}
	if o.CommandTimeout == 0 {
		o.CommandTimeout = DefaultCommandTimeout
	}
	if o.QueueDepth == 0 {
		o.QueueDepth = DefaultQueueDepth
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// validNQN checks what the Connect data can carry: 1 to 223 bytes of
// UTF-8 without NUL.
func validNQN(what, nqn string) error {
	switch {
	case nqn == "":
		return fmt.Errorf("%w: empty %s NQN", ErrInvalid, what)
	case len(nqn) > maxNQNLen:
		return fmt.Errorf("%w: %s NQN of %d bytes (at most %d)", ErrInvalid, what, len(nqn), maxNQNLen)
	case !utf8.ValidString(nqn) || strings.ContainsRune(nqn, 0):
		return fmt.Errorf("%w: %s NQN %q is not UTF-8 text", ErrInvalid, what, nqn)
	}
	return nil
}

const uuidNQNPrefix = "nqn.2014-08.org.nvmexpress:uuid:"

// HostIDFromNQN is the host ID used when Options.HostID is zero: the UUID
// of a UUID-form NQN, otherwise a version-5 style UUID (SHA-1) of the NQN.
func HostIDFromNQN(nqn string) [16]byte {
	var id [16]byte
	if s, ok := strings.CutPrefix(nqn, uuidNQNPrefix); ok && len(s) == 36 {
		if b, err := hex.DecodeString(strings.ReplaceAll(s, "-", "")); err == nil && len(b) == 16 {
			copy(id[:], b)
			return id
		}
	}
	sum := sha1.Sum([]byte("nvmetcp host id\x00" + nqn))
	copy(id[:], sum[:16])
	id[6] = id[6]&0x0f | 0x50
	id[8] = id[8]&0x3f | 0x80
	return id
}

// validAddr checks a host:port address.
func validAddr(addr string) error {
	if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
		return fmt.Errorf("%w: address %q is not host:port", ErrInvalid, addr)
	}
	return nil
}

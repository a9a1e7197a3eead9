package nvmetcp

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinels. Errors returned by this package wrap them; test with
// errors.Is.
var (
	// ErrTransport: the connection failed (closed by the target, reset,
	// protocol violation, command timeout, keep-alive failure). Every command
	// in flight on that controller failed with it; the commands' outcome at
	// the target is unknown. It is never a status from the target.
	ErrTransport = errors.New("nvmetcp: transport failed")
	// ErrProtocol: the target broke the NVMe/TCP protocol. Always comes with
	// ErrTransport (the connection is torn down).
	ErrProtocol = errors.New("nvmetcp: protocol violation")
	// ErrTimeout: a command got no response within Options.CommandTimeout.
	// Always comes with ErrTransport (the connection is torn down, as Linux
	// does, because the command's identifier cannot be reused safely).
	ErrTimeout = errors.New("nvmetcp: command timed out")
	// ErrClosed: the Controller or Multipath was closed by its user.
	ErrClosed = errors.New("nvmetcp: closed")
	// ErrInvalid: the request or the options are wrong (misaligned, out of
	// range, empty NQN...). Nothing was sent.
	ErrInvalid = errors.New("nvmetcp: invalid request")
	// ErrNoNamespace: the namespace ID is not an active namespace of the
	// controller.
	ErrNoNamespace = errors.New("nvmetcp: no such namespace")
	// ErrPath: a *StatusError of status code type 3 (path related: ANA
	// inaccessible, persistent loss or transition, controller or host
	// pathing error). The same command may succeed on another path.
	ErrPath = errors.New("nvmetcp: path error")
	// ErrNoPath: a Multipath was given no path.
	ErrNoPath = errors.New("nvmetcp: no path")
)

// Status code types (SCT).
const (
	SCTGeneric         = 0x0
	SCTCommandSpecific = 0x1
	SCTMediaError      = 0x2
	SCTPath            = 0x3
	SCTVendor          = 0x7
)

// Status codes this package names (with their SCT).
const (
	SCInternalPathError    = 0x00 // SCT 3
	SCANAPersistentLoss    = 0x01 // SCT 3
	SCANAInaccessible      = 0x02 // SCT 3
	SCANATransition        = 0x03 // SCT 3
	SCControllerPathError  = 0x60 // SCT 3
	SCHostPathError        = 0x70 // SCT 3
	SCHostAborted          = 0x71 // SCT 3
	SCConnectInvalidHost   = 0x84 // SCT 1, Fabrics Connect: host not allowed
	SCConnectInvalidParam  = 0x82 // SCT 1, Fabrics Connect
	SCConnectBusy          = 0x81 // SCT 1, Fabrics Connect: controller busy
	SCLBAOutOfRange        = 0x80 // SCT 0
	SCInvalidNamespace     = 0x0b // SCT 0
	SCInvalidField         = 0x02 // SCT 0
	SCInternalError        = 0x06 // SCT 0
	SCAbortedSQDeletion    = 0x08 // SCT 0
	SCNamespaceNotReady    = 0x82 // SCT 0
	SCAbortRequested       = 0x07 // SCT 0
	SCCommandSequenceError = 0x0c // SCT 0
)

// StatusError is a command the target completed with a non-zero status.
type StatusError struct {
	SCT, SC uint8 // status code type and status code
	CRD     uint8 // command retry delay index (0: none)
	DNR     bool  // do not retry: the same command will fail again
	More    bool  // more information in the error log page
	Op      string
}

func (e *StatusError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "nvmetcp: %s: %s (SCT %d SC 0x%02x", e.Op, e.Text(), e.SCT, e.SC)
	if e.DNR {
		b.WriteString(", DNR")
	}
	if e.More {
		b.WriteString(", more")
	}
	b.WriteString(")")
	return b.String()
}

// Is makes errors.Is(err, ErrPath) true for path-related statuses.
func (e *StatusError) Is(target error) bool {
	return target == ErrPath && e.SCT == SCTPath
}

// Text describes the status in words.
func (e *StatusError) Text() string {
	switch e.SCT {
	case SCTGeneric:
		if s, ok := genericStatus[e.SC]; ok {
			return s
		}
		return "generic command status"
	case SCTCommandSpecific:
		if e.Op == "connect" {
			if s, ok := connectStatus[e.SC]; ok {
				return s
			}
		}
		if s, ok := specificStatus[e.SC]; ok {
			return s
		}
		return "command specific status"
	case SCTMediaError:
		if s, ok := mediaStatus[e.SC]; ok {
			return s
		}
		return "media or data integrity error"
	case SCTPath:
		if s, ok := pathStatus[e.SC]; ok {
			return s
		}
		return "path related status"
	case SCTVendor:
		return "vendor specific status"
	}
	return "reserved status code type"
}

var genericStatus = map[uint8]string{
	0x01: "invalid command opcode",
	0x02: "invalid field in command",
	0x03: "command ID conflict",
	0x04: "data transfer error",
	0x05: "commands aborted due to power loss notification",
	0x06: "internal error",
	0x07: "command abort requested",
	0x08: "command aborted due to SQ deletion",
	0x09: "command aborted due to failed fused command",
	0x0a: "command aborted due to missing fused command",
	0x0b: "invalid namespace or format",
	0x0c: "command sequence error",
	0x0d: "invalid SGL segment descriptor",
	0x0e: "invalid number of SGL descriptors",
	0x0f: "data SGL length invalid",
	0x10: "metadata SGL length invalid",
	0x11: "SGL descriptor type invalid",
	0x15: "operation denied",
	0x16: "SGL offset invalid",
	0x1c: "keep alive timer expired",
	0x1d: "keep alive timeout invalid",
	0x20: "namespace is write protected",
	0x21: "command interrupted",
	0x22: "transient transport error",
	0x80: "LBA out of range",
	0x81: "capacity exceeded",
	0x82: "namespace not ready",
	0x83: "reservation conflict",
	0x84: "format in progress",
}

var specificStatus = map[uint8]string{
	0x00: "completion queue invalid",
	0x01: "invalid queue identifier",
	0x02: "invalid queue size",
	0x03: "abort command limit exceeded",
	0x05: "asynchronous event request limit exceeded",
	0x09: "invalid log page",
	0x0d: "feature identifier not saveable",
	0x0e: "feature not changeable",
	0x0f: "feature not namespace specific",
	0x80: "conflicting attributes",
	0x81: "invalid protection information",
	0x82: "attempted write to read only range",
}

var connectStatus = map[uint8]string{
	0x80: "connect: incompatible format",
	0x81: "connect: controller busy",
	0x82: "connect: invalid parameters",
	0x83: "connect: restart discovery",
	0x84: "connect refused: host not allowed (invalid host)",
	0x90: "connect: log page changed",
	0x91: "connect: authentication required",
}

var mediaStatus = map[uint8]string{
	0x80: "write fault",
	0x81: "unrecovered read error",
	0x82: "end-to-end guard check error",
	0x83: "end-to-end application tag check error",
	0x84: "end-to-end reference tag check error",
	0x85: "compare failure",
	0x86: "access denied",
	0x87: "deallocated or unwritten logical block",
}

var pathStatus = map[uint8]string{
	SCInternalPathError:   "internal path error",
	SCANAPersistentLoss:   "asymmetric access persistent loss",
	SCANAInaccessible:     "asymmetric access inaccessible",
	SCANATransition:       "asymmetric access transition",
	SCControllerPathError: "controller pathing error",
	SCHostPathError:       "host pathing error",
	SCHostAborted:         "command aborted by host",
}

// IsPathError reports whether err is a path-related status (SCT 3): the
// command may succeed through another controller of the subsystem.
func IsPathError(err error) bool { return errors.Is(err, ErrPath) }

// IsTransportError reports whether the connection failed under err: not a
// status from the target, and the command's outcome is unknown.
func IsTransportError(err error) bool { return errors.Is(err, ErrTransport) }

// IsCommandError reports whether err is a status the target returned for
// the command itself (not path related): e.g. LBA out of range, invalid
// field, a media error.
func IsCommandError(err error) bool {
	var se *StatusError
	return errors.As(err, &se) && se.SCT != SCTPath
}

// transportErr wraps cause as a transport failure.
func transportErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrTransport}, args...)...)
}

// protocolErr wraps a protocol violation (also a transport failure).
func protocolErr(format string, args ...any) error {
	return fmt.Errorf("%w: %w: "+format, append([]any{ErrTransport, ErrProtocol}, args...)...)
}

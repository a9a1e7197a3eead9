package spdk

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Match them with errors.Is; a remote SPDK failure is an *Error whose Is method
// maps SPDK's codes (and, where codes are ambiguous, its messages) onto these.
var (
	// ErrNotFound: the object does not exist (-19 ENODEV, -2 ENOENT, and the positive 22
	// "Controller ... does not exist" of bdev_nvme_get_controllers).
	ErrNotFound = errors.New("spdk: not found")
	// ErrExists: the object already exists (-17 EEXIST, -114 EALREADY of
	// bdev_nvme_attach_controller, and -32602/-32603 replies whose text says so).
	ErrExists = errors.New("spdk: already exists")
	// ErrBusy: the object is in use (-16 EBUSY, or "Device or resource busy").
	ErrBusy = errors.New("spdk: busy")
	// ErrNoSpace: not enough free space (-28 ENOSPC, or "No space left on device").
	ErrNoSpace = errors.New("spdk: no space left")
	// ErrNotPermitted: the operation is refused, e.g. the base bdev is already claimed
	// (-1 EPERM "Operation not permitted", also sent as -32603 by bdev_lvol_delete).
	ErrNotPermitted = errors.New("spdk: operation not permitted")
	// ErrWrongPhase: the method is not callable in the current framework phase (-1 with a
	// "Method may only be called ... framework ..." message).
	ErrWrongPhase = errors.New("spdk: wrong framework phase")
	// ErrInvalidArgument: -22 EINVAL.
	ErrInvalidArgument = errors.New("spdk: invalid argument")
	// ErrTimeout: SPDK itself timed out (-110 ETIMEDOUT, e.g. bdev_get_bdevs with timeout).
	ErrTimeout = errors.New("spdk: timed out")
	// ErrInvalidRequest: -32600, the request was not a valid JSON-RPC request.
	ErrInvalidRequest = errors.New("spdk: invalid request")
	// ErrMethodNotFound: -32601, the method does not exist in this SPDK.
	ErrMethodNotFound = errors.New("spdk: method not found")
	// ErrInvalidParams: -32602, and the parameter decode failures SPDK reports as -32700
	// (bdev_raid_create) or -32603 "spdk_json_decode_object failed".
	ErrInvalidParams = errors.New("spdk: invalid params")
	// ErrInternal: -32603.
	ErrInternal = errors.New("spdk: internal error")

	// ErrOutcomeUnknown: the connection broke (or the caller gave up) after a state-changing
	// request was sent; SPDK may or may not have executed it. Such calls are never replayed:
	// read the state back to find out.
	ErrOutcomeUnknown = errors.New("spdk: outcome unknown")
	// ErrConnection: the connection to SPDK could not be established or was lost.
	ErrConnection = errors.New("spdk: connection failed")
	// ErrClosed: the Client was closed.
	ErrClosed = errors.New("spdk: client closed")
	// ErrBadResponse: SPDK's reply could not be decoded into the expected result type.
	ErrBadResponse = errors.New("spdk: malformed response")
	// ErrBadRequest: the request was refused locally before anything was sent.
	ErrBadRequest = errors.New("spdk: bad request")
)

// JSON-RPC and errno codes SPDK uses.
const (
	CodeParseError     = -32700
	CodeInvalidRequest = -32600
	CodeMethodNotFound = -32601
	CodeInvalidParams  = -32602
	CodeInternalError  = -32603

	codeEPERM     = -1
	codeENOENT    = -2
	codeEBUSY     = -16
	codeEEXIST    = -17
	codeENODEV    = -19
	codeEINVAL    = -22
	codeENOSPC    = -28
	codeETIMEDOUT = -110
	codeEALREADY  = -114
)

// Error is a failure reported by SPDK: the JSON-RPC error object of a reply, plus the method
// that was called. Use errors.Is with the sentinels above rather than comparing codes.
type Error struct {
	Method  string
	Code    int
	Message string
}

// Error implements error.
func (e *Error) Error() string {
	return fmt.Sprintf("spdk: %s: %s (code %d)", e.Method, strings.TrimSpace(e.Message), e.Code)
}

const decodeFailed = "spdk_json_decode_object failed"

// Is maps SPDK codes to the package sentinels. Several sentinels can match one error (a
// -32602 "File exists" is both ErrInvalidParams and ErrExists).
func (e *Error) Is(target error) bool {
	msg := e.Message
	switch target {
	case ErrNotFound:
		return e.Code == codeENODEV || e.Code == codeENOENT ||
			(e.Code == -codeEINVAL && strings.Contains(msg, "does not exist"))
	case ErrExists:
		return e.Code == codeEEXIST || e.Code == codeEALREADY ||
			((e.Code == CodeInvalidParams || e.Code == CodeInternalError) &&
				(strings.Contains(msg, "File exists") || strings.Contains(msg, "already exists")))
	case ErrBusy:
		return e.Code == codeEBUSY || strings.Contains(msg, "Device or resource busy")
	case ErrNoSpace:
		return e.Code == codeENOSPC || strings.Contains(msg, "No space left on device")
	case ErrNotPermitted:
		return (e.Code == codeEPERM || e.Code == CodeInternalError) &&
			strings.Contains(msg, "Operation not permitted")
	case ErrWrongPhase:
		return e.Code == codeEPERM && isPhaseMessage(msg)
	case ErrInvalidArgument:
		return e.Code == codeEINVAL
	case ErrTimeout:
		return e.Code == codeETIMEDOUT
	case ErrInvalidRequest:
		return e.Code == CodeInvalidRequest
	case ErrMethodNotFound:
		return e.Code == CodeMethodNotFound
	case ErrInvalidParams:
		return e.Code == CodeInvalidParams ||
			((e.Code == CodeParseError || e.Code == CodeInternalError) && msg == decodeFailed)
	case ErrInternal:
		return e.Code == CodeInternalError
	}
	return false
}

func isPhaseMessage(msg string) bool {
	return strings.HasPrefix(msg, "Method may only be called") && strings.Contains(msg, "framework")
}

package agent

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Errors of the package. Match them with errors.Is; Status maps them to
// gRPC codes.
var (
	// ErrConfig: an invalid Config (New).
	ErrConfig = errors.New("agent: invalid config")
	// ErrInvalidArgument: a malformed request, or one for the other role.
	ErrInvalidArgument = errors.New("agent: invalid argument")
	// ErrStale: a request whose generation, or the epoch of one of its disk
	// arrays, is older than what the agent last applied.
	ErrStale = errors.New("agent: stale desired state")
	// ErrWrongNode: a request for another node than Config.NodeID.
	ErrWrongNode = errors.New("agent: desired state of another node")
	// ErrUnavailable: SPDK is not there (its socket refuses or closes the
	// connection). A caller may take it as proof that the node's data plane
	// is gone.
	ErrUnavailable = errors.New("agent: spdk unavailable")
	// ErrSPDKSlow: SPDK accepted the request but did not answer in time. It
	// may only be busy: a caller must not take it as proof that SPDK is gone.
	ErrSPDKSlow = errors.New("agent: spdk did not answer in time")
	// ErrPermissionDenied: the caller is not in Config.AllowedCallers.
	ErrPermissionDenied = errors.New("agent: caller not allowed")
	// ErrState: the state file in Config.StateDir cannot be read or written.
	ErrState = errors.New("agent: state file")
	// ErrInternal: a bug (a recovered panic).
	ErrInternal = errors.New("agent: internal error")
)

// Status maps an error to a gRPC status: the one mapping between the
// agent's errors and gRPC codes. The message is the error's text.
func Status(err error) *status.Status {
	if err == nil {
		return nil
	}
	if s, ok := status.FromError(err); ok {
		return s
	}
	return status.New(code(err), err.Error())
}

func code(err error) codes.Code {
	switch {
	case errors.Is(err, ErrInvalidArgument):
		return codes.InvalidArgument
	case errors.Is(err, ErrStale), errors.Is(err, ErrWrongNode):
		return codes.FailedPrecondition
	case errors.Is(err, ErrSPDKSlow):
		return codes.DeadlineExceeded
	case errors.Is(err, ErrUnavailable):
		return codes.Unavailable
	case errors.Is(err, ErrPermissionDenied):
		return codes.PermissionDenied
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded
	default:
		return codes.Internal
	}
}

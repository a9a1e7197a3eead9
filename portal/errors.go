package portal

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/store"
)

// Status maps an error from vda.Cluster to a gRPC status: the one mapping
// between VDA's errors and gRPC codes. The message is the error's text.
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
	case errors.Is(err, store.ErrCompacted): // before FailedPrecondition, which it also wraps
		return codes.OutOfRange
	case errors.Is(err, vda.ErrInvalidArgument):
		return codes.InvalidArgument
	case errors.Is(err, vda.ErrNotFound):
		return codes.NotFound
	case errors.Is(err, vda.ErrAlreadyExists):
		return codes.AlreadyExists
	case errors.Is(err, vda.ErrFailedPrecondition):
		return codes.FailedPrecondition
	case errors.Is(err, vda.ErrResourceExhausted):
		return codes.ResourceExhausted
	case errors.Is(err, store.ErrConflict):
		return codes.Aborted
	case errors.Is(err, store.ErrClosed):
		return codes.Unavailable
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded
	default:
		return codes.Internal
	}
}

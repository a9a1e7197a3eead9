package portal

import (
	"context"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Metrics observes the portal's calls. Package metrics implements it over
// Prometheus; embedders may pass their own.
type Metrics interface {
	// ObserveRequest is called once per unary call, after it ended: method
	// is the full gRPC method name, code the status it returned.
	ObserveRequest(method string, code codes.Code, d time.Duration)
}

// observe is the outermost interceptor: it sees refused callers too.
func (s *Server) observe(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if s.metrics == nil {
		return h(ctx, req)
	}
	start := time.Now()
	resp, err := h(ctx, req)
	s.metrics.ObserveRequest(info.FullMethod, status.Code(err), time.Since(start))
	return resp, err
}

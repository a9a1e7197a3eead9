package portal

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime/debug"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/api/portalpb"
	"github.com/vda-io/vda/mtls"
)

// ErrConfig is returned for an invalid Config.
var ErrConfig = errors.New("portal: invalid config")

// Config configures a Server.
type Config struct {
	// Cluster is what the server serves (required).
	Cluster *vda.Cluster
	// Logger gets lifecycle and per-RPC debug logs; nil is silent.
	Logger hclog.Logger
	// TLS enables mutual TLS with roles: the server's certificate must name
	// vda://portal/<name>, and callers must present a certificate of the CA
	// whose role Policy allows.
	TLS mtls.Config
	// Insecure serves plaintext: anyone who reaches the port can change the
	// cluster. New refuses a Config with neither TLS nor Insecure.
	Insecure bool
	// Metrics, when set, observes every unary call with its status code and
	// latency (package metrics implements it); nil means none.
	Metrics Metrics
}

// DefaultConfig returns a Config serving c with mutual TLS t.
func DefaultConfig(c *vda.Cluster, t mtls.Config) Config { return Config{Cluster: c, TLS: t} }

// Policy is who may call the portal over mutual TLS: operators (admin)
// and monitors may read and change the cluster; only operators may unbind
// a node from its agent. Portals and agents may call nothing.
func Policy() mtls.Policy {
	rw := []mtls.Role{mtls.RoleAdmin, mtls.RoleMonitor}
	return mtls.Policy{
		"/" + portalpb.Portal_ServiceDesc.ServiceName + "/*": rw,
		portalpb.Portal_UnbindDn_FullMethodName:              {mtls.RoleAdmin},
		portalpb.Portal_UnbindCn_FullMethodName:              {mtls.RoleAdmin},
	}
}

// Server is the portal gRPC server.
type Server struct {
	portalpb.UnimplementedPortalServer
	c    *vda.Cluster
	log  hclog.Logger
	grpc *grpc.Server

	metrics Metrics

	// stopping ends when Serve stops: long-lived streams (Watch) end then,
	// or GracefulStop would wait for them forever.
	stopping context.Context
	stop     context.CancelFunc
}

// New returns a Server for cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Cluster == nil {
		return nil, fmt.Errorf("%w: no cluster", ErrConfig)
	}
	s := &Server{c: cfg.Cluster, log: cfg.Logger, metrics: cfg.Metrics}
	s.stopping, s.stop = context.WithCancel(context.Background())
	if s.log == nil {
		s.log = hclog.NewNullLogger()
	}
	s.log = s.log.Named("portal")
	opts, err := s.serverOptions(cfg)
	if err != nil {
		return nil, err
	}
	s.grpc = grpc.NewServer(opts...)
	portalpb.RegisterPortalServer(s.grpc, s)
	return s, nil
}

func (s *Server) serverOptions(cfg Config) ([]grpc.ServerOption, error) {
	// Malformed protobuf is the caller's fault (InvalidArgument), not gRPC's
	// default Internal: the codec notes it, rejectMalformed answers.
	codec := newRequestCodec()
	if !cfg.TLS.Enabled() {
		if !cfg.Insecure {
			return nil, fmt.Errorf("%w: no TLS: set TLS (mutual TLS with roles), or Insecure to let anyone "+
				"who reaches the portal change the cluster", ErrConfig)
		}
		s.log.Warn("INSECURE: no TLS: anyone who reaches the portal can change or delete the cluster's arrays")
		return []grpc.ServerOption{grpc.ForceServerCodecV2(codec),
			grpc.ChainUnaryInterceptor(s.observe, s.logging, codec.rejectMalformed, s.recovery),
			grpc.ChainStreamInterceptor(s.streamRecovery)}, nil
	}
	id, err := cfg.TLS.Identity()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if id.Role != mtls.RolePortal {
		return nil, fmt.Errorf("%w: the certificate names %s, not a portal (vda://portal/<name>)", ErrConfig, id)
	}
	tc, err := cfg.TLS.ServerTLS()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	p := Policy()
	return []grpc.ServerOption{grpc.Creds(credentials.NewTLS(tc)), grpc.ForceServerCodecV2(codec),
		grpc.ChainUnaryInterceptor(s.observe, s.roles(mtls.UnaryServerInterceptor(p)), s.logging, codec.rejectMalformed, s.recovery),
		grpc.ChainStreamInterceptor(mtls.StreamServerInterceptor(p), s.streamRecovery)}, nil
}

// roles wraps the policy interceptor to log refused callers.
func (s *Server) roles(check grpc.UnaryServerInterceptor) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		called := false
		resp, err := check(ctx, req, info, func(ctx context.Context, req any) (any, error) {
			called = true
			return h(ctx, req)
		})
		if !called {
			s.log.Warn("refused caller", "method", info.FullMethod, "error", err)
		}
		return resp, err
	}
}

// Serve serves on lis until ctx ends, then stops gracefully (in-flight
// RPCs finish) and returns.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	s.log.Info("serving", "addr", lis.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- s.grpc.Serve(lis) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		s.stop() // end the Watch streams, which would never finish
		s.grpc.GracefulStop()
		<-errc
		s.log.Info("stopped")
		return nil
	}
}

// recovery turns a panic in a handler into codes.Internal.
func (s *Server) recovery(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic in handler", "method", info.FullMethod, "panic", r, "stack", string(debug.Stack()))
			resp, err = nil, status.Errorf(codes.Internal, "internal error in %s", info.FullMethod)
		}
	}()
	return h(ctx, req)
}

// logging logs each RPC and maps its error to a gRPC status.
func (s *Server) logging(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := h(ctx, req)
	if err != nil {
		st := Status(err)
		s.log.Debug("rpc failed", "method", info.FullMethod, "code", st.Code().String(), "error", st.Message(), "duration", time.Since(start))
		return nil, st.Err()
	}
	s.log.Trace("rpc", "method", info.FullMethod, "duration", time.Since(start))
	return resp, nil
}

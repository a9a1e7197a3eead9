package portal

import (
	"context"
	"crypto/tls"
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

// TLSConfig names PEM files (see package mtls). All empty means plaintext;
// CertFile and KeyFile are the server's (or client's) certificate, CAFile
// the CA that signs the other side's, which must then present one (mutual
// TLS).
type TLSConfig = mtls.Config

// ServerTLS returns the server side of mutual TLS for t. Errors wrap
// ErrConfig (and mtls.ErrConfig).
func ServerTLS(t TLSConfig) (*tls.Config, error) {
	tc, err := t.ServerTLS()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return tc, nil
}

// ClientTLS returns the client side of mutual TLS for t. Errors wrap
// ErrConfig (and mtls.ErrConfig).
func ClientTLS(t TLSConfig) (*tls.Config, error) {
	tc, err := t.ClientTLS()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return tc, nil
}

// Config configures a Server.
type Config struct {
	// Cluster is what the server serves (required).
	Cluster *vda.Cluster
	// Logger gets lifecycle and per-RPC debug logs; nil is silent.
	Logger hclog.Logger
	// TLS enables mutual TLS when set.
	TLS TLSConfig
}

// DefaultConfig returns a Config serving c over plaintext.
func DefaultConfig(c *vda.Cluster) Config { return Config{Cluster: c} }

// Server is the portal gRPC server.
type Server struct {
	portalpb.UnimplementedPortalServer
	c    *vda.Cluster
	log  hclog.Logger
	grpc *grpc.Server
}

// New returns a Server for cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Cluster == nil {
		return nil, fmt.Errorf("%w: no cluster", ErrConfig)
	}
	s := &Server{c: cfg.Cluster, log: cfg.Logger}
	if s.log == nil {
		s.log = hclog.NewNullLogger()
	}
	s.log = s.log.Named("portal")
	codec := newRequestCodec()
	opts := []grpc.ServerOption{grpc.ForceServerCodecV2(codec), grpc.ChainUnaryInterceptor(s.logging, codec.rejectMalformed, s.recovery)}
	if cfg.TLS.Enabled() {
		tc, err := ServerTLS(cfg.TLS)
		if err != nil {
			return nil, err
		}
		opts = append(opts, grpc.Creds(credentials.NewTLS(tc)))
	}
	s.grpc = grpc.NewServer(opts...)
	portalpb.RegisterPortalServer(s.grpc, s)
	return s, nil
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

package mtls

import (
	"context"
	"slices"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Policy says which roles may call which gRPC methods. Keys are full method
// names ("/vda.agent.v1.Agent/Sync"); a key "/<service>/*" covers the
// methods of that service without a key of their own. A method the policy
// does not cover is refused: a new method is closed until someone says who
// may call it.
type Policy map[string][]Role

// Roles returns the roles allowed to call method.
func (p Policy) Roles(method string) []Role {
	if roles, ok := p[method]; ok {
		return roles
	}
	if i := strings.LastIndexByte(method, '/'); i > 0 {
		return p[method[:i+1]+"*"]
	}
	return nil
}

// Authorize checks the caller of method, from a server handler's ctx: its
// verified certificate must name a role the policy allows. It returns the
// caller's identity, or a gRPC status error: Unauthenticated without a
// certificate identity, PermissionDenied for a role not allowed.
func (p Policy) Authorize(ctx context.Context, method string) (Identity, error) {
	id, err := PeerIdentity(ctx)
	if err != nil {
		return Identity{}, status.Error(codes.Unauthenticated, err.Error())
	}
	if !slices.Contains(p.Roles(method), id.Role) {
		return id, status.Errorf(codes.PermissionDenied, "mtls: %s may not call %s", id, method)
	}
	return id, nil
}

// AuthorizeLocal is Authorize for a caller in the server's own process,
// which has no certificate and says who it acts as (caller): an embedder's
// monitor calling an agent directly, without a network in between. The
// caller must be a valid identity of a role the policy allows for method;
// the returned context carries it for CallerIdentity. Nothing a network
// caller sends can reach this path: the identity is an argument of the
// server's own code, never read from the request.
func (p Policy) AuthorizeLocal(ctx context.Context, caller Identity, method string) (context.Context, error) {
	if err := caller.Validate(); err != nil {
		return ctx, status.Error(codes.Unauthenticated, err.Error())
	}
	if !slices.Contains(p.Roles(method), caller.Role) {
		return ctx, status.Errorf(codes.PermissionDenied, "mtls: %s may not call %s", caller, method)
	}
	return context.WithValue(ctx, identityKey{}, caller), nil
}

type identityKey struct{}

// CallerIdentity returns the identity the policy interceptors authorized
// for this call (false outside them).
func CallerIdentity(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(Identity)
	return id, ok
}

// UnaryServerInterceptor refuses unary calls the policy does not allow
// (Authorize); an allowed call's handler finds the caller with
// CallerIdentity.
func UnaryServerInterceptor(p Policy) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		id, err := p.Authorize(ctx, info.FullMethod)
		if err != nil {
			return nil, err
		}
		return h(context.WithValue(ctx, identityKey{}, id), req)
	}
}

// StreamServerInterceptor is UnaryServerInterceptor for streams.
func StreamServerInterceptor(p Policy) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		id, err := p.Authorize(ss.Context(), info.FullMethod)
		if err != nil {
			return err
		}
		return h(srv, &identityStream{ServerStream: ss, ctx: context.WithValue(ss.Context(), identityKey{}, id)})
	}
}

type identityStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *identityStream) Context() context.Context { return s.ctx }

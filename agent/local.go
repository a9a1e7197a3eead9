package agent

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/mtls"
)

// Local returns a client that calls this agent in the same process, as
// caller, without a network in between (an embedder's monitor, tests). A
// call is checked and answered as one over gRPC would be: caller must be a
// role Policy allows for the method (a monitor for Sync and Reanchor),
// whether or not the agent has TLS; requests for another node are refused;
// errors are gRPC status errors with the codes Status gives; requests and
// replies are copies, never shared with the agent. Once the agent stopped
// (Close, or Serve returned) every call fails with Unavailable, as a stopped
// agent's port refuses connections. Config.AllowedCallers, a check of
// network source addresses, does not apply to a caller in the process; the
// outgoing metadata of a call's context is the incoming metadata of the
// handler's, and call options are ignored.
//
// The caller's identity is what the embedder says it is: no certificate
// proves it. Only code holding the *Agent can make such a client; callers
// over the network are checked as before.
func (a *Agent) Local(caller mtls.Identity) agentpb.AgentClient {
	return &localClient{a: a, caller: caller}
}

type localClient struct {
	a      *Agent
	caller mtls.Identity
}

var _ agentpb.AgentClient = (*localClient)(nil)

func (c *localClient) Sync(ctx context.Context, req *agentpb.SyncRequest, _ ...grpc.CallOption) (*agentpb.SyncReply, error) {
	return localCall(ctx, c, agentpb.Agent_Sync_FullMethodName, req, c.a.Sync)
}

func (c *localClient) Health(ctx context.Context, req *agentpb.HealthRequest, _ ...grpc.CallOption) (*agentpb.HealthReply, error) {
	return localCall(ctx, c, agentpb.Agent_Health_FullMethodName, req, c.a.Health)
}

func (c *localClient) Reanchor(ctx context.Context, req *agentpb.ReanchorRequest, _ ...grpc.CallOption) (*agentpb.ReanchorReply, error) {
	return localCall(ctx, c, agentpb.Agent_Reanchor_FullMethodName, req, c.a.Reanchor)
}

// localCall runs handler h for method as the gRPC server would: the role
// policy for the caller, then the error mapping and panic recovery of every
// call (the interceptors of serverOptions after the network checks).
func localCall[Req, Rep proto.Message](ctx context.Context, c *localClient, method string, req Req,
	h func(context.Context, Req) (Rep, error)) (Rep, error) {
	var zero Rep
	a := c.a
	a.localMu.RLock() // Close waits for the calls in flight
	defer a.localMu.RUnlock()
	if a.stopCtx.Err() != nil {
		return zero, status.Error(codes.Unavailable, "agent: stopped")
	}
	if err := ctx.Err(); err != nil {
		return zero, status.FromContextError(err).Err()
	}
	if md, ok := metadata.FromOutgoingContext(ctx); ok {
		ctx = metadata.NewIncomingContext(ctx, md)
	}
	ctx, err := Policy().AuthorizeLocal(ctx, c.caller, method)
	if err != nil {
		a.log.Warn("refused caller", "method", method, "caller", c.caller.String(), "error", err)
		return zero, err
	}
	info := &grpc.UnaryServerInfo{Server: a, FullMethod: method}
	in := proto.Clone(req)
	resp, err := a.errors(ctx, in, info, func(ctx context.Context, req any) (any, error) {
		return a.recovery(ctx, req, info, func(ctx context.Context, req any) (any, error) {
			return h(ctx, req.(Req))
		})
	})
	if err != nil {
		return zero, err
	}
	out, ok := resp.(Rep)
	if !ok {
		return zero, status.Error(codes.Internal, fmt.Sprintf("agent: %s answered %T", method, resp))
	}
	return proto.Clone(out).(Rep), nil
}

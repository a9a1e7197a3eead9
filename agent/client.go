package agent

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/mtls"
)

// Client is a connection to one agent: an agentpb.AgentClient plus Close.
type Client struct {
	agentpb.AgentClient
	conn *grpc.ClientConn
}

// DialOption configures Dial.
type DialOption func(*dialOptions)

type dialOptions struct {
	tls  mtls.Config
	grpc []grpc.DialOption
}

// WithTLS makes Dial use mutual TLS with c (its certificate, and the CA that
// signs the agent's). Without it, Dial uses plaintext.
func WithTLS(c mtls.Config) DialOption { return func(o *dialOptions) { o.tls = c } }

// WithGRPCOptions adds gRPC dial options (a custom dialer, interceptors).
func WithGRPCOptions(opts ...grpc.DialOption) DialOption {
	return func(o *dialOptions) { o.grpc = append(o.grpc, opts...) }
}

// Dial returns a Client of the agent at addr (host:port, or any gRPC
// target). It starts connecting in the background and does not wait: a
// connection failure (an agent that is down, or refuses the caller's
// certificate) is the error of the first RPC, with code Unavailable. ctx
// only bounds Dial itself.
func Dial(ctx context.Context, addr string, opts ...DialOption) (*Client, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var o dialOptions
	for _, opt := range opts {
		opt(&o)
	}
	creds := insecure.NewCredentials()
	if o.tls.Enabled() {
		tc, err := o.tls.ClientTLS()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		creds = credentials.NewTLS(tc)
	}
	conn, err := grpc.NewClient(addr, append([]grpc.DialOption{grpc.WithTransportCredentials(creds)}, o.grpc...)...)
	if err != nil {
		return nil, fmt.Errorf("%w: agent %s: %w", ErrConfig, addr, err)
	}
	conn.Connect()
	return &Client{AgentClient: agentpb.NewAgentClient(conn), conn: conn}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

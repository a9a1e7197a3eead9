package devcluster_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/vda-io/vda/agent"
	"github.com/vda-io/vda/api/agentpb"
	pb "github.com/vda-io/vda/api/portalpb"
	"github.com/vda-io/vda/mtls"
	"github.com/vda-io/vda/nvmeof"
)

// The dev cluster is secure by default, as a deployment: the CLI's admin
// certificate in TLSDir drives the portal, plaintext does not, and an
// agent takes desired state from the monitor only.
func TestSecureByDefault(t *testing.T) {
	dir := t.TempDir()
	c, _ := start(t, dir, nil)
	require.Equal(t, filepath.Join(dir, "tls"), c.TLSDir())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	tc, err := c.AdminTLS().ClientTLS()
	require.NoError(t, err)
	conn, err := grpc.NewClient(c.PortalAddr(), grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	require.NoError(t, err)
	defer conn.Close()
	sum, err := pb.NewPortalClient(conn).GetClusterSummary(ctx, &pb.GetClusterSummaryRequest{})
	require.NoError(t, err)
	require.EqualValues(t, 2, sum.GetDnCnt())

	plain, err := grpc.NewClient(c.PortalAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer plain.Close()
	_, err = pb.NewPortalClient(plain).GetClusterSummary(ctx, &pb.GetClusterSummaryRequest{})
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)

	dn := c.Nodes()[0]
	a, err := agent.Dial(ctx, dn.Name(), agent.WithTLS(c.AdminTLS()))
	require.NoError(t, err)
	defer a.Close()
	h, err := a.Health(ctx, &agentpb.HealthRequest{})
	require.NoError(t, err)
	require.Equal(t, dn.Name(), h.NodeName, "the agent's certificate names its node")
	_, err = a.Sync(ctx, &agentpb.SyncRequest{Generation: 1, StoreRevision: 1, NodeId: nvmeof.NewID(), AgentId: h.AgentId,
		NodeName: dn.Name(), State: &agentpb.SyncRequest_Dn{Dn: &agentpb.DnState{}}})
	require.Equal(t, codes.PermissionDenied, status.Code(err), "the CLI's certificate may not wipe a node: %v", err)
	id, err := c.AdminTLS().Identity()
	require.NoError(t, err)
	require.Equal(t, mtls.RoleAdmin, id.Role)
}

package portal_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pb "github.com/vda-io/vda/api/portalpb"
	"github.com/vda-io/vda/portal"
)

func TestSwitchoverDa(t *testing.T) {
	p := dial(t, serve(t, newStore(t), portal.Config{Insecure: true}), insecure.NewCredentials())
	seed(t, p)
	ctx := context.Background()
	r, err := p.SwitchoverDa(ctx, &pb.SwitchoverDaRequest{DaName: "da0", CntlrIdx: 1})
	require.NoError(t, err)
	require.EqualValues(t, 2, r.GetDaMsg().GetEpoch())
	for _, c := range r.GetDaMsg().GetCntlrList() {
		require.Equal(t, c.GetCntlrIdx() == 1, c.GetPrimary())
		if c.GetPrimary() {
			require.Equal(t, c.GetCntlrId(), r.GetDaMsg().GetPrimaryCntlrId())
		}
	}
	for req, want := range map[*pb.SwitchoverDaRequest]codes.Code{
		{DaName: "da0", CntlrIdx: 1}:  codes.FailedPrecondition, // already the primary
		{DaName: "da0", CntlrIdx: 7}:  codes.InvalidArgument,
		{DaName: "nope", CntlrIdx: 0}: codes.NotFound,
		{DaName: "", CntlrIdx: 0}:     codes.InvalidArgument,
	} {
		_, err := p.SwitchoverDa(ctx, req)
		require.Equal(t, want, status.Code(err), "%v: %v", req, err)
	}
}

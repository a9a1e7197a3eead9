package portal_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	pb "github.com/vda-io/vda/api/portalpb"
	"github.com/vda-io/vda/portal"
)

// ModifyDa grows da_size and sets QoS over gRPC: every refusal has its
// code and changes nothing; the reply and GetDa show the new values; a
// repeated request answers the same.
func TestModifyDaSizeAndQoS(t *testing.T) {
	ctx := context.Background()
	p := dial(t, serve(t, newStore(t), portal.Config{Insecure: true}), insecure.NewCredentials())
	seed(t, p)
	before, err := p.GetDa(ctx, &pb.GetDaRequest{DaName: "da0"})
	require.NoError(t, err)
	da := before.GetDaMsg()
	require.NotNil(t, da.GetQos(), "da get shows the QoS, zero when unlimited")
	require.True(t, proto.Equal(&pb.QosMsg{}, da.GetQos()))

	// da0 is 32 MiB on a raid of 2 x 20 MiB with 4 MiB clusters: 9 fit.
	for _, tc := range []struct {
		name string
		req  *pb.ModifyDaRequest
		code codes.Code
		msg  string
	}{
		{"shrink", &pb.ModifyDaRequest{DaName: "da0", DaSize: proto.Uint64(16 << 20)}, codes.FailedPrecondition, "shrinking is refused"},
		{"too big", &pb.ModifyDaRequest{DaName: "da0", DaSize: proto.Uint64(40 << 20)}, codes.ResourceExhausted, "at most 37748736 bytes"},
		{"not a cluster", &pb.ModifyDaRequest{DaName: "da0", DaSize: proto.Uint64(33 << 20)}, codes.InvalidArgument, "multiple of 4194304"},
		{"zero", &pb.ModifyDaRequest{DaName: "da0", DaSize: proto.Uint64(0)}, codes.InvalidArgument, "positive"},
		{"iops", &pb.ModifyDaRequest{DaName: "da0", Qos: &pb.QosMsg{RwIosPerSec: 999}}, codes.InvalidArgument, "multiple of 1000"},
		{"mbps", &pb.ModifyDaRequest{DaName: "da0", Qos: &pb.QosMsg{RMbytesPerSec: 1 << 62}}, codes.InvalidArgument, "r_mbytes_per_sec"},
		{"good qos, bad size", &pb.ModifyDaRequest{DaName: "da0", DaSize: proto.Uint64(8 << 20), Qos: &pb.QosMsg{RwIosPerSec: 1000}}, codes.FailedPrecondition, "shrinking"},
		{"no da", &pb.ModifyDaRequest{DaName: "da9", DaSize: proto.Uint64(36 << 20)}, codes.NotFound, "da9"},
	} {
		_, err := p.ModifyDa(ctx, tc.req)
		require.Equal(t, tc.code, status.Code(err), "%s: %v", tc.name, err)
		require.ErrorContains(t, err, tc.msg, tc.name)
	}
	after, err := p.GetDa(ctx, &pb.GetDaRequest{DaName: "da0"})
	require.NoError(t, err)
	require.True(t, proto.Equal(before, after), "refused requests change nothing")

	req := &pb.ModifyDaRequest{DaName: "da0", DaSize: proto.Uint64(36 << 20),
		Qos: &pb.QosMsg{RwIosPerSec: 20000, RwMbytesPerSec: 200, RMbytesPerSec: 150, WMbytesPerSec: 100}}
	rep, err := p.ModifyDa(ctx, req)
	require.NoError(t, err)
	require.EqualValues(t, 36<<20, rep.GetDaMsg().GetDaSize())
	require.True(t, proto.Equal(req.Qos, rep.GetDaMsg().GetQos()))
	again, err := p.ModifyDa(ctx, req)
	require.NoError(t, err, "repeated")
	require.True(t, proto.Equal(rep, again))
	got, err := p.GetDa(ctx, &pb.GetDaRequest{DaName: "da0"})
	require.NoError(t, err)
	require.True(t, proto.Equal(rep, got))

	rep, err = p.ModifyDa(ctx, &pb.ModifyDaRequest{DaName: "da0", Description: proto.String("db")})
	require.NoError(t, err)
	require.True(t, proto.Equal(req.Qos, rep.GetDaMsg().GetQos()), "absent qos: unchanged")
	require.EqualValues(t, 36<<20, rep.GetDaMsg().GetDaSize(), "absent da_size: unchanged")
	rep, err = p.ModifyDa(ctx, &pb.ModifyDaRequest{DaName: "da0", Qos: &pb.QosMsg{}})
	require.NoError(t, err)
	require.True(t, proto.Equal(&pb.QosMsg{}, rep.GetDaMsg().GetQos()), "all zero: no limit")
}

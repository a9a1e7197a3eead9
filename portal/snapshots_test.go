package portal_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pb "github.com/vda-io/vda/api/portalpb"
	"github.com/vda-io/vda/portal"
)

func TestSnapshotsAndClonesOverGRPC(t *testing.T) {
	st := newStore(t)
	p := dial(t, serve(t, st, portal.Config{Insecure: true}), insecure.NewCredentials())
	seed(t, p)
	ctx := context.Background()

	sr, err := p.CreateSnap(ctx, &pb.CreateSnapRequest{DaName: "da0", SnapName: "s0", Description: "d"})
	require.NoError(t, err)
	require.Equal(t, "s0", sr.GetSnapMsg().GetSnapName())
	require.Equal(t, uint64(32<<20), sr.GetSnapMsg().GetSize())
	require.False(t, sr.GetSnapMsg().GetReady())
	require.NotEmpty(t, sr.GetSnapMsg().GetCreatedAt())
	cr, err := p.CreateClone(ctx, &pb.CreateCloneRequest{DaName: "da0", CloneName: "c0", SnapName: "s0"})
	require.NoError(t, err)
	require.Equal(t, "s0", cr.GetCloneMsg().GetSnapName())
	er, err := p.CreateExp(ctx, &pb.CreateExpRequest{DaName: "da0", ExpName: "es", InitiatorNqn: "nqn.2016-06.io.spdk:host0", SnapName: "s0"})
	require.NoError(t, err)
	require.Equal(t, "s0", er.GetExpMsg().GetSnapName())
	er, err = p.CreateExp(ctx, &pb.CreateExpRequest{DaName: "da0", ExpName: "ec", InitiatorNqn: "nqn.2016-06.io.spdk:host0", CloneName: "c0"})
	require.NoError(t, err)
	require.Equal(t, "c0", er.GetExpMsg().GetCloneName())
	g, err := p.GetSnap(ctx, &pb.GetSnapRequest{DaName: "da0", SnapName: "s0"})
	require.NoError(t, err)
	require.Equal(t, "es", g.GetSnapMsg().GetExpName())
	require.Equal(t, uint32(1), g.GetSnapMsg().GetCloneCnt())
	ls, err := p.ListSnap(ctx, &pb.ListSnapRequest{})
	require.NoError(t, err)
	require.Len(t, ls.GetSnapMsgList(), 1)
	lc, err := p.ListClone(ctx, &pb.ListCloneRequest{DaName: "da0"})
	require.NoError(t, err)
	require.Len(t, lc.GetCloneMsgList(), 1)
	size := uint64(64 << 20)
	mr, err := p.ModifyClone(ctx, &pb.ModifyCloneRequest{DaName: "da0", CloneName: "c0", Inflate: true})
	require.NoError(t, err)
	require.True(t, mr.GetCloneMsg().GetInflate())
	require.False(t, mr.GetCloneMsg().GetInflated())

	for _, tc := range []struct {
		name string
		call rpc
		code codes.Code
		msg  string
	}{
		{"snap bad name", func(ctx context.Context, p pb.PortalClient) error {
			_, err := p.CreateSnap(ctx, &pb.CreateSnapRequest{DaName: "da0", SnapName: "a b"})
			return err
		}, codes.InvalidArgument, "snapshot name"},
		{"snap long name", func(ctx context.Context, p pb.PortalClient) error {
			_, err := p.CreateSnap(ctx, &pb.CreateSnapRequest{DaName: "da0", SnapName: strings.Repeat("s", 65)})
			return err
		}, codes.InvalidArgument, "snapshot name"},
		{"snap empty name", func(ctx context.Context, p pb.PortalClient) error {
			_, err := p.CreateSnap(ctx, &pb.CreateSnapRequest{DaName: "da0"})
			return err
		}, codes.InvalidArgument, "snapshot name"},
		{"snap missing da", func(ctx context.Context, p pb.PortalClient) error {
			_, err := p.CreateSnap(ctx, &pb.CreateSnapRequest{DaName: "da9", SnapName: "s"})
			return err
		}, codes.NotFound, `disk array "da9"`},
		{"snap exists otherwise", func(ctx context.Context, p pb.PortalClient) error {
			_, err := p.CreateSnap(ctx, &pb.CreateSnapRequest{DaName: "da0", SnapName: "s0", Description: "other"})
			return err
		}, codes.AlreadyExists, "description"},
		{"snap get missing", func(ctx context.Context, p pb.PortalClient) error {
			_, err := p.GetSnap(ctx, &pb.GetSnapRequest{DaName: "da0", SnapName: "nope"})
			return err
		}, codes.NotFound, `snapshot "nope"`},
		{"snap list missing da", func(ctx context.Context, p pb.PortalClient) error {
			_, err := p.ListSnap(ctx, &pb.ListSnapRequest{DaName: "da9"})
			return err
		}, codes.NotFound, `disk array "da9"`},
		{"exported snap delete", func(ctx context.Context, p pb.PortalClient) error {
			_, err := p.DeleteSnap(ctx, &pb.DeleteSnapRequest{DaName: "da0", SnapName: "s0"})
			return err
		}, codes.FailedPrecondition, `exporter "es"`},
		{"second exporter of a snap", func(ctx context.Context, p pb.PortalClient) error {
			_, err := p.CreateExp(ctx, &pb.CreateExpRequest{DaName: "da0", ExpName: "es2", InitiatorNqn: "nqn.2016-06.io.spdk:h2", SnapName: "s0"})
			return err
		}, codes.FailedPrecondition, "--add-host-nqn"},
		{"exporter of a missing clone", func(ctx context.Context, p pb.PortalClient) error {
			_, err := p.CreateExp(ctx, &pb.CreateExpRequest{DaName: "da0", ExpName: "ex", InitiatorNqn: "nqn.2016-06.io.spdk:h2", CloneName: "nope"})
			return err
		}, codes.NotFound, `clone "nope"`},
		{"exporter of a snap and a clone", func(ctx context.Context, p pb.PortalClient) error {
			_, err := p.CreateExp(ctx, &pb.CreateExpRequest{DaName: "da0", ExpName: "ex", InitiatorNqn: "nqn.2016-06.io.spdk:h2",
				SnapName: "s0", CloneName: "c0"})
			return err
		}, codes.InvalidArgument, "not both"},
		{"exporter snap bad name", func(ctx context.Context, p pb.PortalClient) error {
			_, err := p.CreateExp(ctx, &pb.CreateExpRequest{DaName: "da0", ExpName: "ex", InitiatorNqn: "nqn.2016-06.io.spdk:h2", SnapName: "x/y"})
			return err
		}, codes.InvalidArgument, "snapshot name"},
		{"clone of missing snap", func(ctx context.Context, p pb.PortalClient) error {
			_, err := p.CreateClone(ctx, &pb.CreateCloneRequest{DaName: "da0", CloneName: "c1", SnapName: "nope"})
			return err
		}, codes.NotFound, `snapshot "nope"`},
		{"clone no snap name", func(ctx context.Context, p pb.PortalClient) error {
			_, err := p.CreateClone(ctx, &pb.CreateCloneRequest{DaName: "da0", CloneName: "c1"})
			return err
		}, codes.InvalidArgument, "snapshot name"},
		{"clone exists from another snap", func(ctx context.Context, p pb.PortalClient) error {
			_, err := p.CreateClone(ctx, &pb.CreateCloneRequest{DaName: "da0", CloneName: "c0", SnapName: "s1"})
			return err
		}, codes.AlreadyExists, "snap_name"},
		{"clone shrink", func(ctx context.Context, p pb.PortalClient) error {
			small := uint64(8 << 20)
			_, err := p.ModifyClone(ctx, &pb.ModifyCloneRequest{DaName: "da0", CloneName: "c0", Size: &small})
			return err
		}, codes.InvalidArgument, "never shrinks"},
		{"clone past physical", func(ctx context.Context, p pb.PortalClient) error {
			big := 2 * size
			_, err := p.ModifyClone(ctx, &pb.ModifyCloneRequest{DaName: "da0", CloneName: "c0", Size: &big})
			return err
		}, codes.InvalidArgument, "physical size"},
		{"clone modify missing", func(ctx context.Context, p pb.PortalClient) error {
			_, err := p.ModifyClone(ctx, &pb.ModifyCloneRequest{DaName: "da0", CloneName: "nope", Inflate: true})
			return err
		}, codes.NotFound, `clone "nope"`},
		{"exported clone delete", func(ctx context.Context, p pb.PortalClient) error {
			_, err := p.DeleteClone(ctx, &pb.DeleteCloneRequest{DaName: "da0", CloneName: "c0"})
			return err
		}, codes.FailedPrecondition, `exporter "ec"`},
		{"da delete with snapshots", func(ctx context.Context, p pb.PortalClient) error {
			_, err := p.DeleteDa(ctx, &pb.DeleteDaRequest{DaName: "da0"})
			return err
		}, codes.FailedPrecondition, "exporters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			before, err := st.Revision(ctx)
			require.NoError(t, err)
			err = tc.call(ctx, p)
			require.Equal(t, tc.code, status.Code(err), "%v", err)
			require.Contains(t, status.Convert(err).Message(), tc.msg)
			after, err := st.Revision(ctx)
			require.NoError(t, err)
			require.Equal(t, before, after, "a failed request changed the store")
		})
	}

	// Tear down in order: exporters, clone, snapshot; then the DA goes.
	for _, e := range []string{"exp0", "es", "ec"} {
		_, err := p.DeleteExp(ctx, &pb.DeleteExpRequest{DaName: "da0", ExpName: e})
		require.NoError(t, err)
	}
	_, err = p.DeleteDa(ctx, &pb.DeleteDaRequest{DaName: "da0"})
	require.Equal(t, codes.FailedPrecondition, status.Code(err))
	require.Contains(t, status.Convert(err).Message(), `snapshot "s0"`)
	_, err = p.DeleteSnap(ctx, &pb.DeleteSnapRequest{DaName: "da0", SnapName: "s0"})
	require.Equal(t, codes.FailedPrecondition, status.Code(err), "the clone depends on it (inflate not reported yet)")
	_, err = p.DeleteClone(ctx, &pb.DeleteCloneRequest{DaName: "da0", CloneName: "c0"})
	require.NoError(t, err)
	_, err = p.DeleteSnap(ctx, &pb.DeleteSnapRequest{DaName: "da0", SnapName: "s0"})
	require.NoError(t, err)
	_, err = p.DeleteDa(ctx, &pb.DeleteDaRequest{DaName: "da0"})
	require.NoError(t, err)
}

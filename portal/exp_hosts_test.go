package portal_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pb "github.com/vda-io/vda/api/portalpb"
	"github.com/vda-io/vda/portal"
)

const (
	pHost0 = "nqn.2016-06.io.spdk:host0"
	pHost1 = "nqn.2016-06.io.spdk:host1"
	pHost2 = "nqn.2016-06.io.spdk:host2"
)

// Hosts of an exporter through gRPC: created with several, shown by get
// and list, added and removed by modify.
func TestExporterHostsOverGRPC(t *testing.T) {
	ctx := context.Background()
	p := dial(t, serve(t, newStore(t), portal.Config{Insecure: true}), insecure.NewCredentials())
	seed(t, p)
	_, err := p.DeleteExp(ctx, &pb.DeleteExpRequest{DaName: "da0", ExpName: "exp0"})
	require.NoError(t, err)

	r, err := p.CreateExp(ctx, &pb.CreateExpRequest{DaName: "da0", ExpName: "exp0", HostNqns: []string{pHost0, pHost1}})
	require.NoError(t, err)
	require.Equal(t, []string{pHost0, pHost1}, r.GetExpMsg().GetHostNqns())
	require.Equal(t, pHost0, r.GetExpMsg().GetInitiatorNqn())

	m, err := p.ModifyExp(ctx, &pb.ModifyExpRequest{DaName: "da0", ExpName: "exp0",
		AddHostNqns: []string{pHost2}, RemoveHostNqns: []string{pHost0}})
	require.NoError(t, err)
	require.Equal(t, []string{pHost1, pHost2}, m.GetExpMsg().GetHostNqns())
	require.Equal(t, pHost1, m.GetExpMsg().GetInitiatorNqn())

	g, err := p.GetExp(ctx, &pb.GetExpRequest{DaName: "da0", ExpName: "exp0"})
	require.NoError(t, err)
	require.Equal(t, []string{pHost1, pHost2}, g.GetExpMsg().GetHostNqns())
	l, err := p.ListExp(ctx, &pb.ListExpRequest{DaName: "da0"})
	require.NoError(t, err)
	require.Len(t, l.GetExpMsgList(), 1)
	require.Equal(t, []string{pHost1, pHost2}, l.GetExpMsgList()[0].GetHostNqns())
}

// Bad exporter requests get a clear status and change nothing.
func TestExporterHostsValidationOverGRPC(t *testing.T) {
	st := newStore(t)
	p := dial(t, serve(t, st, portal.Config{Insecure: true}), insecure.NewCredentials())
	seed(t, p) // da0 exported as exp0 to host0
	many := make([]string, 65)
	for i := range many {
		many[i] = fmt.Sprintf("nqn.2016-06.io.spdk:h%d", i)
	}
	create := func(r *pb.CreateExpRequest) rpc {
		return func(ctx context.Context, p pb.PortalClient) error { _, err := p.CreateExp(ctx, r); return err }
	}
	modify := func(r *pb.ModifyExpRequest) rpc {
		r.DaName, r.ExpName = "da0", "exp0"
		return func(ctx context.Context, p pb.PortalClient) error { _, err := p.ModifyExp(ctx, r); return err }
	}
	for _, tc := range []struct {
		name string
		call rpc
		code codes.Code
		msg  string
	}{
		{"second exporter", create(&pb.CreateExpRequest{DaName: "da0", ExpName: "exp1", InitiatorNqn: pHost1}),
			codes.FailedPrecondition, `exporter "exp0" already exports the volume of disk array "da0"`},
		{"second exporter says how", create(&pb.CreateExpRequest{DaName: "da0", ExpName: "exp1", HostNqns: []string{pHost1}}),
			codes.FailedPrecondition, "vda exp modify --da-name da0 --exp-name exp0 --add-host-nqn"},
		{"no host", create(&pb.CreateExpRequest{DaName: "da0", ExpName: "exp1"}), codes.InvalidArgument, "needs a host"},
		{"bad host", create(&pb.CreateExpRequest{DaName: "da0", ExpName: "exp1", HostNqns: []string{pHost1, "iqn.x"}}),
			codes.InvalidArgument, "host_nqns[1]"},
		{"host twice", create(&pb.CreateExpRequest{DaName: "da0", ExpName: "exp1", HostNqns: []string{pHost1, pHost1}}),
			codes.InvalidArgument, "listed twice"},
		{"65 hosts", create(&pb.CreateExpRequest{DaName: "da0", ExpName: "exp1", HostNqns: many}),
			codes.InvalidArgument, "at most 64"},
		{"exists with other hosts", create(&pb.CreateExpRequest{DaName: "da0", ExpName: "exp0", HostNqns: []string{pHost0, pHost1}}),
			codes.AlreadyExists, "host_nqns"},
		{"remove last host", modify(&pb.ModifyExpRequest{RemoveHostNqns: []string{pHost0}}),
			codes.FailedPrecondition, "at least one host"},
		{"add too many", modify(&pb.ModifyExpRequest{AddHostNqns: many[:64]}), codes.FailedPrecondition, "65 hosts, at most 64"},
		{"add bad", modify(&pb.ModifyExpRequest{AddHostNqns: []string{"nqn.2016-06.io.spdk:a b"}}),
			codes.InvalidArgument, "add_host_nqns[0]"},
		{"remove bad", modify(&pb.ModifyExpRequest{RemoveHostNqns: []string{""}}), codes.InvalidArgument, "remove_host_nqns[0]"},
		{"add and remove", modify(&pb.ModifyExpRequest{AddHostNqns: []string{pHost1}, RemoveHostNqns: []string{pHost1}}),
			codes.InvalidArgument, "both added and removed"},
		{"modify missing", func(ctx context.Context, p pb.PortalClient) error {
			_, err := p.ModifyExp(ctx, &pb.ModifyExpRequest{DaName: "da0", ExpName: "exp9", AddHostNqns: []string{pHost1}})
			return err
		}, codes.NotFound, `exporter "exp9"`},
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
}

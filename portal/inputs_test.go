package portal_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pb "github.com/vda-io/vda/api/portalpb"
	"github.com/vda-io/vda/portal"
)

// rawCodec sends a request's bytes as they are, so a test can send what no
// protobuf library would encode.
type rawCodec struct{}

type rawMsg []byte

func (rawCodec) Marshal(v any) ([]byte, error) { return *v.(*rawMsg), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*v.(*rawMsg) = append((*v.(*rawMsg))[:0], data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

// A request that is not valid protobuf is the client's fault
// (InvalidArgument), not the server's (Internal), and changes nothing; the
// server goes on serving.
func TestMalformedRequestIsInvalidArgument(t *testing.T) {
	st := newStore(t)
	addr := serve(t, st, portal.Config{Insecure: true})
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	ctx := context.Background()
	before, err := st.Revision(ctx)
	require.NoError(t, err)
	for name, body := range map[string][]byte{
		"truncated varint":   {0x08, 0xff},
		"truncated string":   {0x0a, 0x10, 'a'},
		"string not UTF-8":   append([]byte{0x0a, 0x02}, 0xff, 0xfe), // dn_name
		"bad wire type":      {0x0f},
		"field number zero":  {0x00, 0x01},
		"group never closed": {0x0b},
	} {
		in, out := rawMsg(body), rawMsg(nil)
		err := conn.Invoke(ctx, pb.Portal_CreateDn_FullMethodName, &in, &out, grpc.ForceCodec(rawCodec{}))
		require.Equal(t, codes.InvalidArgument, status.Code(err), "%s: %v", name, err)
		require.Contains(t, status.Convert(err).Message(), "malformed")
	}
	after, err := st.Revision(ctx)
	require.NoError(t, err)
	require.Equal(t, before, after)
	p := pb.NewPortalClient(conn)
	_, err = p.GetDn(ctx, &pb.GetDnRequest{DnName: "192.168.0.14:9720"})
	require.Equal(t, codes.NotFound, status.Code(err), "a well-formed request after them is served")
}

// A create retried after its reply was lost gets the object it made (the
// same IDs), without a write; the same name with another spec is
// AlreadyExists saying what differs.
func TestCreatesAreIdempotent(t *testing.T) {
	st := newStore(t)
	p := dial(t, serve(t, st, portal.Config{Insecure: true}), insecure.NewCredentials())
	seed(t, p)
	ctx := context.Background()
	before, err := st.Revision(ctx)
	require.NoError(t, err)

	dn, err := p.CreateDn(ctx, &pb.CreateDnRequest{DnName: "192.168.0.14:9720", DnListenerConf: conf("192.168.0.14", "4420")})
	require.NoError(t, err)
	got, err := p.GetDn(ctx, &pb.GetDnRequest{DnName: "192.168.0.14:9720"})
	require.NoError(t, err)
	require.Equal(t, got.GetDnMsg().GetDnId(), dn.GetDnMsg().GetDnId())

	// The listener in another spelling is the same listener.
	_, err = p.CreateCn(ctx, &pb.CreateCnRequest{CnName: "192.168.0.16:9820",
		CnListenerConf: `{"trsvcid":"4430","trtype":"TCP","traddr":"192.168.0.16"}`})
	require.NoError(t, err)
	pd, err := p.CreatePd(ctx, &pb.CreatePdRequest{DnName: "192.168.0.14:9720", PdName: "pd0", PdConf: `{"size":134217728,"type":"malloc"}`})
	require.NoError(t, err)
	require.EqualValues(t, 1, pd.GetPdMsg().GetVdCnt(), "the existing PD, with its VD")
	da, err := p.CreateDa(ctx, &pb.CreateDaRequest{DaName: "da0", CntlrCnt: 2, DaSize: 32 << 20, DaConf: `{"stripe_count":2,"stripe_size_kb":64}`})
	require.NoError(t, err)
	require.Len(t, da.GetDaMsg().GetVdList(), 2)
	exp, err := p.CreateExp(ctx, &pb.CreateExpRequest{DaName: "da0", ExpName: "exp0", InitiatorNqn: "nqn.2016-06.io.spdk:host0"})
	require.NoError(t, err)
	require.Len(t, exp.GetExpMsg().GetEsMsgList(), 2)
	after, err := st.Revision(ctx)
	require.NoError(t, err)
	require.Equal(t, before, after, "a retried create writes nothing")

	for name, tc := range map[string]struct {
		call func() error
		msg  string
	}{
		"dn location": {func() error {
			_, err := p.CreateDn(ctx, &pb.CreateDnRequest{DnName: "192.168.0.14:9720", DnListenerConf: conf("192.168.0.14", "4420"), Location: "r2"})
			return err
		}, `location "" (this request: "r2")`},
		"cn description": {func() error {
			_, err := p.CreateCn(ctx, &pb.CreateCnRequest{CnName: "192.168.0.16:9820", CnListenerConf: conf("192.168.0.16", "4430"), Description: "x"})
			return err
		}, `description "" (this request: "x")`},
		"da size": {func() error {
			_, err := p.CreateDa(ctx, &pb.CreateDaRequest{DaName: "da0", CntlrCnt: 2, DaSize: 64 << 20, DaConf: `{"stripe_count":2,"stripe_size_kb":64}`})
			return err
		}, "da_size 33554432 (this request: 67108864)"},
		"da geometry": {func() error {
			_, err := p.CreateDa(ctx, &pb.CreateDaRequest{DaName: "da0", CntlrCnt: 2, DaSize: 32 << 20, DaConf: `{"stripe_count":2,"stripe_size_kb":128}`})
			return err
		}, "stripe_size_kb 64 (this request: 128)"},
		"pd type": {func() error {
			_, err := p.CreatePd(ctx, &pb.CreatePdRequest{DnName: "192.168.0.14:9720", PdName: "pd0", PdConf: `{"type":"aio","filename":"/dev/sdb"}`})
			return err
		}, "pd_conf"},
	} {
		err := tc.call()
		require.Equal(t, codes.AlreadyExists, status.Code(err), "%s: %v", name, err)
		require.Contains(t, status.Convert(err).Message(), tc.msg, name)
	}
}

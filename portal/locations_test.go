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

// cn_locations and dn_locations of CreateDaRequest reach placement, come
// back in DaMsg, and are validated: a bad one is InvalidArgument, one no
// node satisfies ResourceExhausted naming it.
func TestCreateDaLocations(t *testing.T) {
	ctx := context.Background()
	p := dial(t, serve(t, newStore(t), portal.Config{Insecure: true}), insecure.NewCredentials())
	for i, ip := range []string{"192.168.0.14", "192.168.0.15"} {
		_, err := p.CreateDn(ctx, &pb.CreateDnRequest{DnName: ip + ":9720", DnListenerConf: conf(ip, "4420"), Location: []string{"r0", "r1"}[i]})
		require.NoError(t, err)
		_, err = p.CreatePd(ctx, &pb.CreatePdRequest{DnName: ip + ":9720", PdName: "pd0", PdConf: `{"type":"malloc","size":134217728}`})
		require.NoError(t, err)
		_, err = p.CreateCn(ctx, &pb.CreateCnRequest{CnName: ip + ":9820", CnListenerConf: conf(ip, "4430"), Location: []string{"z0", "z1"}[i]})
		require.NoError(t, err)
	}
	req := &pb.CreateDaRequest{DaName: "da0", CntlrCnt: 1, DaSize: 16 << 20, DaConf: `{"stripe_count":1,"stripe_size_kb":64}`,
		CnLocations: []string{"z1"}, DnLocations: []string{"r1"}}
	got, err := p.CreateDa(ctx, req)
	require.NoError(t, err)
	da := got.GetDaMsg()
	require.Equal(t, []string{"z1"}, da.GetCnLocations())
	require.Equal(t, []string{"r1"}, da.GetDnLocations())
	require.Equal(t, "192.168.0.15:9720", da.GetVdList()[0].GetDnName())
	require.Equal(t, "192.168.0.15:9820", da.GetCntlrList()[0].GetCnName())
	read, err := p.GetDa(ctx, &pb.GetDaRequest{DaName: "da0"})
	require.NoError(t, err)
	require.Equal(t, []string{"z1"}, read.GetDaMsg().GetCnLocations())

	req.DaName, req.CntlrCnt = "da1", 2
	_, err = p.CreateDa(ctx, req)
	require.Equal(t, codes.ResourceExhausted, status.Code(err), "two controllers, one CN in z1: %v", err)
	require.Contains(t, status.Convert(err).Message(), `cn_locations ["z1"]`)

	req.CntlrCnt, req.DnLocations = 1, []string{"r1", strings.Repeat("r", 300)}
	_, err = p.CreateDa(ctx, req)
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
}

package portal_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/vda-io/vda"
	pb "github.com/vda-io/vda/api/portalpb"
	"github.com/vda-io/vda/portal"
	"github.com/vda-io/vda/store"
)

// The monitor's status writes (under vda.KeyStatus) show in Get replies.
func TestStatusShown(t *testing.T) {
	st := newStore(t)
	p := dial(t, serve(t, st, portal.Config{Insecure: true}), insecure.NewCredentials())
	seed(t, p)
	ctx := context.Background()
	exp, err := p.GetExp(ctx, &pb.GetExpRequest{DaName: "da0", ExpName: "exp0"})
	require.NoError(t, err)
	es := exp.GetExpMsg().GetEsMsgList()
	require.Len(t, es, 2)
	require.False(t, es[1].GetError())

	put := func(key string, s vda.Status) {
		b, err := json.Marshal(s)
		require.NoError(t, err)
		_, err = st.Txn(ctx, store.Txn{Ops: []store.Op{{Key: vda.KeyStatus(key), Value: b}}})
		require.NoError(t, err)
	}
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	put(vda.KeyExp("da0", "exp0"), vda.Status{Health: vda.HealthDegraded, UpdatedAt: now,
		Parts: map[string]vda.Status{es[1].GetEsId(): {ErrorMsg: "listener: address in use"}}})
	put(vda.KeyPD("192.168.0.14:9720", "pd0"), vda.Status{Health: vda.HealthHealthy, TotalBytes: 60 << 20})

	exp, err = p.GetExp(ctx, &pb.GetExpRequest{DaName: "da0", ExpName: "exp0"})
	require.NoError(t, err)
	es = exp.GetExpMsg().GetEsMsgList()
	require.False(t, es[0].GetError())
	require.True(t, es[1].GetError())
	require.Equal(t, "listener: address in use", es[1].GetErrorMsg())
	require.Equal(t, "degraded", exp.GetExpMsg().GetStatus().GetHealth())
	require.Equal(t, "2026-11-22T12:00:00Z", exp.GetExpMsg().GetStatus().GetUpdatedAt())

	pd, err := p.GetPd(ctx, &pb.GetPdRequest{DnName: "192.168.0.14:9720", PdName: "pd0"})
	require.NoError(t, err)
	require.EqualValues(t, 60<<20, pd.GetPdMsg().GetCapacityBytes(), "reported capacity wins")
	require.EqualValues(t, 40<<20, pd.GetPdMsg().GetFreeBytes())
}

package devcluster_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	pb "github.com/vda-io/vda/api/portalpb"
	"github.com/vda-io/vda/devcluster"
	"github.com/vda-io/vda/failover"
	"github.com/vda-io/vda/metrics"
)

// TestFailoverEvent kills the node of a disk array's primary: the portal's
// event stream reports the failover (from that node to the other), and
// the monitor's failover histogram counts it.
func TestFailoverEvent(t *testing.T) {
	reg := metrics.NewRegistry()
	c, err := devcluster.New(devcluster.Config{DataDir: t.TempDir(), AnyPorts: true, Register: true, PDSizeBytes: 256 << 20,
		Failover: failover.Config{Interval: 100 * time.Millisecond, MissThreshold: 3, Window: time.Second,
			SlowTimeout: 5 * time.Second, HoldDown: 10 * time.Second}, Metrics: reg})
	require.NoError(t, err)
	srv := httptest.NewServer(metrics.Handler(reg, c.ReadyCheck))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop, err := c.Start(ctx)
	require.NoError(t, err, "cluster did not start")
	t.Cleanup(func() { require.NoError(t, stop()) })
	tc, err := c.AdminTLS().ClientTLS()
	require.NoError(t, err)
	conn, err := grpc.NewClient(c.PortalAddr(), grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	require.NoError(t, err)
	defer func() { _ = conn.Close() }()
	portal := pb.NewPortalClient(conn)

	events, err := portal.Watch(ctx, &pb.WatchRequest{Kinds: []string{"da"}, DaName: "da0"})
	require.NoError(t, err)
	first, err := events.Recv()
	require.NoError(t, err)
	require.Equal(t, "watching", first.GetType())
	evc := make(chan *pb.WatchEvent, 1024)
	go func() {
		defer close(evc)
		for {
			ev, err := events.Recv()
			if err != nil {
				return
			}
			evc <- ev
		}
	}()

	_, err = portal.CreateDa(ctx, &pb.CreateDaRequest{DaName: "da0", CntlrCnt: 2, DaSize: 32 << 20,
		DaConf: `{"stripe_count":2,"stripe_size_kb":64}`})
	require.NoError(t, err)
	var primaryCN, otherCN string
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		da, err := c.API().GetDiskArray(ctx, "da0")
		require.NoError(ct, err)
		require.Equal(ct, "healthy", string(da.Status.Health))
		for _, cn := range da.Cntlrs {
			if cn.ID == da.PrimaryCntlrID {
				primaryCN = cn.CNName
			} else {
				otherCN = cn.CNName
			}
		}
	}, 2*time.Minute, 20*time.Millisecond)

	c.Node(primaryCN).Kill()
	var failed, moved *pb.WatchEvent
	timeout := time.After(2 * time.Minute)
	for moved == nil {
		select {
		case ev, ok := <-evc:
			require.True(t, ok, "the event stream ended")
			switch {
			case ev.GetType() == "failover":
				moved = ev
			case ev.GetType() == "health" && ev.GetHealth() != "healthy" && failed == nil:
				failed = ev
			}
		case <-timeout:
			t.Fatal("no failover event within 2 minutes")
		}
	}
	require.Equal(t, "da0", moved.GetName())
	require.Equal(t, primaryCN, moved.GetPrimaryMove().GetFromCnName())
	require.Equal(t, otherCN, moved.GetPrimaryMove().GetToCnName())
	require.EqualValues(t, 2, moved.GetPrimaryMove().GetEpoch())
	require.NotNil(t, failed, "the array's health fell before the failover")

	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		mfs := scrape(ct, srv.URL+"/metrics")
		assert.Equal(ct, 1.0, sum(mfs, "vda_monitor_failover_duration_seconds", nil), "the failover is in the histogram")
		assert.Equal(ct, 1.0, sum(mfs, "vda_monitor_failover_disk_arrays_total", nil))
	}, time.Minute, 20*time.Millisecond)
}

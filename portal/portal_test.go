package portal_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/vda-io/vda"
	pb "github.com/vda-io/vda/api/portalpb"
	"github.com/vda-io/vda/portal"
	"github.com/vda-io/vda/store"
	"github.com/vda-io/vda/store/memstore"
)

// serve starts a portal over st on 127.0.0.1:0 and returns its address.
func serve(t *testing.T, st store.Store, cfg portal.Config) string {
	cl, err := vda.New(vda.DefaultConfig(st))
	require.NoError(t, err)
	cfg.Cluster = cl
	srv, err := portal.New(cfg)
	require.NoError(t, err)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return lis.Addr().String()
}

func dial(t *testing.T, addr string, creds credentials.TransportCredentials) pb.PortalClient {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return pb.NewPortalClient(conn)
}

func newStore(t testing.TB) store.Store {
	st, err := memstore.New(memstore.DefaultConfig())
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func conf(ip, port string) string {
	return fmt.Sprintf(`{"trtype":"tcp","traddr":"%s","adrfam":"ipv4","trsvcid":"%s"}`, ip, port)
}

// seed builds seed 003's cluster with da0 exported as exp0.
func seed(t testing.TB, p pb.PortalClient) {
	ctx := context.Background()
	for _, ip := range []string{"192.168.0.14", "192.168.0.15"} {
		_, err := p.CreateDn(ctx, &pb.CreateDnRequest{DnName: ip + ":9720", DnListenerConf: conf(ip, "4420")})
		require.NoError(t, err)
		_, err = p.CreatePd(ctx, &pb.CreatePdRequest{DnName: ip + ":9720", PdName: "pd0", PdConf: `{"type":"malloc","size":134217728}`})
		require.NoError(t, err)
	}
	for _, ip := range []string{"192.168.0.16", "192.168.0.17"} {
		_, err := p.CreateCn(ctx, &pb.CreateCnRequest{CnName: ip + ":9820", CnListenerConf: conf(ip, "4430")})
		require.NoError(t, err)
	}
	_, err := p.CreateDa(ctx, &pb.CreateDaRequest{DaName: "da0", CntlrCnt: 2, DaSize: 32 << 20, DaConf: `{"stripe_count":2,"stripe_size_kb":64}`})
	require.NoError(t, err)
	_, err = p.CreateExp(ctx, &pb.CreateExpRequest{DaName: "da0", ExpName: "exp0", InitiatorNqn: "nqn.2016-06.io.spdk:host0"})
	require.NoError(t, err)
}

type rpc func(context.Context, pb.PortalClient) error

func createDn(name, lc, desc string) rpc {
	return func(ctx context.Context, p pb.PortalClient) error {
		_, err := p.CreateDn(ctx, &pb.CreateDnRequest{DnName: name, DnListenerConf: lc, Description: desc})
		return err
	}
}

func createPd(dn, name, c string) rpc {
	return func(ctx context.Context, p pb.PortalClient) error {
		_, err := p.CreatePd(ctx, &pb.CreatePdRequest{DnName: dn, PdName: name, PdConf: c})
		return err
	}
}

func createDa(name string, cntlrs uint32, size, physical uint64, c string) rpc {
	return func(ctx context.Context, p pb.PortalClient) error {
		_, err := p.CreateDa(ctx, &pb.CreateDaRequest{DaName: name, CntlrCnt: cntlrs, DaSize: size, PhysicalSize: physical, DaConf: c})
		return err
	}
}

func createExp(da, name, host string) rpc {
	return func(ctx context.Context, p pb.PortalClient) error {
		_, err := p.CreateExp(ctx, &pb.CreateExpRequest{DaName: da, ExpName: name, InitiatorNqn: host})
		return err
	}
}

const dn0, geo = "192.168.0.14:9720", `{"stripe_count":2,"stripe_size_kb":64}`

func TestValidation(t *testing.T) {
	st := newStore(t)
	p := dial(t, serve(t, st, portal.Config{Insecure: true}), insecure.NewCredentials())
	seed(t, p)
	lc := conf("10.0.0.1", "4420")
	desc := func(s string) *string { return &s }
	for _, tc := range []struct {
		name string
		call rpc
		code codes.Code
		msg  string
	}{
		{"dn empty name", createDn("", lc, ""), codes.InvalidArgument, "disk node"},
		{"dn long name", createDn(strings.Repeat("a", 256), lc, ""), codes.InvalidArgument, "disk node"},
		{"dn slash", createDn("a/b", lc, ""), codes.InvalidArgument, "disk node"},
		{"dn listener not json", createDn("n1", "{", ""), codes.InvalidArgument, "listener_conf"},
		{"dn listener no traddr", createDn("n1", `{"trtype":"tcp","trsvcid":"4420"}`, ""), codes.InvalidArgument, "listener_conf"},
		{"dn listener bad port", createDn("n1", conf("10.0.0.1", "70000"), ""), codes.InvalidArgument, "listener_conf"},
		{"dn listener extra key", createDn("n1", `{"trtype":"tcp","traddr":"10.0.0.1","trsvcid":"1","x":"y"}`, ""), codes.InvalidArgument, "listener_conf"},
		{"dn long description", createDn("n1", lc, strings.Repeat("d", 257)), codes.InvalidArgument, "description"},
		{"dn control description", createDn("n1", lc, "a\x00b"), codes.InvalidArgument, "description"},
		{"dn exists", createDn(dn0, lc, ""), codes.AlreadyExists, `listener_conf`},
		{"dn dot", createDn(".", lc, ""), codes.InvalidArgument, "letter or a digit"},
		{"dn dotdot", createDn("..", lc, ""), codes.InvalidArgument, "letter or a digit"},
		{"dn a:b", createDn("a:b", lc, ""), codes.InvalidArgument, `port "b"`},
		{"dn leading zero port", createDn("127.0.43.14:09720", lc, ""), codes.InvalidArgument, "write 127.0.43.14:9720"},
		{"dn leading zero ip", createDn("127.0.043.14:9720", lc, ""), codes.InvalidArgument, "IPv4"},
		{"dn upper case host", createDn("DN1.Example:9720", lc, ""), codes.InvalidArgument, "write dn1.example:9720"},
		{"dn mapped v6", createDn("[::ffff:127.0.0.1]:9720", lc, ""), codes.InvalidArgument, "write 127.0.0.1:9720"},
		{"dn v6 spelling", createDn("[fd00:0::1]:9720", lc, ""), codes.InvalidArgument, "write [fd00::1]:9720"},
		{"dn port zero", createDn("10.0.0.1:0", lc, ""), codes.InvalidArgument, "port"},
		{"dn same listener", createDn("10.0.0.9:9720", conf("192.168.0.14", "4420"), ""), codes.AlreadyExists,
			`NVMe-oF listener tcp 192.168.0.14:4420 is disk node "192.168.0.14:9720"'s`},
		{"cn same listener as dn", func(ctx context.Context, p pb.PortalClient) error {
			_, err := p.CreateCn(ctx, &pb.CreateCnRequest{CnName: "10.0.0.9:9820", CnListenerConf: conf("192.168.0.14", "4420")})
			return err
		}, codes.AlreadyExists, `is disk node "192.168.0.14:9720"'s`},
		{"cn same listener", func(ctx context.Context, p pb.PortalClient) error {
			_, err := p.CreateCn(ctx, &pb.CreateCnRequest{CnName: "10.0.0.9:9820", CnListenerConf: conf("192.168.0.16", "4430")})
			return err
		}, codes.AlreadyExists, `is controller node "192.168.0.16:9820"'s`},
		{"modify cn to another's listener", func(ctx context.Context, p pb.PortalClient) error {
			c := conf("192.168.0.16", "4430")
			_, err := p.ModifyCn(ctx, &pb.ModifyCnRequest{CnName: "192.168.0.17:9820", CnListenerConf: &c})
			return err
		}, codes.AlreadyExists, `is controller node "192.168.0.16:9820"'s`},
		{"dn long location", func(ctx context.Context, p pb.PortalClient) error {
			_, err := p.CreateDn(ctx, &pb.CreateDnRequest{DnName: "n1", DnListenerConf: lc, Location: strings.Repeat("l", 256)})
			return err
		}, codes.InvalidArgument, "location"},
		{"cn bad listener", func(ctx context.Context, p pb.PortalClient) error {
			_, err := p.CreateCn(ctx, &pb.CreateCnRequest{CnName: "c1", CnListenerConf: `{"trtype":"fc","traddr":"10.0.0.1","trsvcid":"1"}`})
			return err
		}, codes.InvalidArgument, "listener_conf"},
		{"cn bad name", func(ctx context.Context, p pb.PortalClient) error {
			_, err := p.CreateCn(ctx, &pb.CreateCnRequest{CnName: "c 1", CnListenerConf: lc})
			return err
		}, codes.InvalidArgument, "controller node"},
		{"da long description", func(ctx context.Context, p pb.PortalClient) error {
			_, err := p.ModifyDa(ctx, &pb.ModifyDaRequest{DaName: "da0", Description: desc(strings.Repeat("x", 300))})
			return err
		}, codes.InvalidArgument, "description"},
		{"page token", func(ctx context.Context, p pb.PortalClient) error {
			_, err := p.ListCn(ctx, &pb.ListCnRequest{Page: &pb.Page{PageToken: strings.Repeat("t", 2000)}})
			return err
		}, codes.InvalidArgument, "page token"},
		{"pd unknown dn", createPd("10.9.9.9:1", "pd1", `{"type":"malloc","size":134217728}`), codes.NotFound, "disk node"},
		{"pd bad name", createPd(dn0, "pd 1", `{"type":"malloc","size":134217728}`), codes.InvalidArgument, "physical disk"},
		{"pd conf empty", createPd(dn0, "pd1", ``), codes.InvalidArgument, "pd_conf"},
		{"pd conf type", createPd(dn0, "pd1", `{"type":"ramdisk"}`), codes.InvalidArgument, "pd_conf"},
		{"pd malloc zero", createPd(dn0, "pd1", `{"type":"malloc","size":0}`), codes.InvalidArgument, "malloc size"},
		{"pd malloc unaligned", createPd(dn0, "pd1", `{"type":"malloc","size":134217729}`), codes.InvalidArgument, "malloc size"},
		{"pd malloc small", createPd(dn0, "pd1", `{"type":"malloc","size":4096}`), codes.InvalidArgument, "malloc size"},
		{"pd malloc negative", createPd(dn0, "pd1", `{"type":"malloc","size":-1}`), codes.InvalidArgument, "pd_conf"},
		{"pd aio relative", createPd(dn0, "pd1", `{"type":"aio","filename":"dev/sdb"}`), codes.InvalidArgument, "aio filename"},
		{"pd aio with size", createPd(dn0, "pd1", `{"type":"aio","filename":"/dev/sdb","size":4096}`), codes.InvalidArgument, "aio"},
		{"pd nvme traddr", createPd(dn0, "pd1", `{"type":"nvme","traddr":"10.0.0.1"}`), codes.InvalidArgument, "nvme traddr"},
		{"pd unknown field", createPd(dn0, "pd1", `{"type":"malloc","size":134217728,"x":1}`), codes.InvalidArgument, `unknown key "x"`},
		{"pd trailing", createPd(dn0, "pd1", `{"type":"malloc","size":134217728}{}`), codes.InvalidArgument, "data after the JSON object"},
		{"pd trailing garbage", createPd(dn0, "pd1", `{"type":"malloc","size":134217728} garbage`), codes.InvalidArgument, "data after the JSON object"},
		{"pd duplicate key", createPd(dn0, "pd1", `{"type":"malloc","size":134217728,"size":268435456}`), codes.InvalidArgument, `key "size" given twice`},
		{"pd key case", createPd(dn0, "pd1", `{"type":"malloc","Size":134217728}`), codes.InvalidArgument, `unknown key "Size"`},
		{"pd wrong type", createPd(dn0, "pd1", `{"type":"malloc","size":"134217728"}`), codes.InvalidArgument, `key "size" must be`},
		{"pd malloc huge", createPd(dn0, "pd1", `{"type":"malloc","size":1099511627776}`), codes.InvalidArgument, "limit of 68719476736 bytes"},
		{"pd aio dotdot", createPd(dn0, "pd1", `{"type":"aio","filename":"/var/lib/vda/../../etc/shadow"}`), codes.InvalidArgument, "clean absolute path"},
		{"pd aio control", createPd(dn0, "pd1", `{"type":"aio","filename":"/dev/sd\u001bb"}`), codes.InvalidArgument, "control character"},
		{"pd force malloc", func(ctx context.Context, p pb.PortalClient) error {
			_, err := p.CreatePd(ctx, &pb.CreatePdRequest{DnName: dn0, PdName: "pd1", PdConf: `{"type":"malloc","size":134217728}`, Force: true})
			return err
		}, codes.InvalidArgument, "aio PDs only"},
		{"pd dot name", createPd(dn0, "..", `{"type":"malloc","size":134217728}`), codes.InvalidArgument, "letter or a digit"},
		{"pd exists", createPd(dn0, "pd0", `{"type":"malloc","size":268435456}`), codes.AlreadyExists,
			`pd_conf {"type":"malloc","size":134217728} (this request: {"type":"malloc","size":268435456})`},
		{"da size zero", createDa("da1", 1, 0, 0, geo), codes.InvalidArgument, "da_size"},
		{"da size unaligned", createDa("da1", 1, 4097, 0, geo), codes.InvalidArgument, "da_size"},
		{"da size 3 blocks", createDa("da1", 1, 3*4096, 0, geo), codes.InvalidArgument, "da_size"},
		{"da size huge", createDa("da1", 1, 1<<51, 0, geo), codes.InvalidArgument, "da_size"},
		{"da physical small", createDa("da1", 1, 32<<20, 16<<20, geo), codes.InvalidArgument, "physical_size"},
		{"da physical unaligned", createDa("da1", 1, 32<<20, 32<<20+512, geo), codes.InvalidArgument, "physical_size"},
		{"da stripes zero", createDa("da1", 1, 32<<20, 0, `{"stripe_count":0,"stripe_size_kb":64}`), codes.InvalidArgument, "stripe_count"},
		{"da stripes many", createDa("da1", 1, 32<<20, 0, `{"stripe_count":33,"stripe_size_kb":64}`), codes.InvalidArgument, "stripe_count"},
		{"da strip 48", createDa("da1", 1, 32<<20, 0, `{"stripe_count":2,"stripe_size_kb":48}`), codes.InvalidArgument, "stripe_size_kb"},
		{"da strip 2", createDa("da1", 1, 32<<20, 0, `{"stripe_count":2,"stripe_size_kb":2}`), codes.InvalidArgument, "stripe_size_kb"},
		{"da strip 2048", createDa("da1", 1, 32<<20, 0, `{"stripe_count":2,"stripe_size_kb":2048}`), codes.InvalidArgument, "stripe_size_kb"},
		{"da conf not json", createDa("da1", 1, 32<<20, 0, `stripe_count=2`), codes.InvalidArgument, "da_conf"},
		{"da conf unknown", createDa("da1", 1, 32<<20, 0, `{"stripe_count":2,"stripe_size_kb":64,"raid":5}`), codes.InvalidArgument, "da_conf"},
		{"da conf key case", createDa("da1", 1, 32<<20, 0, `{"Stripe_Count":2,"stripe_size_kb":64}`), codes.InvalidArgument, `unknown key "Stripe_Count"`},
		{"da conf duplicate", createDa("da1", 1, 32<<20, 0, `{"stripe_count":3,"stripe_count":2,"stripe_size_kb":64}`), codes.InvalidArgument, `key "stripe_count" given twice`},
		{"da conf trailing", createDa("da1", 1, 32<<20, 0, geo+`x`), codes.InvalidArgument, "data after the JSON object"},
		{"da cntlr zero", createDa("da1", 0, 32<<20, 0, geo), codes.InvalidArgument, "cntlr_cnt"},
		{"da cntlr many", createDa("da1", 17, 32<<20, 0, geo), codes.InvalidArgument, "cntlr_cnt"},
		{"da bad name", createDa("da/1", 1, 32<<20, 0, geo), codes.InvalidArgument, "disk array"},
		{"da exists", createDa("da0", 1, 32<<20, 0, geo), codes.AlreadyExists, "cntlr_cnt 2 (this request: 1)"},
		{"da dot name", createDa(".", 1, 32<<20, 0, geo), codes.InvalidArgument, "letter or a digit"},
		{"da too few cns", createDa("da1", 3, 32<<20, 0, geo), codes.ResourceExhausted, "controller nodes"},
		{"da too few pds", createDa("da1", 1, 32<<20, 0, `{"stripe_count":3,"stripe_size_kb":64}`), codes.ResourceExhausted, "physical disks"},
		{"da too big", createDa("da1", 1, 1<<30, 0, geo), codes.ResourceExhausted, "physical disks"},
		{"exp bad nqn", createExp("da0", "exp1", "host0"), codes.InvalidArgument, "initiator_nqn"},
		{"exp reserved nqn", createExp("da0", "exp1", "nqn.2016-06.io.spdk:vda-exp-da0-exp0"), codes.InvalidArgument, "initiator_nqn"},
		{"exp no da", createExp("da9", "exp1", "nqn.2016-06.io.spdk:host1"), codes.NotFound, `disk array "da9"`},
		{"exp bad name", createExp("da0", "-exp", "nqn.2016-06.io.spdk:host1"), codes.InvalidArgument, "exporter"},
		{"exp exists", createExp("da0", "exp0", "nqn.2016-06.io.spdk:host1"), codes.AlreadyExists,
			`host_nqns "nqn.2016-06.io.spdk:host0" (this request: "nqn.2016-06.io.spdk:host1")`},
		{"exp nqn newline", createExp("da0", "exp1", "nqn.2016-06.io.spdk:host1\n"), codes.InvalidArgument, "printable ASCII"},
		{"exp nqn escape", createExp("da0", "exp1", "nqn.2016-06.io.spdk:\x1b[2Jhost"), codes.InvalidArgument, "printable ASCII"},
		{"exp nqn shell", createExp("da0", "exp1", "nqn.2016-06.io.spdk:x; rm -rf /"), codes.InvalidArgument, "printable ASCII"},
		{"exp nqn long", createExp("da0", "exp1", "nqn.2016-06.io.spdk:"+strings.Repeat("h", 204)), codes.InvalidArgument, "longer than 223"},
		{"delete dn in use", func(ctx context.Context, p pb.PortalClient) error {
			_, err := p.DeleteDn(ctx, &pb.DeleteDnRequest{DnName: dn0})
			return err
		}, codes.FailedPrecondition, "physical disks"},
		{"delete pd in use", func(ctx context.Context, p pb.PortalClient) error {
			_, err := p.DeletePd(ctx, &pb.DeletePdRequest{DnName: dn0, PdName: "pd0"})
			return err
		}, codes.FailedPrecondition, "virtual disks"},
		{"delete cn in use", func(ctx context.Context, p pb.PortalClient) error {
			_, err := p.DeleteCn(ctx, &pb.DeleteCnRequest{CnName: "192.168.0.16:9820"})
			return err
		}, codes.FailedPrecondition, "controllers"},
		{"delete da in use", func(ctx context.Context, p pb.PortalClient) error {
			_, err := p.DeleteDa(ctx, &pb.DeleteDaRequest{DaName: "da0"})
			return err
		}, codes.FailedPrecondition, "exporters"},
		{"delete missing exp", func(ctx context.Context, p pb.PortalClient) error {
			_, err := p.DeleteExp(ctx, &pb.DeleteExpRequest{DaName: "da0", ExpName: "exp9"})
			return err
		}, codes.NotFound, "exp9"},
		{"modify dn listener", func(ctx context.Context, p pb.PortalClient) error {
			_, err := p.ModifyDn(ctx, &pb.ModifyDnRequest{DnName: dn0, DnListenerConf: desc("{}")})
			return err
		}, codes.InvalidArgument, "listener_conf"},
		{"modify cn description", func(ctx context.Context, p pb.PortalClient) error {
			_, err := p.ModifyCn(ctx, &pb.ModifyCnRequest{CnName: "192.168.0.16:9820", Description: desc("\n")})
			return err
		}, codes.InvalidArgument, "description"},
		{"modify exp nqn", func(ctx context.Context, p pb.PortalClient) error {
			_, err := p.ModifyExp(ctx, &pb.ModifyExpRequest{DaName: "da0", ExpName: "exp0", InitiatorNqn: desc("x")})
			return err
		}, codes.InvalidArgument, "initiator_nqn"},
		{"modify missing pd", func(ctx context.Context, p pb.PortalClient) error {
			_, err := p.ModifyPd(ctx, &pb.ModifyPdRequest{DnName: dn0, PdName: "pd9", Offline: new(bool)})
			return err
		}, codes.NotFound, "pd9"},
		{"list limit", func(ctx context.Context, p pb.PortalClient) error {
			_, err := p.ListDa(ctx, &pb.ListDaRequest{Page: &pb.Page{Limit: 1001}})
			return err
		}, codes.InvalidArgument, "limit"},
		{"garbage page token", func(ctx context.Context, p pb.PortalClient) error {
			_, err := p.ListDa(ctx, &pb.ListDaRequest{Page: &pb.Page{PageToken: "%%garbage%%"}})
			return err
		}, codes.InvalidArgument, "bad page token"},
		{"page token of another list", func(ctx context.Context, p pb.PortalClient) error {
			_, err := p.ListPd(ctx, &pb.ListPdRequest{Page: &pb.Page{PageToken: "pd0"}})
			return err
		}, codes.InvalidArgument, "bad page token"},
		{"list exporters of missing da", func(ctx context.Context, p pb.PortalClient) error {
			_, err := p.ListExp(ctx, &pb.ListExpRequest{DaName: "da9"})
			return err
		}, codes.NotFound, `disk array "da9"`},
		{"list pds of missing dn", func(ctx context.Context, p pb.PortalClient) error {
			_, err := p.ListPd(ctx, &pb.ListPdRequest{DnName: "10.9.9.9:9720"})
			return err
		}, codes.NotFound, `disk node "10.9.9.9:9720"`},
		{"list negative", func(ctx context.Context, p pb.PortalClient) error {
			_, err := p.ListPd(ctx, &pb.ListPdRequest{Page: &pb.Page{Limit: -1}})
			return err
		}, codes.InvalidArgument, "limit"},
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

// panicStore panics when the portal reads one particular key.
type panicStore struct{ store.Store }

func (s panicStore) Get(ctx context.Context, key string) (store.KV, error) {
	if key == vda.KeyDN("boom") {
		panic("injected")
	}
	return s.Store.Get(ctx, key)
}

func TestPanicBecomesInternal(t *testing.T) {
	p := dial(t, serve(t, panicStore{newStore(t)}, portal.Config{Insecure: true}), insecure.NewCredentials())
	_, err := p.GetDn(context.Background(), &pb.GetDnRequest{DnName: "boom"})
	require.Equal(t, codes.Internal, status.Code(err), "%v", err)
	// The server survives.
	_, err = p.GetDn(context.Background(), &pb.GetDnRequest{DnName: "fine"})
	require.Equal(t, codes.NotFound, status.Code(err))
}

func TestStatusMapping(t *testing.T) {
	for err, want := range map[error]codes.Code{
		fmt.Errorf("x: %w", vda.ErrInvalidArgument):    codes.InvalidArgument,
		fmt.Errorf("x: %w", vda.ErrNotFound):           codes.NotFound,
		fmt.Errorf("x: %w", vda.ErrAlreadyExists):      codes.AlreadyExists,
		fmt.Errorf("x: %w", vda.ErrFailedPrecondition): codes.FailedPrecondition,
		fmt.Errorf("x: %w", vda.ErrResourceExhausted):  codes.ResourceExhausted,
		fmt.Errorf("x: %w", store.ErrConflict):         codes.Aborted,
		fmt.Errorf("x: %w", store.ErrClosed):           codes.Unavailable,
		context.DeadlineExceeded:                       codes.DeadlineExceeded,
		fmt.Errorf("disk on fire"):                     codes.Internal,
	} {
		st := portal.Status(err)
		require.Equal(t, want, st.Code(), "%v", err)
		require.Equal(t, err.Error(), st.Message())
	}
	require.Nil(t, portal.Status(nil))
}

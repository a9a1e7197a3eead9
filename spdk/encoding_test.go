package spdk

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// unrecorded holds the request encodings of typed methods that the transcripts do not
// exercise, as SPDK's v24.01 decoders (lib/nvmf/nvmf_rpc.c, module/bdev/lvol/vbdev_lvol_rpc.c,
// lib/bdev/bdev_rpc.c) expect them.
var unrecorded = []struct {
	method string
	call   func(context.Context, *Client) error
	want   string
}{
	{
		"nvmf_subsystem_listener_set_ana_state",
		func(ctx context.Context, c *Client) error {
			return c.NvmfSubsystemListenerSetANAState(ctx, NvmfSubsystemListenerSetANAStateParams{
				NQN:           "nqn.2016-06.io.vda:exp-da1-exp1",
				ListenAddress: ListenAddress{TRType: "tcp", TRAddr: "127.0.0.1", TRSvcID: "4430", AdrFam: "ipv4"},
				ANAState:      ANANonOptimized,
			})
		},
		`{"nqn":"nqn.2016-06.io.vda:exp-da1-exp1","listen_address":{"trtype":"tcp","traddr":"127.0.0.1","trsvcid":"4430","adrfam":"ipv4"},"ana_state":"non_optimized"}`,
	},
	{
		"nvmf_subsystem_listener_set_ana_state",
		func(ctx context.Context, c *Client) error {
			return c.NvmfSubsystemListenerSetANAState(ctx, NvmfSubsystemListenerSetANAStateParams{
				NQN:           "nqn.x",
				ListenAddress: ListenAddress{TRType: "TCP", TRAddr: "10.0.0.1", TRSvcID: "4420"},
				ANAState:      ANAOptimized,
				ANAGrpID:      2,
			})
		},
		`{"nqn":"nqn.x","listen_address":{"trtype":"TCP","traddr":"10.0.0.1","trsvcid":"4420"},"ana_state":"optimized","anagrpid":2}`,
	},
	{
		"nvmf_create_subsystem",
		func(ctx context.Context, c *Client) error {
			return c.NvmfCreateSubsystem(ctx, NvmfCreateSubsystemParams{
				NQN: "nqn.x", AllowAnyHost: new(false), ANAReporting: new(true),
				MinCntlID: new(uint16(1001)), MaxCntlID: new(uint16(2000)),
			})
		},
		`{"nqn":"nqn.x","allow_any_host":false,"min_cntlid":1001,"max_cntlid":2000,"ana_reporting":true}`,
	},
	{
		"sock_impl_set_options",
		func(ctx context.Context, c *Client) error {
			return c.SockImplSetOptions(ctx, SockImplSetOptionsParams{
				ImplName: "posix", EnableZerocopySendServer: new(true), EnableZerocopySendClient: new(false),
			})
		},
		`{"impl_name":"posix","enable_zerocopy_send_server":true,"enable_zerocopy_send_client":false}`,
	},
	{
		"iobuf_set_options",
		func(ctx context.Context, c *Client) error {
			return c.IOBufSetOptions(ctx, IOBufSetOptionsParams{SmallPoolCount: new(uint64(8192)), LargePoolCount: new(uint64(1024))})
		},
		`{"small_pool_count":8192,"large_pool_count":1024}`,
	},
	{
		"framework_set_scheduler",
		func(ctx context.Context, c *Client) error {
			return c.FrameworkSetScheduler(ctx, FrameworkSetSchedulerParams{Name: "static", PeriodUS: new(uint64(1000000))})
		},
		`{"name":"static","period":1000000}`,
	},
	{
		"bdev_set_qd_sampling_period",
		func(ctx context.Context, c *Client) error {
			return c.BdevSetQDSamplingPeriod(ctx, BdevSetQDSamplingPeriodParams{Name: "m0", PeriodUS: 10})
		},
		`{"name":"m0","period":10}`,
	},
	{
		"bdev_wait_for_examine",
		func(ctx context.Context, c *Client) error { return c.BdevWaitForExamine(ctx) },
		``,
	},
	{
		"bdev_lvol_rename",
		func(ctx context.Context, c *Client) error {
			return c.BdevLvolRename(ctx, BdevLvolRenameParams{OldName: "lvs/a", NewName: "b"})
		},
		`{"old_name":"lvs/a","new_name":"b"}`,
	},
	{
		"bdev_lvol_inflate",
		func(ctx context.Context, c *Client) error { return c.BdevLvolInflate(ctx, NameParams{Name: "lvs/a"}) },
		`{"name":"lvs/a"}`,
	},
	{
		"bdev_lvol_decouple_parent",
		func(ctx context.Context, c *Client) error {
			return c.BdevLvolDecoupleParent(ctx, NameParams{Name: "lvs/a"})
		},
		`{"name":"lvs/a"}`,
	},
	{
		"bdev_lvol_set_read_only",
		func(ctx context.Context, c *Client) error {
			return c.BdevLvolSetReadOnly(ctx, NameParams{Name: "lvs/a"})
		},
		`{"name":"lvs/a"}`,
	},
	{
		"bdev_lvol_resize",
		func(ctx context.Context, c *Client) error {
			return c.BdevLvolResize(ctx, BdevLvolResizeParams{Name: "lvs/a", SizeInMiB: new(uint64(96))})
		},
		`{"name":"lvs/a","size_in_mib":96}`,
	},
	{
		"bdev_raid_create",
		func(ctx context.Context, c *Client) error {
			return c.BdevRaidCreate(ctx, BdevRaidCreateParams{Name: "r", RaidLevel: "raid1"})
		},
		`{"name":"r","raid_level":"raid1","strip_size_kb":0,"base_bdevs":[]}`,
	},
}

func TestUnrecordedEncodings(t *testing.T) {
	got := make(chan *serverReq, 1)
	s := newTestServer(t, func(r *serverReq) { got <- r; r.reply(true) })
	c := dialTest(t, s)
	for _, tc := range unrecorded {
		t.Run(tc.method, func(t *testing.T) {
			require.NoError(t, tc.call(context.Background(), c))
			r := <-got
			require.Equal(t, tc.method, r.Method)
			if tc.want == "" {
				require.Empty(t, r.Params)
				return
			}
			require.JSONEq(t, tc.want, string(r.Params))
		})
	}
}

// TestEveryTypedMethodIsCovered: each typed method is checked either against a recording or
// against the table above.
func TestEveryTypedMethodIsCovered(t *testing.T) {
	recorded := map[string]bool{}
	for _, r := range loadTranscripts(t) {
		recorded[r.method] = true
	}
	for _, u := range unrecorded {
		recorded[u.method] = true
	}
	for m := range invokers {
		require.True(t, recorded[m], "typed method %s has no golden encoding", m)
	}
}

func TestListenerANAState(t *testing.T) {
	var ls []Listener
	require.NoError(t, json.Unmarshal([]byte(`[
		{"address":{"trtype":"TCP","adrfam":"IPv4","traddr":"127.0.0.1","trsvcid":"4430"},
		 "ana_states":[{"ana_group":1,"ana_state":"optimized"},{"ana_group":2,"ana_state":"inaccessible"}]},
		{"address":{"trtype":"TCP","adrfam":"IPv4","traddr":"127.0.0.1","trsvcid":"4431"},"ana_state":"non_optimized"}]`), &ls))
	require.Equal(t, ANAOptimized, ls[0].State(1))
	require.Equal(t, ANAInaccessible, ls[0].State(2))
	require.Equal(t, ANANonOptimized, ls[1].State(1))
}

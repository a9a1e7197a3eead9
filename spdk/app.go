package spdk

import (
	"context"
	"fmt"
)

// readOnly lists the methods that change nothing in SPDK. Only these are retried on a fresh
// connection when the connection breaks while their reply is awaited; every other method is
// assumed to mutate state and fails with ErrOutcomeUnknown instead.
var readOnly = map[string]bool{
	"spdk_get_version":               true,
	"rpc_get_methods":                true,
	"framework_wait_init":            true,
	"bdev_get_bdevs":                 true,
	"bdev_get_iostat":                true,
	"bdev_get_histogram":             true,
	"bdev_wait_for_examine":          true,
	"bdev_lvol_get_lvstores":         true,
	"bdev_lvol_get_lvols":            true,
	"bdev_raid_get_bdevs":            true,
	"bdev_nvme_get_controllers":      true,
	"bdev_nvme_get_io_paths":         true,
	"nvmf_get_subsystems":            true,
	"nvmf_get_transports":            true,
	"nvmf_subsystem_get_controllers": true,
	"nvmf_subsystem_get_qpairs":      true,
	"nvmf_subsystem_get_listeners":   true,
}

// IsReadOnly reports whether method is known to change nothing, and so may be retried.
func IsReadOnly(method string) bool { return readOnly[method] }

// Version is the result of spdk_get_version.
type Version struct {
	Version string        `json:"version"` // "SPDK v24.01 git sha1 0786843e99"
	Fields  VersionFields `json:"fields"`
}

// VersionFields is the parsed version.
type VersionFields struct {
	Major  int    `json:"major"`
	Minor  int    `json:"minor"`
	Patch  int    `json:"patch"`
	Suffix string `json:"suffix"`
	Commit string `json:"commit,omitempty"`
}

// AtLeast reports whether the version is major.minor or newer (24.01 is AtLeast(24, 1)).
func (v Version) AtLeast(major, minor int) bool {
	if v.Fields.Major != major {
		return v.Fields.Major > major
	}
	return v.Fields.Minor >= minor
}

// SpdkGetVersion calls spdk_get_version.
func (c *Client) SpdkGetVersion(ctx context.Context) (Version, error) {
	var v Version
	err := c.Call(ctx, "spdk_get_version", nil, &v)
	return v, err
}

// Version is SpdkGetVersion.
func (c *Client) Version(ctx context.Context) (Version, error) { return c.SpdkGetVersion(ctx) }

// RPCGetMethodsParams are the params of rpc_get_methods.
type RPCGetMethodsParams struct {
	// Current lists only the methods callable in the current phase (startup or runtime).
	Current        bool `json:"current,omitempty"`
	IncludeAliases bool `json:"include_aliases,omitempty"`
}

// RPCGetMethods calls rpc_get_methods. With zero params no params are sent.
func (c *Client) RPCGetMethods(ctx context.Context, p RPCGetMethodsParams) ([]string, error) {
	var params any
	if p != (RPCGetMethodsParams{}) {
		params = p
	}
	var out []string
	err := c.Call(ctx, "rpc_get_methods", params, &out)
	return out, err
}

// Methods lists SPDK's methods: those callable now if current, otherwise all registered ones.
func (c *Client) Methods(ctx context.Context, current bool) ([]string, error) {
	return c.RPCGetMethods(ctx, RPCGetMethodsParams{Current: current})
}

// Supports reports whether SPDK registers method (in any phase). The method list is fetched
// once per connection and cached: a reconnect (perhaps to an upgraded SPDK) refreshes it.
func (c *Client) Supports(ctx context.Context, method string) (bool, error) {
	c.capMu.Lock()
	cached := c.methods
	c.capMu.Unlock()
	if cached == nil {
		list, err := c.Methods(ctx, false)
		if err != nil {
			return false, fmt.Errorf("spdk: checking support for %s: %w", method, err)
		}
		cached = make(map[string]struct{}, len(list))
		for _, m := range list {
			cached[m] = struct{}{}
		}
		c.capMu.Lock()
		c.methods = cached
		c.capMu.Unlock()
	}
	_, ok := cached[method]
	return ok, nil
}

func (c *Client) resetCapabilities() {
	c.capMu.Lock()
	c.methods = nil
	c.capMu.Unlock()
}

// FrameworkStartInit calls framework_start_init (leaves the --wait-for-rpc startup phase).
func (c *Client) FrameworkStartInit(ctx context.Context) error {
	return c.Call(ctx, "framework_start_init", nil, nil)
}

// FrameworkWaitInit calls framework_wait_init: it returns once initialisation is complete.
func (c *Client) FrameworkWaitInit(ctx context.Context) error {
	return c.Call(ctx, "framework_wait_init", nil, nil)
}

// SpdkKillInstanceParams are the params of spdk_kill_instance.
type SpdkKillInstanceParams struct {
	SigName string `json:"sig_name"` // SIGINT, SIGTERM, SIGQUIT, SIGHUP or SIGKILL
}

// SpdkKillInstance calls spdk_kill_instance. SPDK replies before it exits.
func (c *Client) SpdkKillInstance(ctx context.Context, p SpdkKillInstanceParams) error {
	return c.Call(ctx, "spdk_kill_instance", p, nil)
}

// BdevSetOptionsParams are the params of bdev_set_options (startup phase only).
// Pointers distinguish "leave SPDK's default" (nil) from an explicit value.
type BdevSetOptionsParams struct {
	BdevIOPoolSize      *uint32 `json:"bdev_io_pool_size,omitempty"`
	BdevIOCacheSize     *uint32 `json:"bdev_io_cache_size,omitempty"`
	BdevAutoExamine     *bool   `json:"bdev_auto_examine,omitempty"`
	IOBufSmallCacheSize *uint32 `json:"iobuf_small_cache_size,omitempty"`
	IOBufLargeCacheSize *uint32 `json:"iobuf_large_cache_size,omitempty"`
}

// BdevSetOptions calls bdev_set_options.
func (c *Client) BdevSetOptions(ctx context.Context, p BdevSetOptionsParams) error {
	return c.Call(ctx, "bdev_set_options", p, nil)
}

// BdevNvmeSetOptionsParams are the params of bdev_nvme_set_options (allowed only while no
// NVMe controller exists). nil leaves SPDK's default.
type BdevNvmeSetOptionsParams struct {
	ActionOnTimeout         string  `json:"action_on_timeout,omitempty"` // none, reset, abort
	TimeoutUS               *uint64 `json:"timeout_us,omitempty"`
	TimeoutAdminUS          *uint64 `json:"timeout_admin_us,omitempty"`
	KeepAliveTimeoutMS      *uint32 `json:"keep_alive_timeout_ms,omitempty"`
	TransportRetryCount     *uint32 `json:"transport_retry_count,omitempty"`
	ArbitrationBurst        *uint32 `json:"arbitration_burst,omitempty"`
	LowPriorityWeight       *uint32 `json:"low_priority_weight,omitempty"`
	MediumPriorityWeight    *uint32 `json:"medium_priority_weight,omitempty"`
	HighPriorityWeight      *uint32 `json:"high_priority_weight,omitempty"`
	NvmeAdminqPollPeriodUS  *uint64 `json:"nvme_adminq_poll_period_us,omitempty"`
	NvmeIOQPollPeriodUS     *uint64 `json:"nvme_ioq_poll_period_us,omitempty"`
	IOQueueRequests         *uint32 `json:"io_queue_requests,omitempty"`
	DelayCmdSubmit          *bool   `json:"delay_cmd_submit,omitempty"`
	BdevRetryCount          *int32  `json:"bdev_retry_count,omitempty"` // -1: infinite
	CtrlrLossTimeoutSec     *int32  `json:"ctrlr_loss_timeout_sec,omitempty"`
	ReconnectDelaySec       *uint32 `json:"reconnect_delay_sec,omitempty"`
	FastIOFailTimeoutSec    *uint32 `json:"fast_io_fail_timeout_sec,omitempty"`
	GenerateUUIDs           *bool   `json:"generate_uuids,omitempty"`
	DisableAutoFailback     *bool   `json:"disable_auto_failback,omitempty"`
	IOPathStat              *bool   `json:"io_path_stat,omitempty"`
	TransportAckTimeout     *uint32 `json:"transport_ack_timeout,omitempty"`
	TransportTos            *uint32 `json:"transport_tos,omitempty"`
	NvmeErrorStat           *bool   `json:"nvme_error_stat,omitempty"`
	RdmaSrqSize             *uint32 `json:"rdma_srq_size,omitempty"`
	FabricsConnectTimeoutUS *uint64 `json:"fabrics_connect_timeout_us,omitempty"`
	RdmaMaxCqSize           *uint32 `json:"rdma_max_cq_size,omitempty"`
}

// BdevNvmeSetOptions calls bdev_nvme_set_options.
func (c *Client) BdevNvmeSetOptions(ctx context.Context, p BdevNvmeSetOptionsParams) error {
	return c.Call(ctx, "bdev_nvme_set_options", p, nil)
}

// NvmfAdminCmdPassthru is the admin_cmd_passthru object of nvmf_set_config.
type NvmfAdminCmdPassthru struct {
	IdentifyCtrlr bool `json:"identify_ctrlr"`
}

// NvmfSetConfigParams are the params of nvmf_set_config (startup phase only).
type NvmfSetConfigParams struct {
	DiscoveryFilter  string                `json:"discovery_filter,omitempty"` // match_any, ...
	AdminCmdPassthru *NvmfAdminCmdPassthru `json:"admin_cmd_passthru,omitempty"`
	PollGroupsMask   string                `json:"poll_groups_mask,omitempty"`
}

// NvmfSetConfig calls nvmf_set_config.
func (c *Client) NvmfSetConfig(ctx context.Context, p NvmfSetConfigParams) error {
	return c.Call(ctx, "nvmf_set_config", p, nil)
}

// NvmfSetMaxSubsystemsParams are the params of nvmf_set_max_subsystems (startup phase only).
type NvmfSetMaxSubsystemsParams struct {
	MaxSubsystems uint32 `json:"max_subsystems"`
}

// NvmfSetMaxSubsystems calls nvmf_set_max_subsystems.
func (c *Client) NvmfSetMaxSubsystems(ctx context.Context, p NvmfSetMaxSubsystemsParams) error {
	return c.Call(ctx, "nvmf_set_max_subsystems", p, nil)
}

// SockImplSetOptionsParams are the params of sock_impl_set_options (startup phase only).
type SockImplSetOptionsParams struct {
	ImplName                 string  `json:"impl_name"` // posix, ssl, uring
	RecvBufSize              *uint32 `json:"recv_buf_size,omitempty"`
	SendBufSize              *uint32 `json:"send_buf_size,omitempty"`
	EnableRecvPipe           *bool   `json:"enable_recv_pipe,omitempty"`
	EnableQuickack           *bool   `json:"enable_quickack,omitempty"`
	EnablePlacementID        *uint32 `json:"enable_placement_id,omitempty"`
	EnableZerocopySendServer *bool   `json:"enable_zerocopy_send_server,omitempty"`
	EnableZerocopySendClient *bool   `json:"enable_zerocopy_send_client,omitempty"`
	ZerocopyThreshold        *uint32 `json:"zerocopy_threshold,omitempty"`
	TLSVersion               *uint32 `json:"tls_version,omitempty"`
	EnableKTLS               *bool   `json:"enable_ktls,omitempty"`
}

// SockImplSetOptions calls sock_impl_set_options.
func (c *Client) SockImplSetOptions(ctx context.Context, p SockImplSetOptionsParams) error {
	return c.Call(ctx, "sock_impl_set_options", p, nil)
}

// IOBufSetOptionsParams are the params of iobuf_set_options (startup phase only).
type IOBufSetOptionsParams struct {
	SmallPoolCount *uint64 `json:"small_pool_count,omitempty"`
	LargePoolCount *uint64 `json:"large_pool_count,omitempty"`
	SmallBufSize   *uint32 `json:"small_bufsize,omitempty"`
	LargeBufSize   *uint32 `json:"large_bufsize,omitempty"`
}

// IOBufSetOptions calls iobuf_set_options.
func (c *Client) IOBufSetOptions(ctx context.Context, p IOBufSetOptionsParams) error {
	return c.Call(ctx, "iobuf_set_options", p, nil)
}

// FrameworkSetSchedulerParams are the params of framework_set_scheduler. The limits apply to
// the dynamic scheduler only.
type FrameworkSetSchedulerParams struct {
	Name      string  `json:"name"`             // static, dynamic, gscheduler
	PeriodUS  *uint64 `json:"period,omitempty"` // microseconds
	LoadLimit *uint8  `json:"load_limit,omitempty"`
	CoreLimit *uint8  `json:"core_limit,omitempty"`
	CoreBusy  *uint8  `json:"core_busy,omitempty"`
}

// FrameworkSetScheduler calls framework_set_scheduler.
func (c *Client) FrameworkSetScheduler(ctx context.Context, p FrameworkSetSchedulerParams) error {
	return c.Call(ctx, "framework_set_scheduler", p, nil)
}

package spdk

import "context"

// BdevNvmeAttachControllerParams are the params of bdev_nvme_attach_controller.
type BdevNvmeAttachControllerParams struct {
	Name      string `json:"name"`
	TRType    string `json:"trtype"` // tcp, rdma, pcie
	TRAddr    string `json:"traddr"`
	AdrFam    string `json:"adrfam,omitempty"` // ipv4, ipv6
	TRSvcID   string `json:"trsvcid,omitempty"`
	SubNQN    string `json:"subnqn,omitempty"`
	HostNQN   string `json:"hostnqn,omitempty"`
	HostAddr  string `json:"hostaddr,omitempty"`
	HostSvcID string `json:"hostsvcid,omitempty"`
	// Multipath is failover (SPDK's default), multipath or disable.
	Multipath               string  `json:"multipath,omitempty"`
	HDGst                   *bool   `json:"hdgst,omitempty"`
	DDGst                   *bool   `json:"ddgst,omitempty"`
	NumIOQueues             *uint32 `json:"num_io_queues,omitempty"`
	CtrlrLossTimeoutSec     *int32  `json:"ctrlr_loss_timeout_sec,omitempty"` // -1: forever
	ReconnectDelaySec       *uint32 `json:"reconnect_delay_sec,omitempty"`
	FastIOFailTimeoutSec    *uint32 `json:"fast_io_fail_timeout_sec,omitempty"`
	PSK                     string  `json:"psk,omitempty"`
	MaxBdevs                *uint32 `json:"max_bdevs,omitempty"`
	PrchkReftag             *bool   `json:"prchk_reftag,omitempty"`
	PrchkGuard              *bool   `json:"prchk_guard,omitempty"`
	FabricsConnectTimeoutUS *uint64 `json:"fabrics_connect_timeout_us,omitempty"`
}

// BdevNvmeAttachController calls bdev_nvme_attach_controller and returns the names of the
// bdevs it created ("<name>n<nsid>"). The list can be empty (a uuid clash; see the package
// README): check it.
func (c *Client) BdevNvmeAttachController(ctx context.Context, p BdevNvmeAttachControllerParams) ([]string, error) {
	var out []string
	err := c.Call(ctx, "bdev_nvme_attach_controller", p, &out)
	return out, err
}

// BdevNvmeDetachControllerParams are the params of bdev_nvme_detach_controller. With only Name
// every path is removed; the transport fields select one path.
type BdevNvmeDetachControllerParams struct {
	Name      string `json:"name"`
	TRType    string `json:"trtype,omitempty"`
	TRAddr    string `json:"traddr,omitempty"`
	AdrFam    string `json:"adrfam,omitempty"`
	TRSvcID   string `json:"trsvcid,omitempty"`
	SubNQN    string `json:"subnqn,omitempty"`
	HostAddr  string `json:"hostaddr,omitempty"`
	HostSvcID string `json:"hostsvcid,omitempty"`
}

// BdevNvmeDetachController calls bdev_nvme_detach_controller.
func (c *Client) BdevNvmeDetachController(ctx context.Context, p BdevNvmeDetachControllerParams) error {
	return c.Call(ctx, "bdev_nvme_detach_controller", p, nil)
}

// NvmeController is one element of bdev_nvme_get_controllers: a named controller and its
// paths.
type NvmeController struct {
	Name   string      `json:"name"`
	Ctrlrs []NvmeCtrlr `json:"ctrlrs"`
}

// NVMe controller states reported in NvmeCtrlr.State.
const (
	CtrlrEnabled            = "enabled"
	CtrlrResetting          = "resetting"
	CtrlrFailed             = "failed"
	CtrlrReconnectIsDelayed = "reconnect_is_delayed"
	CtrlrDeleting           = "deleting"
	CtrlrDisabled           = "disabled"
)

// NvmeCtrlr is one path of an NVMe controller.
type NvmeCtrlr struct {
	State  string        `json:"state"`
	TRID   TransportID   `json:"trid"`
	CntlID uint16        `json:"cntlid"`
	Host   NvmeCtrlrHost `json:"host"`
}

// NvmeCtrlrHost is the local (host) side of an NVMe controller path.
type NvmeCtrlrHost struct {
	NQN   string `json:"nqn"`
	Addr  string `json:"addr"`
	SvcID string `json:"svcid"`
}

// BdevNvmeGetControllersParams are the params of bdev_nvme_get_controllers. Zero params list
// every controller.
type BdevNvmeGetControllersParams struct {
	Name string `json:"name,omitempty"`
}

// BdevNvmeGetControllers calls bdev_nvme_get_controllers. An unknown name fails with
// ErrNotFound (SPDK answers code +22).
func (c *Client) BdevNvmeGetControllers(ctx context.Context, p BdevNvmeGetControllersParams) ([]NvmeController, error) {
	var out []NvmeController
	err := c.Call(ctx, "bdev_nvme_get_controllers", optional(p, BdevNvmeGetControllersParams{}),
		fastList[NvmeController]{&out, (*fastParser).nvmeController})
	return out, err
}

// BdevNvmeGetIOPathsParams are the params of bdev_nvme_get_io_paths.
type BdevNvmeGetIOPathsParams struct {
	Name string `json:"name,omitempty"`
}

// IOPaths is the result of bdev_nvme_get_io_paths.
type IOPaths struct {
	PollGroups []IOPollGroup `json:"poll_groups"`
}

// IOPollGroup is the I/O paths of one SPDK thread.
type IOPollGroup struct {
	Thread  string   `json:"thread"`
	IOPaths []IOPath `json:"io_paths"`
}

// IOPath is one NVMe I/O path of a poll group.
type IOPath struct {
	BdevName   string      `json:"bdev_name"`
	CntlID     uint16      `json:"cntlid"`
	Current    bool        `json:"current"`
	Connected  bool        `json:"connected"`
	Accessible bool        `json:"accessible"`
	Transport  TransportID `json:"transport"`
	ANAState   string      `json:"ana_state,omitempty"`
}

// BdevNvmeGetIOPaths calls bdev_nvme_get_io_paths. The list is empty until I/O channels exist.
func (c *Client) BdevNvmeGetIOPaths(ctx context.Context, p BdevNvmeGetIOPathsParams) (IOPaths, error) {
	var out IOPaths
	err := c.Call(ctx, "bdev_nvme_get_io_paths", optional(p, BdevNvmeGetIOPathsParams{}), &out)
	return out, err
}

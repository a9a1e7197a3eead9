package spdk

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
)

// Bdev product names as reported in Bdev.ProductName.
const (
	ProductMalloc   = "Malloc disk"
	ProductAIO      = "AIO disk"
	ProductNull     = "Null disk"
	ProductNVMe     = "NVMe disk"
	ProductRaid     = "Raid Volume"
	ProductPassthru = "passthru"
	ProductLvol     = "Logical Volume"
)

// Bdev is one element of bdev_get_bdevs.
type Bdev struct {
	Name               string          `json:"name"`
	Aliases            []string        `json:"aliases"`
	ProductName        string          `json:"product_name"`
	BlockSize          uint32          `json:"block_size"`
	NumBlocks          uint64          `json:"num_blocks"`
	UUID               string          `json:"uuid"`
	AssignedRateLimits RateLimits      `json:"assigned_rate_limits"`
	Claimed            bool            `json:"claimed"`
	ClaimType          string          `json:"claim_type,omitempty"`
	Zoned              bool            `json:"zoned"`
	SupportedIOTypes   map[string]bool `json:"supported_io_types,omitempty"`
	DriverSpecific     DriverSpecific  `json:"driver_specific"`
}

// SizeBytes is BlockSize * NumBlocks.
func (b Bdev) SizeBytes() uint64 { return uint64(b.BlockSize) * b.NumBlocks }

// RateLimits are a bdev's QoS limits; 0 means unlimited.
type RateLimits struct {
	RWIOsPerSec    uint64 `json:"rw_ios_per_sec"`
	RWMBytesPerSec uint64 `json:"rw_mbytes_per_sec"`
	RMBytesPerSec  uint64 `json:"r_mbytes_per_sec"`
	WMBytesPerSec  uint64 `json:"w_mbytes_per_sec"`
}

// DriverSpecific holds the per-module part of a bdev; at most one of the module fields is set.
type DriverSpecific struct {
	Lvol     *LvolInfo      `json:"lvol,omitempty"`
	NVMe     []NVMeNSInfo   `json:"nvme,omitempty"`
	MPPolicy string         `json:"mp_policy,omitempty"` // NVMe multipath policy
	Raid     *RaidBdev      `json:"raid,omitempty"`
	Passthru *PassthruInfo  `json:"passthru,omitempty"`
	AIO      *AIOInfo       `json:"aio,omitempty"`
	Other    map[string]any `json:"-"`
}

// UnmarshalJSON decodes the known modules and keeps the others, undecoded, in Other.
func (d *DriverSpecific) UnmarshalJSON(b []byte) error {
	type known DriverSpecific
	var k known
	if err := json.Unmarshal(b, &k); err != nil {
		return err
	}
	if onlyKnownModules(b) {
		// The common case: nothing for Other, so no generic decode of the whole object.
		*d = DriverSpecific(k)
		return nil
	}
	var all map[string]any
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	for _, key := range driverSpecificKeys {
		delete(all, key)
	}
	if len(all) > 0 {
		k.Other = all
	}
	*d = DriverSpecific(k)
	return nil
}

// driverSpecificKeys are the members of driver_specific that DriverSpecific decodes.
var driverSpecificKeys = []string{"lvol", "nvme", "mp_policy", "raid", "passthru", "aio"}

// onlyKnownModules reports whether the JSON object b (valid: encoding/json hands
// UnmarshalJSON a checked value) has no member whose name is outside driverSpecificKeys,
// spelled exactly so and without escapes; anything else gets the full decode for Other.
func onlyKnownModules(b []byte) bool {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return true
	}
	for i < len(b) && b[i] == '"' {
		end := bytes.IndexByte(b[i+1:], '"')
		if end < 0 {
			return false
		}
		name := b[i+1 : i+1+end]
		if !slices.Contains(driverSpecificKeys, string(name)) {
			return false // also a name with escapes: it may be anything
		}
		i = skipSpace(b, i+2+end)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipValue(b, skipSpace(b, i+1))
		i = skipSpace(b, i)
		if i < len(b) && b[i] == '}' {
			return true
		}
		if i >= len(b) || b[i] != ',' {
			return false
		}
		i = skipSpace(b, i+1)
	}
	return false
}

// skipValue returns the offset just past the valid JSON value starting at b[i].
func skipValue(b []byte, i int) int {
	depth := 0
	for i < len(b) {
		switch c := b[i]; c {
		case '"':
			i++
			for i < len(b) && b[i] != '"' {
				if b[i] == '\\' {
					i++
				}
				i++
			}
			i++
		case '{', '[':
			depth++
			i++
		case '}', ']':
			if depth == 0 {
				return i // the end of the enclosing object
			}
			depth--
			i++
		case ',', ' ', '\n', '\r', '\t':
			if depth == 0 {
				return i
			}
			i++
		default:
			i++
		}
		if depth == 0 && (i >= len(b) || b[i-1] == '"' || b[i-1] == '}' || b[i-1] == ']') {
			return i
		}
	}
	return i
}

// LvolInfo is driver_specific.lvol.
type LvolInfo struct {
	LvolStoreUUID        string   `json:"lvol_store_uuid"`
	BaseBdev             string   `json:"base_bdev"`
	ThinProvision        bool     `json:"thin_provision"`
	NumAllocatedClusters uint64   `json:"num_allocated_clusters,omitempty"`
	Snapshot             bool     `json:"snapshot"`
	Clone                bool     `json:"clone"`
	EsnapClone           bool     `json:"esnap_clone"`
	Clones               []string `json:"clones,omitempty"`        // on a snapshot
	BaseSnapshot         string   `json:"base_snapshot,omitempty"` // on a clone
}

// NVMeNSInfo is one path of driver_specific.nvme.
type NVMeNSInfo struct {
	// PCIAddress is set for a local (PCIe) controller only.
	PCIAddress string        `json:"pci_address,omitempty"`
	TRID       TransportID   `json:"trid"`
	CtrlrData  NVMeCtrlrData `json:"ctrlr_data"`
	VS         NVMeVS        `json:"vs"`
	NSData     NVMeNSData    `json:"ns_data"`
}

// NVMeVS is the NVMe version of a controller.
type NVMeVS struct {
	NVMeVersion string `json:"nvme_version"`
}

// NVMeNSData identifies the namespace behind an NVMe bdev path.
type NVMeNSData struct {
	ID       uint32 `json:"id"`
	CanShare bool   `json:"can_share"`
	ANAState string `json:"ana_state,omitempty"`
}

// NVMeCtrlrData is the identify-controller summary of an NVMe bdev path.
type NVMeCtrlrData struct {
	CntlID           uint16          `json:"cntlid"`
	VendorID         string          `json:"vendor_id"`
	ModelNumber      string          `json:"model_number"`
	SerialNumber     string          `json:"serial_number"`
	FirmwareRevision string          `json:"firmware_revision"`
	SubNQN           string          `json:"subnqn,omitempty"`
	OACS             map[string]uint `json:"oacs,omitempty"`
	MultiCtrlr       bool            `json:"multi_ctrlr"`
	ANAReporting     bool            `json:"ana_reporting"`
}

// TransportID is an NVMe transport id as SPDK reports it (values upper-cased: "TCP", "IPv4").
type TransportID struct {
	TRType  string `json:"trtype"`
	AdrFam  string `json:"adrfam,omitempty"`
	TRAddr  string `json:"traddr"`
	TRSvcID string `json:"trsvcid,omitempty"`
	SubNQN  string `json:"subnqn,omitempty"`
}

// PassthruInfo is driver_specific.passthru.
type PassthruInfo struct {
	Name         string `json:"name"`
	BaseBdevName string `json:"base_bdev_name"`
}

// AIOInfo is driver_specific.aio.
type AIOInfo struct {
	Filename          string `json:"filename"`
	BlockSizeOverride bool   `json:"block_size_override"`
	Readonly          bool   `json:"readonly"`
}

// BdevGetBdevsParams are the params of bdev_get_bdevs. Zero params list every bdev.
type BdevGetBdevsParams struct {
	Name      string `json:"name,omitempty"`    // a name, an alias or a uuid
	TimeoutMS uint64 `json:"timeout,omitempty"` // wait up to this long for Name to appear
}

// BdevGetBdevs calls bdev_get_bdevs. An unknown name fails with ErrNotFound.
func (c *Client) BdevGetBdevs(ctx context.Context, p BdevGetBdevsParams) ([]Bdev, error) {
	var out []Bdev
	err := c.Call(ctx, "bdev_get_bdevs", optional(p, BdevGetBdevsParams{}), fastList[Bdev]{&out, (*fastParser).bdev})
	return out, err
}

// BdevGetBdevsBrief is BdevGetBdevs for a caller that needs neither a bdev's
// supported_io_types nor the per-path details of an NVMe bdev: it leaves
// SupportedIOTypes and DriverSpecific.NVMe nil and reads past them without
// decoding them (still checking that they are JSON). Those two are most of
// what a listing of NVMe bdevs holds, and of what decoding it allocates; a
// node's agent lists every bdev on each sync and reads neither.
func (c *Client) BdevGetBdevsBrief(ctx context.Context, p BdevGetBdevsParams) ([]Bdev, error) {
	var out []Bdev
	err := c.Call(ctx, "bdev_get_bdevs", optional(p, BdevGetBdevsParams{}), fastList[Bdev]{&out, (*fastParser).bdevBrief})
	for i := range out { // encoding/json decoded them if the one-pass decode did not take the reply
		out[i].SupportedIOTypes, out[i].DriverSpecific.NVMe = nil, nil
	}
	return out, err
}

// optional returns nil (no params sent) for the zero value, p otherwise.
func optional[T comparable](p, zero T) any {
	if p == zero {
		return nil
	}
	return p
}

// NameParams is the {"name": ...} params object shared by many methods.
type NameParams struct {
	Name string `json:"name"`
}

// BdevExamine calls bdev_examine. It is asynchronous: poll for the lvstore afterwards. An
// unknown name returns success; a second examine of the same bdev fails with ErrExists.
func (c *Client) BdevExamine(ctx context.Context, p NameParams) error {
	return c.Call(ctx, "bdev_examine", p, nil)
}

// BdevWaitForExamine calls bdev_wait_for_examine.
func (c *Client) BdevWaitForExamine(ctx context.Context) error {
	return c.Call(ctx, "bdev_wait_for_examine", nil, nil)
}

// BdevSetQosLimitParams are the params of bdev_set_qos_limit. nil leaves a limit unchanged;
// 0 removes it. At least one limit must be given.
type BdevSetQosLimitParams struct {
	Name           string  `json:"name"`
	RWIOsPerSec    *uint64 `json:"rw_ios_per_sec,omitempty"`
	RWMBytesPerSec *uint64 `json:"rw_mbytes_per_sec,omitempty"`
	RMBytesPerSec  *uint64 `json:"r_mbytes_per_sec,omitempty"`
	WMBytesPerSec  *uint64 `json:"w_mbytes_per_sec,omitempty"`
}

// BdevSetQosLimit calls bdev_set_qos_limit.
func (c *Client) BdevSetQosLimit(ctx context.Context, p BdevSetQosLimitParams) error {
	return c.Call(ctx, "bdev_set_qos_limit", p, nil)
}

// BdevGetIostatParams are the params of bdev_get_iostat. Zero params report every bdev.
type BdevGetIostatParams struct {
	Name       string `json:"name,omitempty"`
	PerChannel bool   `json:"per_channel,omitempty"`
}

// IOStat is the result of bdev_get_iostat.
type IOStat struct {
	TickRate uint64       `json:"tick_rate"`
	Ticks    uint64       `json:"ticks"`
	Bdevs    []BdevIOStat `json:"bdevs"`
}

// BdevIOStat is the I/O statistics of one bdev. Name is the real bdev name (the UUID for
// lvols). The queue-depth fields are present only when sampling is enabled.
type BdevIOStat struct {
	Name                 string            `json:"name"`
	BytesRead            uint64            `json:"bytes_read"`
	NumReadOps           uint64            `json:"num_read_ops"`
	BytesWritten         uint64            `json:"bytes_written"`
	NumWriteOps          uint64            `json:"num_write_ops"`
	BytesUnmapped        uint64            `json:"bytes_unmapped"`
	NumUnmapOps          uint64            `json:"num_unmap_ops"`
	BytesCopied          uint64            `json:"bytes_copied"`
	NumCopyOps           uint64            `json:"num_copy_ops"`
	ReadLatencyTicks     uint64            `json:"read_latency_ticks"`
	MaxReadLatencyTicks  uint64            `json:"max_read_latency_ticks"`
	MinReadLatencyTicks  uint64            `json:"min_read_latency_ticks"`
	WriteLatencyTicks    uint64            `json:"write_latency_ticks"`
	MaxWriteLatencyTicks uint64            `json:"max_write_latency_ticks"`
	MinWriteLatencyTicks uint64            `json:"min_write_latency_ticks"`
	UnmapLatencyTicks    uint64            `json:"unmap_latency_ticks"`
	CopyLatencyTicks     uint64            `json:"copy_latency_ticks"`
	IOError              map[string]uint64 `json:"io_error,omitempty"` // e.g. {"failed": 640}
	QueueDepth           *uint64           `json:"queue_depth,omitempty"`
	IOTime               *uint64           `json:"io_time,omitempty"`
	WeightedIOTime       *uint64           `json:"weighted_io_time,omitempty"`
}

// BdevGetIostat calls bdev_get_iostat.
func (c *Client) BdevGetIostat(ctx context.Context, p BdevGetIostatParams) (IOStat, error) {
	var out IOStat
	err := c.Call(ctx, "bdev_get_iostat", optional(p, BdevGetIostatParams{}), &out)
	return out, err
}

// BdevSetQDSamplingPeriodParams are the params of bdev_set_qd_sampling_period.
type BdevSetQDSamplingPeriodParams struct {
	Name     string `json:"name"`
	PeriodUS uint64 `json:"period"` // microseconds; 0 disables sampling
}

// BdevSetQDSamplingPeriod calls bdev_set_qd_sampling_period, which makes bdev_get_iostat
// report the queue-depth fields of that bdev.
func (c *Client) BdevSetQDSamplingPeriod(ctx context.Context, p BdevSetQDSamplingPeriodParams) error {
	return c.Call(ctx, "bdev_set_qd_sampling_period", p, nil)
}

// BdevEnableHistogramParams are the params of bdev_enable_histogram.
type BdevEnableHistogramParams struct {
	Name   string `json:"name"`
	Enable bool   `json:"enable"`
}

// BdevEnableHistogram calls bdev_enable_histogram.
func (c *Client) BdevEnableHistogram(ctx context.Context, p BdevEnableHistogramParams) error {
	return c.Call(ctx, "bdev_enable_histogram", p, nil)
}

// Histogram is the result of bdev_get_histogram.
type Histogram struct {
	Histogram   string `json:"histogram"` // base64 of SPDK's histogram buckets
	TSCRate     uint64 `json:"tsc_rate"`
	BucketShift uint32 `json:"bucket_shift"`
}

// BdevGetHistogram calls bdev_get_histogram.
func (c *Client) BdevGetHistogram(ctx context.Context, p NameParams) (Histogram, error) {
	var out Histogram
	err := c.Call(ctx, "bdev_get_histogram", p, &out)
	return out, err
}

// BdevMallocCreateParams are the params of bdev_malloc_create.
type BdevMallocCreateParams struct {
	Name              string  `json:"name,omitempty"`
	BlockSize         uint32  `json:"block_size"` // a multiple of 512
	NumBlocks         uint64  `json:"num_blocks"`
	UUID              string  `json:"uuid,omitempty"`
	OptimalIOBoundary *uint32 `json:"optimal_io_boundary,omitempty"`
	MDSize            *uint32 `json:"md_size,omitempty"`
	MDInterleave      *bool   `json:"md_interleave,omitempty"`
	DIFType           *uint32 `json:"dif_type,omitempty"`
	DIFIsHeadOfMD     *bool   `json:"dif_is_head_of_md,omitempty"`
	PhysicalBlockSize *uint32 `json:"physical_block_size,omitempty"`
}

// BdevMallocCreate calls bdev_malloc_create and returns the bdev name.
func (c *Client) BdevMallocCreate(ctx context.Context, p BdevMallocCreateParams) (string, error) {
	var name string
	err := c.Call(ctx, "bdev_malloc_create", p, &name)
	return name, err
}

// BdevMallocDelete calls bdev_malloc_delete.
func (c *Client) BdevMallocDelete(ctx context.Context, p NameParams) error {
	return c.Call(ctx, "bdev_malloc_delete", p, nil)
}

// BdevAioCreateParams are the params of bdev_aio_create.
type BdevAioCreateParams struct {
	Name      string `json:"name"`
	Filename  string `json:"filename"`
	BlockSize uint32 `json:"block_size,omitempty"` // 0: detect
	Readonly  bool   `json:"readonly,omitempty"`
}

// BdevAioCreate calls bdev_aio_create and returns the bdev name.
func (c *Client) BdevAioCreate(ctx context.Context, p BdevAioCreateParams) (string, error) {
	var name string
	err := c.Call(ctx, "bdev_aio_create", p, &name)
	return name, err
}

// BdevAioDelete calls bdev_aio_delete.
func (c *Client) BdevAioDelete(ctx context.Context, p NameParams) error {
	return c.Call(ctx, "bdev_aio_delete", p, nil)
}

// BdevNullCreateParams are the params of bdev_null_create.
type BdevNullCreateParams struct {
	Name      string  `json:"name"`
	BlockSize uint32  `json:"block_size"`
	NumBlocks uint64  `json:"num_blocks"`
	UUID      string  `json:"uuid,omitempty"`
	MDSize    *uint32 `json:"md_size,omitempty"`
	DIFType   *uint32 `json:"dif_type,omitempty"`
}

// BdevNullCreate calls bdev_null_create and returns the bdev name.
func (c *Client) BdevNullCreate(ctx context.Context, p BdevNullCreateParams) (string, error) {
	var name string
	err := c.Call(ctx, "bdev_null_create", p, &name)
	return name, err
}

// BdevNullDelete calls bdev_null_delete.
func (c *Client) BdevNullDelete(ctx context.Context, p NameParams) error {
	return c.Call(ctx, "bdev_null_delete", p, nil)
}

// BdevPassthruCreateParams are the params of bdev_passthru_create.
type BdevPassthruCreateParams struct {
	Name         string `json:"name"`
	BaseBdevName string `json:"base_bdev_name"`
	UUID         string `json:"uuid,omitempty"`
}

// BdevPassthruCreate calls bdev_passthru_create and returns the name. With a missing base
// bdev SPDK returns the name but creates nothing: verify with BdevGetBdevs.
func (c *Client) BdevPassthruCreate(ctx context.Context, p BdevPassthruCreateParams) (string, error) {
	var name string
	err := c.Call(ctx, "bdev_passthru_create", p, &name)
	return name, err
}

// BdevPassthruDelete calls bdev_passthru_delete.
func (c *Client) BdevPassthruDelete(ctx context.Context, p NameParams) error {
	return c.Call(ctx, "bdev_passthru_delete", p, nil)
}

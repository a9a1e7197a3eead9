package spdk

import (
	"context"
	"fmt"
)

// Lvstore is one element of bdev_lvol_get_lvstores.
type Lvstore struct {
	UUID              string `json:"uuid"`
	Name              string `json:"name"`
	BaseBdev          string `json:"base_bdev"`
	TotalDataClusters uint64 `json:"total_data_clusters"`
	FreeClusters      uint64 `json:"free_clusters"`
	BlockSize         uint32 `json:"block_size"`
	ClusterSize       uint64 `json:"cluster_size"`
}

// Lvol is one element of bdev_lvol_get_lvols. Its bdev name is UUID; Alias is "lvs/name".
type Lvol struct {
	Alias             string  `json:"alias"`
	UUID              string  `json:"uuid"`
	Name              string  `json:"name"`
	IsThinProvisioned bool    `json:"is_thin_provisioned"`
	IsSnapshot        bool    `json:"is_snapshot"`
	IsClone           bool    `json:"is_clone"`
	IsEsnapClone      bool    `json:"is_esnap_clone"`
	IsDegraded        bool    `json:"is_degraded"`
	Lvs               LvolLvs `json:"lvs"`
}

// LvolLvs names the lvstore of an lvol.
type LvolLvs struct {
	Name string `json:"name"`
	UUID string `json:"uuid"`
}

// BdevLvolCreateLvstoreParams are the params of bdev_lvol_create_lvstore.
type BdevLvolCreateLvstoreParams struct {
	BdevName                  string `json:"bdev_name"`
	LvsName                   string `json:"lvs_name"`               // at most 63 characters
	ClusterSz                 uint32 `json:"cluster_sz,omitempty"`   // bytes; 0: 4 MiB
	ClearMethod               string `json:"clear_method,omitempty"` // none, unmap, write_zeroes
	NumMDPagesPerClusterRatio uint32 `json:"num_md_pages_per_cluster_ratio,omitempty"`
}

// BdevLvolCreateLvstore calls bdev_lvol_create_lvstore and returns the lvstore UUID.
func (c *Client) BdevLvolCreateLvstore(ctx context.Context, p BdevLvolCreateLvstoreParams) (string, error) {
	var uuid string
	err := c.Call(ctx, "bdev_lvol_create_lvstore", p, &uuid)
	return uuid, err
}

// LvstoreSelector names an lvstore by UUID or by name (give one; zero selects all where the
// method allows it).
type LvstoreSelector struct {
	UUID    string `json:"uuid,omitempty"`
	LvsName string `json:"lvs_name,omitempty"`
}

// BdevLvolGetLvstores calls bdev_lvol_get_lvstores. An unknown store fails with ErrNotFound.
func (c *Client) BdevLvolGetLvstores(ctx context.Context, p LvstoreSelector) ([]Lvstore, error) {
	var out []Lvstore
	err := c.Call(ctx, "bdev_lvol_get_lvstores", optional(p, LvstoreSelector{}),
		fastList[Lvstore]{&out, (*fastParser).lvstore})
	return out, err
}

// BdevLvolDeleteLvstore calls bdev_lvol_delete_lvstore. It deletes every lvol inside.
func (c *Client) BdevLvolDeleteLvstore(ctx context.Context, p LvstoreSelector) error {
	return c.Call(ctx, "bdev_lvol_delete_lvstore", p, nil)
}

// BdevLvolCreateParams are the params of bdev_lvol_create. Give the size as SizeInMiB (SPDK
// 24.01 and later). Size, in bytes, is the deprecated form that only SPDK up to 24.01 accepts;
// setting both is refused locally (ErrBadRequest), as SPDK would refuse it.
type BdevLvolCreateParams struct {
	LvolName string `json:"lvol_name"`
	LvsName  string `json:"lvs_name,omitempty"`
	// UUID is the lvstore's UUID (an alternative to LvsName), not the new lvol's.
	UUID      string  `json:"uuid,omitempty"`
	SizeInMiB *uint64 `json:"size_in_mib,omitempty"`
	// Deprecated: Size is in bytes and was removed in SPDK 24.05; use SizeInMiB.
	Size          *uint64 `json:"size,omitempty"`
	ThinProvision *bool   `json:"thin_provision,omitempty"`
	ClearMethod   string  `json:"clear_method,omitempty"`
}

// BdevLvolCreate calls bdev_lvol_create and returns the new lvol's UUID (its bdev name).
func (c *Client) BdevLvolCreate(ctx context.Context, p BdevLvolCreateParams) (string, error) {
	if p.Size != nil && p.SizeInMiB != nil {
		return "", fmt.Errorf("%w: bdev_lvol_create: set SizeInMiB or Size, not both", ErrBadRequest)
	}
	var uuid string
	err := c.Call(ctx, "bdev_lvol_create", p, &uuid)
	return uuid, err
}

// BdevLvolGetLvolsParams are the params of bdev_lvol_get_lvols. Zero params list all lvols.
type BdevLvolGetLvolsParams struct {
	LvsUUID string `json:"lvs_uuid,omitempty"`
	LvsName string `json:"lvs_name,omitempty"`
}

// BdevLvolGetLvols calls bdev_lvol_get_lvols.
func (c *Client) BdevLvolGetLvols(ctx context.Context, p BdevLvolGetLvolsParams) ([]Lvol, error) {
	var out []Lvol
	err := c.Call(ctx, "bdev_lvol_get_lvols", optional(p, BdevLvolGetLvolsParams{}),
		fastList[Lvol]{&out, (*fastParser).lvol})
	return out, err
}

// BdevLvolDelete calls bdev_lvol_delete (Name: the UUID or the "lvs/lvol" alias).
func (c *Client) BdevLvolDelete(ctx context.Context, p NameParams) error {
	return c.Call(ctx, "bdev_lvol_delete", p, nil)
}

// BdevLvolSnapshotParams are the params of bdev_lvol_snapshot.
type BdevLvolSnapshotParams struct {
	LvolName     string `json:"lvol_name"`     // UUID or alias of the origin
	SnapshotName string `json:"snapshot_name"` // the bare name, without the lvstore prefix
}

// BdevLvolSnapshot calls bdev_lvol_snapshot and returns the snapshot UUID.
func (c *Client) BdevLvolSnapshot(ctx context.Context, p BdevLvolSnapshotParams) (string, error) {
	var uuid string
	err := c.Call(ctx, "bdev_lvol_snapshot", p, &uuid)
	return uuid, err
}

// BdevLvolCloneParams are the params of bdev_lvol_clone. CloneName is required in practice.
type BdevLvolCloneParams struct {
	SnapshotName string `json:"snapshot_name"`
	CloneName    string `json:"clone_name"`
}

// BdevLvolClone calls bdev_lvol_clone and returns the clone UUID.
func (c *Client) BdevLvolClone(ctx context.Context, p BdevLvolCloneParams) (string, error) {
	var uuid string
	err := c.Call(ctx, "bdev_lvol_clone", p, &uuid)
	return uuid, err
}

// BdevLvolResizeParams are the params of bdev_lvol_resize; the size rules of
// BdevLvolCreateParams apply.
type BdevLvolResizeParams struct {
	Name      string  `json:"name"`
	SizeInMiB *uint64 `json:"size_in_mib,omitempty"`
	// Deprecated: Size is in bytes and was removed in SPDK 24.05; use SizeInMiB.
	Size *uint64 `json:"size,omitempty"`
}

// BdevLvolResize calls bdev_lvol_resize. The size is rounded up to whole clusters.
func (c *Client) BdevLvolResize(ctx context.Context, p BdevLvolResizeParams) error {
	if (p.Size == nil) == (p.SizeInMiB == nil) {
		return fmt.Errorf("%w: bdev_lvol_resize: set exactly one of SizeInMiB and Size", ErrBadRequest)
	}
	return c.Call(ctx, "bdev_lvol_resize", p, nil)
}

// BdevLvolRenameParams are the params of bdev_lvol_rename.
type BdevLvolRenameParams struct {
	OldName string `json:"old_name"`
	NewName string `json:"new_name"`
}

// BdevLvolRename calls bdev_lvol_rename.
func (c *Client) BdevLvolRename(ctx context.Context, p BdevLvolRenameParams) error {
	return c.Call(ctx, "bdev_lvol_rename", p, nil)
}

// BdevLvolInflate calls bdev_lvol_inflate.
func (c *Client) BdevLvolInflate(ctx context.Context, p NameParams) error {
	return c.Call(ctx, "bdev_lvol_inflate", p, nil)
}

// BdevLvolDecoupleParent calls bdev_lvol_decouple_parent.
func (c *Client) BdevLvolDecoupleParent(ctx context.Context, p NameParams) error {
	return c.Call(ctx, "bdev_lvol_decouple_parent", p, nil)
}

// BdevLvolSetReadOnly calls bdev_lvol_set_read_only.
func (c *Client) BdevLvolSetReadOnly(ctx context.Context, p NameParams) error {
	return c.Call(ctx, "bdev_lvol_set_read_only", p, nil)
}

// RaidBdev is one element of bdev_raid_get_bdevs, and driver_specific.raid of a raid bdev.
type RaidBdev struct {
	Name                    string         `json:"name,omitempty"`
	UUID                    string         `json:"uuid"`
	StripSizeKB             uint32         `json:"strip_size_kb"`
	State                   string         `json:"state"` // online, configuring, offline
	RaidLevel               string         `json:"raid_level"`
	Superblock              bool           `json:"superblock"`
	NumBaseBdevs            uint32         `json:"num_base_bdevs"`
	NumBaseBdevsDiscovered  uint32         `json:"num_base_bdevs_discovered"`
	NumBaseBdevsOperational uint32         `json:"num_base_bdevs_operational"`
	BaseBdevsList           []RaidBaseBdev `json:"base_bdevs_list"`
}

// RaidBaseBdev is one member of a raid.
type RaidBaseBdev struct {
	Name         string `json:"name"`
	UUID         string `json:"uuid"`
	IsConfigured bool   `json:"is_configured"`
	DataOffset   uint64 `json:"data_offset"`
	DataSize     uint64 `json:"data_size"`
}

// BdevRaidCreateParams are the params of bdev_raid_create.
type BdevRaidCreateParams struct {
	Name        string   `json:"name"`
	RaidLevel   string   `json:"raid_level"`    // raid0, raid1, concat, ...
	StripSizeKB uint32   `json:"strip_size_kb"` // KiB, a power of two; 0 for raid1
	BaseBdevs   []string `json:"base_bdevs"`    // order matters: keep it fixed across rebuilds
	UUID        string   `json:"uuid,omitempty"`
	Superblock  *bool    `json:"superblock,omitempty"`
}

// BdevRaidCreate calls bdev_raid_create. A missing base bdev still succeeds and leaves the
// raid "configuring" without a bdev: verify with BdevRaidGetBdevs.
func (c *Client) BdevRaidCreate(ctx context.Context, p BdevRaidCreateParams) error {
	if p.BaseBdevs == nil {
		p.BaseBdevs = []string{}
	}
	return c.Call(ctx, "bdev_raid_create", p, nil)
}

// BdevRaidDelete calls bdev_raid_delete.
func (c *Client) BdevRaidDelete(ctx context.Context, p NameParams) error {
	return c.Call(ctx, "bdev_raid_delete", p, nil)
}

// Raid categories for BdevRaidGetBdevs.
const (
	RaidAll         = "all"
	RaidOnline      = "online"
	RaidConfiguring = "configuring"
	RaidOffline     = "offline"
)

// BdevRaidGetBdevsParams are the params of bdev_raid_get_bdevs.
type BdevRaidGetBdevsParams struct {
	Category string `json:"category"` // RaidAll, RaidOnline, RaidConfiguring or RaidOffline
}

// BdevRaidGetBdevs calls bdev_raid_get_bdevs.
func (c *Client) BdevRaidGetBdevs(ctx context.Context, p BdevRaidGetBdevsParams) ([]RaidBdev, error) {
	var out []RaidBdev
	err := c.Call(ctx, "bdev_raid_get_bdevs", p, fastList[RaidBdev]{&out, (*fastParser).raidBdev})
	return out, err
}

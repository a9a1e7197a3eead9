package vda

import (
	"context"
	"fmt"

	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/store"
)

// NodeSpec is what creates a disk node or a controller node.
type NodeSpec struct {
	Name         string // host:port of the node's agent
	Description  string
	ListenerConf string // NVMe-oF listener JSON (nvmeof.ParseListenerConf)
	Location     string // failure domain
}

// NodeUpdate changes a node; nil fields are left alone.
type NodeUpdate struct {
	Description  *string
	ListenerConf *string
	Location     *string
	Offline      *bool
}

func (s *NodeSpec) validate(kind nvmeof.ResourceKind) error {
	if err := ValidateName(kind, s.Name); err != nil {
		return err
	}
	if err := ValidateDescription(s.Description); err != nil {
		return err
	}
	if err := validateText("location", s.Location, MaxLocationBytes); err != nil {
		return err
	}
	conf, err := ParseListenerConf("listener_conf", s.ListenerConf)
	s.ListenerConf = conf
	return err
}

// apply validates u and applies it to the node fields.
func (u NodeUpdate) apply(desc, conf, loc *string, offline *bool) error {
	if u.Description != nil {
		if err := ValidateDescription(*u.Description); err != nil {
			return err
		}
		*desc = *u.Description
	}
	if u.Location != nil {
		if err := validateText("location", *u.Location, MaxLocationBytes); err != nil {
			return err
		}
		*loc = *u.Location
	}
	if u.ListenerConf != nil {
		c, err := ParseListenerConf("listener_conf", *u.ListenerConf)
		if err != nil {
			return err
		}
		*conf = c
	}
	if u.Offline != nil {
		*offline = *u.Offline
	}
	return nil
}

// CreateDiskNode adds a disk node.
func (c *Cluster) CreateDiskNode(ctx context.Context, spec NodeSpec) (DiskNode, error) {
	if err := spec.validate(nvmeof.ResourceDN); err != nil {
		return DiskNode{}, err
	}
	dn := DiskNode{Name: spec.Name, Description: spec.Description, ListenerConf: spec.ListenerConf, Location: spec.Location}
	err := c.update(ctx, func(tx *store.Tx) error {
		dn.ID = nvmeof.NewID()
		if err := txAbsent(tx, KeyDN(dn.Name), fmt.Sprintf("disk node %q", dn.Name)); err != nil {
			return err
		}
		return txPut(tx, KeyDN(dn.Name), dn)
	})
	return dn, err
}

// GetDiskNode returns a disk node with its status.
func (c *Cluster) GetDiskNode(ctx context.Context, name string) (DiskNode, error) {
	if err := ValidateName(nvmeof.ResourceDN, name); err != nil {
		return DiskNode{}, err
	}
	return getJSON(ctx, c, KeyDN(name), fmt.Sprintf("disk node %q", name), dnStatus)
}

// ListDiskNodes returns one page of disk nodes in name order, and the
// token of the next page ("" after the last).
func (c *Cluster) ListDiskNodes(ctx context.Context, page Page) ([]DiskNode, string, error) {
	return listJSON(ctx, c, PrefixDN, page, dnStatus)
}

// ModifyDiskNode changes a disk node.
func (c *Cluster) ModifyDiskNode(ctx context.Context, name string, u NodeUpdate) (DiskNode, error) {
	if err := ValidateName(nvmeof.ResourceDN, name); err != nil {
		return DiskNode{}, err
	}
	var dn DiskNode
	err := c.update(ctx, func(tx *store.Tx) error {
		var err error
		if dn, err = txGet[DiskNode](tx, KeyDN(name), fmt.Sprintf("disk node %q", name)); err != nil {
			return err
		}
		if err := u.apply(&dn.Description, &dn.ListenerConf, &dn.Location, &dn.Offline); err != nil {
			return err
		}
		return txPut(tx, KeyDN(name), dn)
	})
	if err != nil {
		return DiskNode{}, err
	}
	dn.Status, err = c.readStatus(ctx, KeyDN(name))
	return dn, err
}

// DeleteDiskNode removes a disk node that holds no PDs.
func (c *Cluster) DeleteDiskNode(ctx context.Context, name string) error {
	if err := ValidateName(nvmeof.ResourceDN, name); err != nil {
		return err
	}
	return c.update(ctx, func(tx *store.Tx) error {
		dn, err := txGet[DiskNode](tx, KeyDN(name), fmt.Sprintf("disk node %q", name))
		if err != nil {
			return err
		}
		if dn.PDCount > 0 {
			return fmt.Errorf("%w: disk node %q still has %d physical disks", ErrFailedPrecondition, name, dn.PDCount)
		}
		txDelete(tx, KeyDN(name))
		_, _, err = txUnbind(tx, dn.ID)
		return err
	})
}

// CreateControllerNode adds a controller node.
func (c *Cluster) CreateControllerNode(ctx context.Context, spec NodeSpec) (ControllerNode, error) {
	if err := spec.validate(nvmeof.ResourceCN); err != nil {
		return ControllerNode{}, err
	}
	cn := ControllerNode{Name: spec.Name, Description: spec.Description, ListenerConf: spec.ListenerConf, Location: spec.Location}
	err := c.update(ctx, func(tx *store.Tx) error {
		cn.ID = nvmeof.NewID()
		if err := txAbsent(tx, KeyCN(cn.Name), fmt.Sprintf("controller node %q", cn.Name)); err != nil {
			return err
		}
		return txPut(tx, KeyCN(cn.Name), cn)
	})
	return cn, err
}

// GetControllerNode returns a controller node with its status.
func (c *Cluster) GetControllerNode(ctx context.Context, name string) (ControllerNode, error) {
	if err := ValidateName(nvmeof.ResourceCN, name); err != nil {
		return ControllerNode{}, err
	}
	return getJSON(ctx, c, KeyCN(name), fmt.Sprintf("controller node %q", name), cnStatus)
}

// ListControllerNodes returns one page of controller nodes in name order.
func (c *Cluster) ListControllerNodes(ctx context.Context, page Page) ([]ControllerNode, string, error) {
	return listJSON(ctx, c, PrefixCN, page, cnStatus)
}

// ModifyControllerNode changes a controller node.
func (c *Cluster) ModifyControllerNode(ctx context.Context, name string, u NodeUpdate) (ControllerNode, error) {
	if err := ValidateName(nvmeof.ResourceCN, name); err != nil {
		return ControllerNode{}, err
	}
	var cn ControllerNode
	err := c.update(ctx, func(tx *store.Tx) error {
		var err error
		if cn, err = txGet[ControllerNode](tx, KeyCN(name), fmt.Sprintf("controller node %q", name)); err != nil {
			return err
		}
		if err := u.apply(&cn.Description, &cn.ListenerConf, &cn.Location, &cn.Offline); err != nil {
			return err
		}
		return txPut(tx, KeyCN(name), cn)
	})
	if err != nil {
		return ControllerNode{}, err
	}
	cn.Status, err = c.readStatus(ctx, KeyCN(name))
	return cn, err
}

// DeleteControllerNode removes a controller node that hosts no controllers.
func (c *Cluster) DeleteControllerNode(ctx context.Context, name string) error {
	if err := ValidateName(nvmeof.ResourceCN, name); err != nil {
		return err
	}
	return c.update(ctx, func(tx *store.Tx) error {
		cn, err := txGet[ControllerNode](tx, KeyCN(name), fmt.Sprintf("controller node %q", name))
		if err != nil {
			return err
		}
		if cn.CntlrCount > 0 {
			return fmt.Errorf("%w: controller node %q still hosts %d controllers", ErrFailedPrecondition, name, cn.CntlrCount)
		}
		txDelete(tx, KeyCN(name))
		_, _, err = txUnbind(tx, cn.ID)
		return err
	})
}

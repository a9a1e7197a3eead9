package vda

import (
	"context"
	"fmt"

	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/store"
)

// NodeSpec is what creates a disk node or a controller node.
type NodeSpec struct {
	Name        string // the node's name: its agent's host:port, unless Address says otherwise
	Address     string // where its agent listens (canonical host:port); "" means Name
	Description string
	// Listener is the node's NVMe-oF listener (required). It is stored
	// normalised (see nvmeof.NewTransportID); ParseListenerConf reads the
	// CLI's JSON.
	Listener nvmeof.TransportID
	Location string // failure domain
}

// NodeUpdate changes a node; nil fields are left alone.
type NodeUpdate struct {
	Address     *string // "" clears it: the agent is then reached at the node's name
	Description *string
	Listener    *nvmeof.TransportID
	Location    *string
	Offline     *bool
}

func (s *NodeSpec) validate(kind nvmeof.ResourceKind) error {
	if err := ValidateNewName(kind, s.Name); err != nil {
		return err
	}
	if err := ValidateNodeAddress(s.Address); err != nil {
		return err
	}
	if err := ValidateDescription(s.Description); err != nil {
		return err
	}
	if err := validateText("location", s.Location, MaxLocationBytes); err != nil {
		return err
	}
	l, err := normalListener(s.Listener)
	s.Listener = l
	return err
}

// apply validates u and applies it to the node fields.
func (u NodeUpdate) apply(addr, desc *string, listener *nvmeof.TransportID, loc *string, offline *bool) error {
	if u.Address != nil {
		if err := ValidateNodeAddress(*u.Address); err != nil {
			return err
		}
		*addr = *u.Address
	}
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
	if u.Listener != nil {
		l, err := normalListener(*u.Listener)
		if err != nil {
			return err
		}
		*listener = l
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
	var dn DiskNode
	err := c.update(ctx, func(tx *store.Tx) error {
		old, found, err := txLookup[DiskNode](tx, KeyDN(spec.Name))
		if err != nil {
			return err
		}
		if found {
			dn = old
			return spec.same(fmt.Sprintf("disk node %q", spec.Name), old.Address, old.Description, old.Listener, old.Location)
		}
		dn = DiskNode{ID: nvmeof.NewID(), Name: spec.Name, Address: spec.Address, Description: spec.Description,
			Listener: spec.Listener, Location: spec.Location}
		if err := txClaimListener(tx, nvmeof.TransportID{}, dn.Listener, listenerOwner{Kind: ownerDN, Name: dn.Name}); err != nil {
			return err
		}
		return txPut(tx, KeyDN(dn.Name), dn)
	})
	if err != nil {
		return DiskNode{}, err
	}
	return dn, nil
}

// same reports whether an existing node has the fields spec asks for.
func (s NodeSpec) same(what, addr, desc string, listener nvmeof.TransportID, loc string) error {
	return sameSpec(what, field{"address", addr, s.Address}, field{"description", desc, s.Description},
		field{"listener_conf", listener, s.Listener}, field{"location", loc, s.Location})
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
	return listJSON(ctx, c, PrefixDN, page, tokenNames(nvmeof.ResourceDN), dnStatus)
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
		was := dn.Listener
		if err := u.apply(&dn.Address, &dn.Description, &dn.Listener, &dn.Location, &dn.Offline); err != nil {
			return err
		}
		if err := txClaimListener(tx, was, dn.Listener, listenerOwner{Kind: ownerDN, Name: name}); err != nil {
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
		if _, _, err := txUnbind(tx, dn.ID); err != nil {
			return err
		}
		return txReleaseListener(tx, dn.Listener, listenerOwner{Kind: ownerDN, Name: name})
	})
}

// CreateControllerNode adds a controller node.
func (c *Cluster) CreateControllerNode(ctx context.Context, spec NodeSpec) (ControllerNode, error) {
	if err := spec.validate(nvmeof.ResourceCN); err != nil {
		return ControllerNode{}, err
	}
	var cn ControllerNode
	err := c.update(ctx, func(tx *store.Tx) error {
		old, found, err := txLookup[ControllerNode](tx, KeyCN(spec.Name))
		if err != nil {
			return err
		}
		if found {
			cn = old
			return spec.same(fmt.Sprintf("controller node %q", spec.Name), old.Address, old.Description, old.Listener, old.Location)
		}
		cn = ControllerNode{ID: nvmeof.NewID(), Name: spec.Name, Address: spec.Address, Description: spec.Description,
			Listener: spec.Listener, Location: spec.Location}
		if err := txClaimListener(tx, nvmeof.TransportID{}, cn.Listener, listenerOwner{Kind: ownerCN, Name: cn.Name}); err != nil {
			return err
		}
		return txPut(tx, KeyCN(cn.Name), cn)
	})
	if err != nil {
		return ControllerNode{}, err
	}
	return cn, nil
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
	return listJSON(ctx, c, PrefixCN, page, tokenNames(nvmeof.ResourceCN), cnStatus)
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
		was := cn.Listener
		if err := u.apply(&cn.Address, &cn.Description, &cn.Listener, &cn.Location, &cn.Offline); err != nil {
			return err
		}
		if err := txClaimListener(tx, was, cn.Listener, listenerOwner{Kind: ownerCN, Name: name}); err != nil {
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
		if _, _, err := txUnbind(tx, cn.ID); err != nil {
			return err
		}
		return txReleaseListener(tx, cn.Listener, listenerOwner{Kind: ownerCN, Name: name})
	})
}

// Owners of listener claims.
const (
	ownerDN = "dn"
	ownerCN = "cn"
)

// listenerOwner is the value of a listener claim key: the node whose
// NVMe-oF listener it is.
type listenerOwner struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
}

func (o listenerOwner) String() string {
	if o.Kind == ownerCN {
		return fmt.Sprintf("controller node %q", o.Name)
	}
	return fmt.Sprintf("disk node %q", o.Name)
}

// txClaimListener moves owner's claim of an NVMe-oF listener from was
// (zero for a new node) to l, and fails with ErrAlreadyExists if another
// node (DN or CN: two spdk_tgt cannot listen on one address) has l.
// The claim key alone decides, so a node create reads a fixed number of
// keys however many nodes there are (a scan of every node guarded them all:
// the 128th node's create exceeded a transaction's limit), and concurrent
// creates of one listener conflict on it.
func txClaimListener(tx *store.Tx, was, l nvmeof.TransportID, owner listenerOwner) error {
	if was == l && was != (nvmeof.TransportID{}) {
		return nil
	}
	key := KeyListener(l)
	other, found, err := txLookup[listenerOwner](tx, key)
	if err != nil {
		return err
	}
	if found && other != owner {
		return fmt.Errorf("%w: NVMe-oF listener %s is %s's", ErrAlreadyExists, l, other)
	}
	if was != (nvmeof.TransportID{}) {
		if err := txReleaseListener(tx, was, owner); err != nil {
			return err
		}
	}
	return txPut(tx, key, owner)
}

// txReleaseListener deletes owner's claim of l (if it is owner's).
func txReleaseListener(tx *store.Tx, l nvmeof.TransportID, owner listenerOwner) error {
	if l == (nvmeof.TransportID{}) {
		return nil
	}
	key := KeyListener(l)
	o, found, err := txLookup[listenerOwner](tx, key)
	if err != nil {
		return err
	}
	if found && o == owner {
		tx.Delete(key)
	}
	return nil
}

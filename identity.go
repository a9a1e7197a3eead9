package vda

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/store"
)

// KeyIdentity holds the store's StoreIdentity: which cluster the store
// belongs to and the layout version of its keys.
const KeyIdentity = Prefix + "cluster"

// LayoutVersion is the version of the key layout and record encoding this
// code writes (see keys.go). Version 1 is the layout of every release so
// far, including the stores written before KeyIdentity existed: readers
// decode the records of earlier writers (storeformat_test.go), and a
// version is added only for a change they could not.
const LayoutVersion = 1

// ErrNoIdentity: the store holds no StoreIdentity (no portal of this or a
// later version has used it: it is empty, not VDA's, or written by an
// older VDA).
var ErrNoIdentity = errors.New("vda: store has no cluster identity")

// StoreIdentity is the record at KeyIdentity.
type StoreIdentity struct {
	// ClusterID is a random stable ID (32 lower-case hex digits) chosen
	// when the identity was first written.
	ClusterID string `json:"cluster_id"`
	// LayoutVersion is the newest layout the store has been written with.
	LayoutVersion int `json:"layout_version"`
}

// Check reports whether code that writes LayoutVersion may use a store with
// this identity, and, if want is not "", whether it is cluster want.
func (id StoreIdentity) Check(want string) error {
	if err := nvmeof.ValidateID(id.ClusterID); err != nil {
		return fmt.Errorf("%w: %s holds cluster id %q: %w", ErrFailedPrecondition, KeyIdentity, id.ClusterID, err)
	}
	if id.LayoutVersion < 1 || id.LayoutVersion > LayoutVersion {
		return fmt.Errorf("%w: store layout version %d, this VDA knows 1 to %d (upgrade this binary)",
			ErrFailedPrecondition, id.LayoutVersion, LayoutVersion)
	}
	if want != "" && id.ClusterID != want {
		return fmt.Errorf("%w: the store belongs to cluster %s, not %s", ErrFailedPrecondition, id.ClusterID, want)
	}
	return nil
}

// ReadIdentity returns the store's identity, ErrNoIdentity if it has none.
// It does not Check it.
func ReadIdentity(ctx context.Context, s store.Store) (StoreIdentity, error) {
	kv, err := s.Get(ctx, KeyIdentity)
	if errors.Is(err, store.ErrNotFound) {
		return StoreIdentity{}, ErrNoIdentity
	}
	if err != nil {
		return StoreIdentity{}, fmt.Errorf("vda: read %s: %w", KeyIdentity, err)
	}
	var id StoreIdentity
	if err := json.Unmarshal(kv.Value, &id); err != nil {
		return StoreIdentity{}, fmt.Errorf("%w: %s does not decode: %w", ErrFailedPrecondition, KeyIdentity, err)
	}
	return id, nil
}

// InitIdentity returns the store's identity after writing one if it had
// none: cluster id want, or a new random one if want is "". It is what a
// portal does at start, so a store that any portal served names its cluster.
// An existing identity is checked (StoreIdentity.Check) and its layout
// version raised to LayoutVersion; created says whether this call wrote it.
func InitIdentity(ctx context.Context, s store.Store, want string) (id StoreIdentity, created bool, err error) {
	if want != "" {
		if err := nvmeof.ValidateID(want); err != nil {
			return StoreIdentity{}, false, fmt.Errorf("%w: cluster id %q: %w", ErrInvalidArgument, want, err)
		}
	}
	err = store.Update(ctx, s, func(tx *store.Tx) error {
		created = false
		kv, err := tx.Get(KeyIdentity)
		switch {
		case errors.Is(err, store.ErrNotFound):
			id, created = StoreIdentity{ClusterID: want, LayoutVersion: LayoutVersion}, true
			if id.ClusterID == "" {
				id.ClusterID = nvmeof.NewID()
			}
		case err != nil:
			return err
		default:
			id = StoreIdentity{}
			if err := json.Unmarshal(kv.Value, &id); err != nil {
				return fmt.Errorf("%w: %s does not decode: %w", ErrFailedPrecondition, KeyIdentity, err)
			}
			if err := id.Check(want); err != nil {
				return err
			}
			if id.LayoutVersion == LayoutVersion {
				return nil
			}
			id.LayoutVersion = LayoutVersion
		}
		b, err := json.Marshal(id)
		if err != nil {
			return err
		}
		tx.Put(KeyIdentity, b)
		return nil
	})
	if err != nil {
		return StoreIdentity{}, false, err
	}
	return id, created, nil
}

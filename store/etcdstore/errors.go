package etcdstore

import (
	"context"
	"errors"
	"fmt"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/vda-io/vda/store"
)

// etcdErrors maps etcd's errors onto the store sentinels.
var etcdErrors = []struct {
	etcd  error
	store error
}{
	{rpctypes.ErrCompacted, store.ErrCompacted},
	{rpctypes.ErrLeaseNotFound, store.ErrLeaseNotFound},
	{rpctypes.ErrRequestTooLarge, store.ErrValueTooLarge},
	{rpctypes.ErrTooManyOps, store.ErrInvalidArgument},
	{rpctypes.ErrDuplicateKey, store.ErrInvalidArgument},
	{rpctypes.ErrEmptyKey, store.ErrInvalidKey},
	{rpctypes.ErrFutureRev, store.ErrInvalidArgument},
}

// mapErr wraps an etcd error with the operation and, where one applies, the
// store sentinel.
func (s *Store) mapErr(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if s.closed.Load() {
		return fmt.Errorf("etcdstore: %s: %w", op, store.ErrClosed)
	}
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		return fmt.Errorf("etcdstore: %s: %w (%w)", op, ctxErr, err)
	}
	for _, m := range etcdErrors {
		if errors.Is(err, m.etcd) {
			return fmt.Errorf("etcdstore: %s: %w: %w", op, m.store, err)
		}
	}
	return fmt.Errorf("etcdstore: %s: %w", op, err)
}

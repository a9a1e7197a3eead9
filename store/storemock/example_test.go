package storemock_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"go.uber.org/mock/gomock"

	"github.com/vda-io/vda/store"
	"github.com/vda-io/vda/store/storemock"
)

// quota is an embedder's code under test: it reads a tenant's quota and
// falls back to a default when none is stored, but never on other errors.
func quota(ctx context.Context, s store.Store, tenant string) (string, error) {
	kv, err := s.Get(ctx, "/quota/"+tenant)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return "default", nil
	case err != nil:
		return "", fmt.Errorf("quota of %s: %w", tenant, err)
	}
	return string(kv.Value), nil
}

// An embedder's unit test drives its code through a store that fails in
// exactly the way the test needs.
func TestQuotaWithAMockedStore(t *testing.T) {
	ctrl := gomock.NewController(t)
	s := storemock.NewMockStore(ctrl)
	ctx := context.Background()

	s.EXPECT().Get(ctx, "/quota/a").Return(store.KV{Key: "/quota/a", Value: []byte("10G")}, nil)
	s.EXPECT().Get(ctx, "/quota/b").Return(store.KV{}, store.ErrNotFound)
	s.EXPECT().Get(ctx, "/quota/c").Return(store.KV{}, store.ErrClosed)

	if q, err := quota(ctx, s, "a"); err != nil || q != "10G" {
		t.Fatalf("stored quota: %q, %v", q, err)
	}
	if q, err := quota(ctx, s, "b"); err != nil || q != "default" {
		t.Fatalf("missing quota: %q, %v", q, err)
	}
	if _, err := quota(ctx, s, "c"); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("a closed store must fail, not default: %v", err)
	}
}

package store_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/store"
	"github.com/vda-io/vda/store/memstore"
)

func TestValidateKey(t *testing.T) {
	cases := []struct {
		key string
		ok  bool
	}{
		{"a", true},
		{"/vda/da/1", true},
		{"é", true},
		{strings.Repeat("k", store.MaxKeyBytes), true},
		{"", false},
		{strings.Repeat("k", store.MaxKeyBytes+1), false},
		{"\xff", false},
		{"a\x00", false},
	}
	for _, c := range cases {
		err := store.ValidateKey(c.key)
		if c.ok {
			assert.NoError(t, err, "%q", c.key)
		} else {
			assert.ErrorIs(t, err, store.ErrInvalidKey, "%q", c.key)
		}
	}
	assert.NoError(t, store.ValidatePrefix(""), "the empty prefix means all keys")
}

func TestValidateTxn(t *testing.T) {
	big := make([]byte, store.MaxValueBytes)
	cases := map[string]struct {
		txn  store.Txn
		want error
	}{
		"empty":          {store.Txn{}, nil},
		"max value":      {store.Txn{Ops: []store.Op{{Key: "k", Value: big}}}, nil},
		"value too big":  {store.Txn{Ops: []store.Op{{Key: "k", Value: append(big, 0)}}}, store.ErrValueTooLarge},
		"txn too big":    {store.Txn{Ops: []store.Op{{Key: "a", Value: big}, {Key: "b", Value: big}}}, store.ErrValueTooLarge},
		"bad cond key":   {store.Txn{Conds: []store.Cond{{Key: ""}}}, store.ErrInvalidKey},
		"bad op key":     {store.Txn{Ops: []store.Op{{Key: "\x00"}}}, store.ErrInvalidKey},
		"dup key":        {store.Txn{Ops: []store.Op{{Key: "a"}, {Key: "a", Delete: true}}}, store.ErrInvalidArgument},
		"negative rev":   {store.Txn{Conds: []store.Cond{{Key: "a", ModRevision: -1}}}, store.ErrInvalidArgument},
		"negative lease": {store.Txn{Ops: []store.Op{{Key: "a", Lease: -2}}}, store.ErrInvalidArgument},
		"delete value":   {store.Txn{Ops: []store.Op{{Key: "a", Delete: true, Value: []byte("x")}}}, store.ErrInvalidArgument},
		"too many ops":   {store.Txn{Ops: make([]store.Op, store.MaxTxnOps+1)}, store.ErrInvalidArgument},
		"too many conds": {store.Txn{Conds: make([]store.Cond, store.MaxTxnOps+1)}, store.ErrInvalidArgument},
	}
	for name, c := range cases {
		err := store.ValidateTxn(c.txn)
		if c.want == nil {
			assert.NoError(t, err, name)
		} else {
			assert.ErrorIs(t, err, c.want, name)
		}
	}
}

func TestPrefixEnd(t *testing.T) {
	cases := map[string]string{"": "", "a": "b", "a/": "a0", "a\xff": "b", "\xff\xff": "", "é": "\xc3\xaa"}
	for in, want := range cases {
		assert.Equal(t, want, store.PrefixEnd(in), "%q", in)
	}
}

func TestEventTypeString(t *testing.T) {
	assert.Equal(t, "put", store.EventPut.String())
	assert.Equal(t, "delete", store.EventDelete.String())
	assert.Equal(t, "unknown", store.EventType(0).String())
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	for _, uri := range []string{
		"nosuch://user:s3cret@host/x",
		"user:s3cret@host",
		"",
		"etcd://user:s3cret@%zz/x",
	} {
		_, err := store.Open(ctx, uri)
		require.ErrorIs(t, err, store.ErrInvalidURI, uri)
		assert.NotContains(t, err.Error(), "s3cret", "errors must not show passwords")
	}
	_, err := store.Open(ctx, "nosuch://")
	assert.ErrorContains(t, err, "memory", "the error lists the registered schemes")
}

func TestRedacted(t *testing.T) {
	u, err := url.Parse("postgresql://bob:hunter2@db/vda?sslmode=verify-full&password=hunter3&Token=t0k")
	require.NoError(t, err)
	r := store.Redacted(u)
	for _, secret := range []string{"hunter2", "hunter3", "t0k"} {
		assert.NotContains(t, r, secret)
	}
	assert.Contains(t, r, "bob")
	assert.Contains(t, r, "sslmode=verify-full")
	assert.Equal(t, "", store.Redacted(nil))
}

var registrations atomic.Int64 // schemes stay registered: -count=N needs fresh names

func TestRegister(t *testing.T) {
	scheme := fmt.Sprintf("storetest-fake%d", registrations.Add(1))
	var got *url.URL
	var gotOpts store.OpenOptions
	store.Register(scheme, func(_ context.Context, u *url.URL, o store.OpenOptions) (store.Store, error) {
		got, gotOpts = u, o
		return memstore.New(memstore.Config{})
	})
	s, err := store.Open(context.Background(), scheme+"://h/p?x=1")
	require.NoError(t, err)
	defer s.Close()
	assert.Equal(t, "/p", got.Path)
	assert.Equal(t, "1", got.Query().Get("x"))
	assert.NotNil(t, gotOpts.Logger, "backends always get a logger")
	assert.Contains(t, store.Schemes(), scheme)

	assert.Panics(t, func() {
		store.Register(scheme, func(context.Context, *url.URL, store.OpenOptions) (store.Store, error) { return nil, nil })
	})
	assert.Panics(t, func() { store.Register("storetest-nil", nil) })
}

// failingStore loses every compare-and-swap.
type failingStore struct{ store.Store }

func (f failingStore) Txn(ctx context.Context, t store.Txn) (store.TxnResult, error) {
	return store.TxnResult{Succeeded: false}, nil
}

func TestUpdateGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) { // the backoff pauses run on fake time
		m, err := memstore.New(memstore.Config{})
		require.NoError(t, err)
		defer m.Close()
		runs := 0
		err = store.Update(context.Background(), failingStore{m}, func(tx *store.Tx) error {
			runs++
			tx.Put("k", []byte("v"))
			return nil
		})
		assert.ErrorIs(t, err, store.ErrConflict)
		assert.Equal(t, store.UpdateMaxAttempts, runs)
	})
}

func TestUpdateStopsOnContext(t *testing.T) {
	m, err := memstore.New(memstore.Config{})
	require.NoError(t, err)
	defer m.Close()
	ctx, cancel := context.WithCancel(context.Background())
	runs := 0
	err = store.Update(ctx, failingStore{m}, func(tx *store.Tx) error {
		runs++
		if runs == 3 {
			cancel()
		}
		return nil
	})
	assert.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, 3, runs)
}

func TestUpdateRefusesBadWrites(t *testing.T) {
	m, err := memstore.New(memstore.Config{})
	require.NoError(t, err)
	defer m.Close()
	err = store.Update(context.Background(), m, func(tx *store.Tx) error {
		tx.Put("", []byte("v"))
		return nil
	})
	assert.ErrorIs(t, err, store.ErrInvalidKey)
}

func FuzzValidateKey(f *testing.F) {
	for _, s := range []string{"", "a", "/vda/x", "\xff", "a\x00b", strings.Repeat("k", 1025)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		err := store.ValidateKey(key)
		valid := key != "" && len(key) <= store.MaxKeyBytes && utf8.ValidString(key) && !strings.Contains(key, "\x00")
		if valid != (err == nil) {
			t.Fatalf("ValidateKey(%q) = %v", key, err)
		}
		if err != nil && !errors.Is(err, store.ErrInvalidKey) {
			t.Fatalf("ValidateKey(%q) = %v, not ErrInvalidKey", key, err)
		}
		// Also a property of PrefixEnd: every key with the prefix sorts below it.
		end := store.PrefixEnd(key)
		if end != "" && !(key < end) {
			t.Fatalf("PrefixEnd(%q) = %q is not above it", key, end)
		}
		if end != "" && !(key+"\xff\xff" < end) {
			t.Fatalf("PrefixEnd(%q) = %q is not above its extensions", key, end)
		}
	})
}

func FuzzValidateTxn(f *testing.F) {
	f.Add("k", []byte("v"), int64(0), false, int64(0), "k")
	f.Add("", []byte{}, int64(-1), true, int64(3), "a")
	f.Fuzz(func(t *testing.T, key string, value []byte, rev int64, del bool, lease int64, key2 string) {
		txn := store.Txn{
			Conds: []store.Cond{{Key: key, ModRevision: rev}},
			Ops:   []store.Op{{Key: key, Value: value, Delete: del, Lease: store.LeaseID(lease)}, {Key: key2}},
		}
		err := store.ValidateTxn(txn)
		if err == nil && (store.ValidateKey(key) != nil || store.ValidateKey(key2) != nil || key == key2 || rev < 0 || lease < 0) {
			t.Fatalf("invalid txn accepted: %+v", txn)
		}
		if err != nil && !errors.Is(err, store.ErrInvalidKey) && !errors.Is(err, store.ErrInvalidArgument) && !errors.Is(err, store.ErrValueTooLarge) {
			t.Fatalf("error without a sentinel: %v", err)
		}
	})
}

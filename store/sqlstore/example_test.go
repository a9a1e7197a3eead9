package sqlstore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/vda-io/vda/store"
	"github.com/vda-io/vda/store/sqlstore"
)

// A store on an SQLite file: create the schema once (what vda-db --action
// create does), then open the store by URI like any other backend.
func Example() {
	dir, err := os.MkdirTemp("", "vda-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	uri := "sqlite://" + filepath.Join(dir, "vda.db")
	ctx := context.Background()

	if _, err := sqlstore.CreateSchema(ctx, uri); err != nil {
		panic(err)
	}
	s, err := store.Open(ctx, uri)
	if err != nil {
		panic(err)
	}
	defer s.Close()

	res, err := s.Txn(ctx, store.Txn{
		Conds: []store.Cond{{Key: "/vda/da/da0", ModRevision: 0}}, // create only
		Ops:   []store.Op{{Key: "/vda/da/da0", Value: []byte(`{"size_mb":1024}`)}},
	})
	if err != nil {
		panic(err)
	}
	kv, err := s.Get(ctx, "/vda/da/da0")
	if err != nil {
		panic(err)
	}
	fmt.Println(res.Succeeded, string(kv.Value), kv.Version, kv.ModRevision == res.Revision)
	// Output: true {"size_mb":1024} 1 true
}

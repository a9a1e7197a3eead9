package store_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/vda-io/vda/store"
	_ "github.com/vda-io/vda/store/memstore" // registers memory://
)

// Update reserves capacity with an optimistic transaction: if another writer
// changes the free space between the read and the commit, the function runs
// again on the new value.
func ExampleUpdate() {
	ctx := context.Background()
	s, err := store.Open(ctx, "memory://")
	if err != nil {
		panic(err)
	}
	defer s.Close()
	if _, err := s.Txn(ctx, store.Txn{Ops: []store.Op{{Key: "pd/1/free", Value: []byte("100")}}}); err != nil {
		panic(err)
	}

	errNoSpace := errors.New("no space")
	reserve := func(name string, size int) error {
		return store.Update(ctx, s, func(tx *store.Tx) error {
			kv, err := tx.Get("pd/1/free")
			if err != nil {
				return err
			}
			free, err := strconv.Atoi(string(kv.Value))
			if err != nil {
				return err
			}
			if free < size {
				return errNoSpace
			}
			tx.Put("pd/1/free", []byte(strconv.Itoa(free-size)))
			tx.Put("vd/"+name, []byte(strconv.Itoa(size)))
			return nil
		})
	}
	fmt.Println(reserve("a", 60))
	fmt.Println(reserve("b", 60))
	kv, _ := s.Get(ctx, "pd/1/free")
	fmt.Println("free:", string(kv.Value))
	// Output:
	// <nil>
	// no space
	// free: 40
}

package memstore_test

import (
	"context"
	"fmt"

	"github.com/vda-io/vda/store"
	"github.com/vda-io/vda/store/memstore"
)

// A consumer lists the current state, then watches from the next revision:
// it sees every later change exactly once.
func ExampleStore_Watch() {
	ctx := context.Background()
	s, err := memstore.New(memstore.Config{})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	put := func(key, value string) {
		if _, err := s.Txn(ctx, store.Txn{Ops: []store.Op{{Key: key, Value: []byte(value)}}}); err != nil {
			panic(err)
		}
	}
	put("node/a", "up")

	list, _ := s.List(ctx, "node/", store.ListOptions{})
	for _, kv := range list.KVs {
		fmt.Println("listed", kv.Key, string(kv.Value))
	}
	w, _ := s.Watch(ctx, "node/", list.Revision+1)
	defer w.Close()

	put("node/b", "up")
	put("node/a", "down")
	for seen := 0; seen < 2; {
		resp := <-w.Events()
		for _, ev := range resp.Events {
			fmt.Println(ev.Type, ev.KV.Key, string(ev.KV.Value))
			seen++
		}
	}
	// Output:
	// listed node/a up
	// put node/b up
	// put node/a down
}

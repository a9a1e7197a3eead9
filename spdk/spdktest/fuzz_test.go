package spdktest

import (
	"encoding/json"
	"testing"
)

// FuzzWire feeds arbitrary bytes through the framing, request validation
// and dispatch of a live fake: nothing may panic, and a reply is always one
// JSON-RPC object (truncated only for id-less successes).
func FuzzWire(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","method":"spdk_get_version","id":1}`,
		`{"method":"bdev_malloc_create","params":{"name":"m","block_size":512,"num_blocks":8},"id":"x"}`,
		`{"jsonrpc":"2.0","method":"bdev_get_bdevs","params":[],"id":{"a":1}}`,
		`[{"method":"x"}]`, `"str"`, `this is not json`, `{"method":17}`, `{"id":1.5,"method":"rpc_get_methods","params":{"current":true}}`,
		`{"method":"nvmf_create_subsystem","params":{"nqn":"nqn.2016-06.io.vda:a","min_cntlid":9,"max_cntlid":2},"id":3}`,
	} {
		f.Add([]byte(s))
	}
	srv := NewServer(f)
	srv.mu.Lock()
	in := srv.cur
	srv.mu.Unlock()
	f.Fuzz(func(t *testing.T, data []byte) {
		buf := data
		for len(buf) > 0 {
			n, complete := frameValue(buf)
			if !complete {
				return
			}
			raw := buf[:n]
			buf = buf[n:]
			if !json.Valid(raw) {
				return
			}
			req, _, perr := parseRequest(raw)
			if perr == nil && unsafeToFuzz[req.method] {
				continue
			}
			a := in.handle(raw)
			if a.later != nil {
				a = a.later()
			}
			reply := a.reply
			if reply == nil {
				continue
			}
			var v map[string]any
			if json.Unmarshal(reply, &v) != nil && json.Unmarshal(append(reply, '}'), &v) != nil {
				t.Fatalf("reply is not JSON: %q", reply)
			}
		}
	})
}

// unsafeToFuzz are methods that block or stop the instance.
var unsafeToFuzz = map[string]bool{
	"spdk_kill_instance": true, "bdev_get_bdevs": true, "bdev_wait_for_examine": true, "framework_wait_init": true,
	"bdev_nvme_attach_controller": true,
}

// FuzzHandlers calls every method's handler directly (outside the panic
// recovery of the dispatcher) with arbitrary params.
func FuzzHandlers(f *testing.F) {
	f.Add(uint8(0), []byte(`{"name":"m","block_size":512,"num_blocks":8}`))
	f.Add(uint8(7), []byte(`{"nqn":"nqn.2016-06.io.vda:x","namespace":{"bdev_name":"m","nsid":0}}`))
	f.Add(uint8(30), []byte(`{"name":"r","raid_level":"concat","strip_size_kb":64,"base_bdevs":["m","m"]}`))
	f.Add(uint8(40), []byte(`[]`))
	srv := NewServer(f)
	srv.mu.Lock()
	in := srv.cur
	srv.mu.Unlock()
	var names []string
	for _, m := range Methods() {
		if !unsafeToFuzz[m] && !handlers[m].unlocked {
			names = append(names, m)
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, params []byte) {
		m := handlers[names[int(which)%len(names)]]
		var p json.RawMessage
		if json.Valid(params) {
			p = params
		}
		in.st.mu.Lock()
		defer in.st.mu.Unlock()
		_, _ = m.fn(in.st, p)
	})
}

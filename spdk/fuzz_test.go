package spdk

import (
	"bytes"
	"encoding/json"
	"net"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// FuzzReadResponse feeds arbitrary bytes to the reply reader: it must never panic or hang,
// must end by breaking the connection (the input always ends), and must hand each waiting
// caller at most one reply; the typed result decoders must not panic on whatever arrives.
func FuzzReadResponse(f *testing.F) {
	for _, seed := range []string{
		`{"jsonrpc":"2.0","id":1,"result":true}` + "\n",
		`{"jsonrpc":"2.0","id":2,"error":{"code":-19,"message":"No such device"}}` + "\n",
		`{"jsonrpc":"2.0","id":null,"result":"nullid"`,
		`{"jsonrpc":"2.0","id":3,"result":[{"name":"b","driver_specific":{"lvol":{"clones":["x"]},"x":1}}]}`,
		`{"jsonrpc":"2.0","id":1,"result":[{"nqn":"n","listen_addresses":[{"trtype":"TCP"}]}]}{"id":2}`,
		"this is not json",
		"[1,2,3]",
		`{"id":18446744073709551616,"result":1}`,
		`{"id":-1,"result":1}{"id":1.5,"result":1}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		a, b := net.Pipe()
		defer b.Close()
		cn := newConn(a, hclog.NewNullLogger())
		chans := map[uint64]chan response{}
		for id := uint64(1); id <= 3; id++ {
			ch, err := cn.register(id)
			if err != nil {
				t.Fatal(err)
			}
			chans[id] = ch
		}
		cn.readLoop(bytes.NewReader(data))
		if !cn.broken() || cn.failure() == nil {
			t.Fatal("reader returned without breaking the connection")
		}
		for _, ch := range chans {
			select {
			case resp := <-ch:
				decodeAll(resp.Result)
			default:
			}
			if len(ch) != 0 {
				t.Fatal("more than one reply delivered for one id")
			}
		}
	})
}

func decodeAll(raw json.RawMessage) {
	for _, v := range []any{
		new([]Bdev), new([]Subsystem), new([]Lvstore), new([]Lvol), new([]RaidBdev),
		new([]NvmeController), new([]Listener), new(IOStat), new(Version), new(IOPaths),
	} {
		_ = json.Unmarshal(raw, v)
	}
}

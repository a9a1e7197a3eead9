package spdk

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"reflect"
	"testing"
	"testing/iotest"

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

// FuzzReplyReaderMatchesDecoder checks the reply reader against what encoding/json's Decoder
// made of the same bytes: every reply the Decoder decoded comes out the same (id, error and
// result), and the reader goes further only past a reply whose result is not JSON, which it
// hands to its caller to fail with ErrBadResponse instead of breaking the connection.
func FuzzReplyReaderMatchesDecoder(f *testing.F) {
	for _, seed := range []string{
		`{"jsonrpc":"2.0","id":1,"result":true}` + "\n" + `{"jsonrpc":"2.0","id":2,"result":[{"a":"\"}"}]}`,
		`{"jsonrpc":"2.0","id":2,"error":{"code":-19,"message":"No such device"}}`,
		`{"ID":1,"Result":{"x":[1,2,{}]},"error":null} {"id":2,"result":"s"}`,
		`{"error":{"code":1,"message":"a"},"error":{"code":2}}`,
		`{"id":1,"id":2,"result":1,"result":[]}`,
		`{"id":1,"result":tru}{"id":2,"result":1}`,
		`{"id":1,"result":[1 2]}{"id":2,"result":1}`,
		`{"id":01,"result":1}`,
		`{"\u0069d":3,"result":null}`,
		`{"jsonrpc":"2.0","id":null,"result":"nullid"{"jsonrpc":"2.0","id":1,"result":true}`,
		`{}  {"id":1}`,
		`{"id":1,"result":{"a":1,}}`,
		`{"id":1,"result":"\ud800\u00e9"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var want []response
		dec := json.NewDecoder(bytes.NewReader(data))
		for {
			// The one difference by design: a top-level value that is not an object (the
			// Decoder turned null into an empty reply, then discarded) breaks the connection.
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil || raw[0] != '{' {
				break
			}
			var resp response
			if err := json.Unmarshal(raw, &resp); err != nil {
				break
			}
			want = append(want, resp)
		}
		for _, r := range []io.Reader{bytes.NewReader(data), iotest.OneByteReader(bytes.NewReader(data))} {
			checkReplyReader(t, r, data, want)
		}
	})
}

// checkReplyReader reads data from r with the reply reader, compares with want.
func checkReplyReader(t *testing.T, r io.Reader, data []byte, want []response) {
	rr := newReplyReader(r)
	rr.buf = make([]byte, 7) // grow while scanning, as with a large reply
	for k := 0; ; k++ {
		got, err := rr.next()
		if k >= len(want) {
			if err == nil && k == len(want) && got.Result != nil && json.Valid(got.Result) {
				t.Fatalf("reply %d: the decoder failed on it, the reader did not: %q", k, data)
			}
			return
		}
		if err != nil {
			t.Fatalf("reply %d: %v; the decoder read %+v", k, err, want[k])
		}
		w := want[k]
		if !bytes.Equal(bytes.TrimSpace(got.ID), bytes.TrimSpace(w.ID)) ||
			!bytes.Equal(bytes.TrimSpace(got.Result), bytes.TrimSpace(w.Result)) ||
			(got.Error == nil) != (w.Error == nil) ||
			got.Error != nil && *got.Error != *w.Error {
			t.Fatalf("reply %d: got %+v, the decoder read %+v", k, got, w)
		}
	}
}

// FuzzDriverSpecific checks that DriverSpecific's shortcut (no generic decode when only known
// modules are present) decodes exactly what the full decode does.
func FuzzDriverSpecific(f *testing.F) {
	for _, seed := range []string{
		`{}`, ` { } `, `{"lvol":{"lvol_store_uuid":"u","clones":["a"]}}`,
		`{"nvme":[{"trid":{"trtype":"TCP"}}],"mp_policy":"active_passive"}`,
		`{"raid":{"name":"r","base_bdevs_list":[{"name":"x"}]} , "split":{"base":"b"}}`,
		`{"passthru":{"name":"p","base_bdev_name":"b"},"aio":{"filename":"f"}}`,
		`{"LVOL":{}}`, `{"lv\u006fl":{}}`, `{"mp_policy":"x}\"","other":[1,{"a":"]"}]}`,
		`{"lvol":null,"x":1}`, `{"aio":1}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var got DriverSpecific
		gotErr := json.Unmarshal(data, &got)
		type known DriverSpecific
		var k known
		wantErr := json.Unmarshal(data, &k)
		if wantErr == nil {
			var all map[string]any
			if err := json.Unmarshal(data, &all); err != nil {
				wantErr = err
			} else {
				for _, key := range driverSpecificKeys {
					delete(all, key)
				}
				if len(all) > 0 {
					k.Other = all
				}
			}
		}
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("%q: error %v, want %v", data, gotErr, wantErr)
		}
		if gotErr == nil && !reflect.DeepEqual(got, DriverSpecific(k)) {
			t.Fatalf("%q: got %+v, want %+v", data, got, DriverSpecific(k))
		}
	})
}

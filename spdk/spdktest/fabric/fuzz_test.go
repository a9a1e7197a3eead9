package fabric

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"
)

func frame(h header, body []byte) []byte {
	h.bodyLen = uint32(len(body))
	b := make([]byte, headerLen)
	h.put(b)
	return append(b, body...)
}

// FuzzReadFrame: the frame decoder and the body decoders never panic on
// garbage, and a decoded header re-encodes to the same bytes.
func FuzzReadFrame(f *testing.F) {
	f.Add(frame(header{op: opConnect}, []byte(`{"subnqn":"a","hostnqn":"b"}`)))
	f.Add(frame(header{op: opRead, tag: 9, nsid: 1, arg: 4096}, binary.LittleEndian.AppendUint32(nil, 512)))
	f.Add(frame(header{op: opConnect | opReply, status: stNotAllowed}, []byte("no")))
	f.Add(frame(header{op: opAEN}, []byte(`{"cntlid":1,"namespaces":[{"nsid":1}]}`)))
	f.Add([]byte{0x46, 0x56, 0xff, 0, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		h, body, err := readFrame(newFrameReader(bytes.NewReader(data)))
		if err != nil {
			return
		}
		require.Len(t, body, int(h.bodyLen))
		re := make([]byte, headerLen)
		h.put(re)
		got, err := parseHeader(re)
		require.NoError(t, err)
		require.Equal(t, h, got)
		_, _ = decodeConnect(body)
		_, _ = decodeInfo(body)
		_ = statusError(h.status, string(body))
	})
}

// FuzzHostReader feeds garbage to a host connection's reader (with a read
// in flight): it must fail the connection, never panic.
func FuzzHostReader(f *testing.F) {
	f.Add(frame(header{op: opRead | opReply, tag: 1}, make([]byte, 512)))
	f.Add(frame(header{op: opRead | opReply, tag: 1}, make([]byte, 100)))
	f.Add(frame(header{op: opAEN}, []byte(`{"ana_state":"x"}`)))
	f.Add(frame(header{op: opWrite | opReply, tag: 1, status: stIOError}, []byte("boom")))
	f.Add(frame(header{op: opRead}, nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		client, server := net.Pipe()
		c := &Conn{conn: client, logger: hclog.NewNullLogger(), pending: map[uint64]*call{}, done: make(chan struct{})}
		cl := &call{dst: make([]byte, 512), done: make(chan struct{})}
		c.pending[1] = cl
		go func() {
			_, _ = server.Write(data)
			_ = server.Close()
		}()
		c.wg.Add(1)
		go c.readLoop()
		<-c.Done()
		<-cl.done
		c.wg.Wait()
		require.Error(t, c.Err())
	})
}

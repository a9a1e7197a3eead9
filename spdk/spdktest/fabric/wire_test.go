package fabric

import (
	"bytes"
	"encoding/binary"
	"io"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"
)

// countingReader counts the Read calls that reach the connection.
type countingReader struct {
	r     io.Reader
	reads int
}

func (c *countingReader) Read(p []byte) (int, error) {
	c.reads++
	return c.r.Read(p)
}

// TestFrameReaderReadsSmallFramesInOneRead: a header and a small body are
// one read; a large body goes past the buffer; frames that arrive
// together are read together.
func TestFrameReaderReadsSmallFramesInOneRead(t *testing.T) {
	small := frame(header{op: opRead, tag: 1, nsid: 1, arg: 4096}, binary.LittleEndian.AppendUint32(nil, 4096))
	big := frame(header{op: opRead | opReply, tag: 2, nsid: 1}, bytes.Repeat([]byte{7}, 4096))

	cr := &countingReader{r: bytes.NewReader(small)}
	fr := newFrameReader(cr)
	h, body, err := readFrame(fr)
	require.NoError(t, err)
	require.Equal(t, uint64(1), h.tag)
	require.Equal(t, small[headerLen:], body)
	require.Equal(t, 1, cr.reads, "a header with a 4-byte body is one read")

	// Three frames in one stream: the two small ones and the header of the
	// large one come with the first read.
	stream := append(append(append([]byte(nil), small...), small...), big...)
	cr = &countingReader{r: bytes.NewReader(stream)}
	fr = newFrameReader(cr)
	for i, want := range [][]byte{small, small, big} {
		h, body, err := readFrame(fr)
		require.NoError(t, err, "frame %d", i)
		require.Equal(t, want[headerLen:], body, "frame %d", i)
		require.Equal(t, binary.LittleEndian.Uint64(want[8:]), h.tag)
	}
	require.Equal(t, 2, cr.reads, "one read for the buffer, one for the rest of the large body")
	_, _, err = readFrame(fr)
	require.ErrorIs(t, err, io.EOF)
}

// TestFrameReaderAsReadFull: whatever sizes the reads return, the frames
// and the errors are those of reading the header and then the body with
// io.ReadFull.
func TestFrameReaderAsReadFull(t *testing.T) {
	var stream []byte
	for i := range 40 {
		stream = append(stream, frame(header{op: opWrite, tag: uint64(i), nsid: 1}, bytes.Repeat([]byte{byte(i)}, i*37))...)
	}
	for name, wrap := range map[string]func(io.Reader) io.Reader{
		"whole":    func(r io.Reader) io.Reader { return r },
		"one byte": iotest.OneByteReader,
		"half":     iotest.HalfReader,
		"data+err": iotest.DataErrReader,
	} {
		for _, cut := range []int{len(stream), len(stream) - 5, headerLen + 3, 10, 0} {
			got := readAllFrames(newFrameReader(wrap(bytes.NewReader(stream[:cut]))))
			want := readAllFramesFull(bytes.NewReader(stream[:cut]))
			require.Equal(t, want, got, "%s, cut at %d", name, cut)
		}
	}
}

type frameResult struct {
	h    header
	body []byte
	err  error
}

func readAllFrames(fr *frameReader) []frameResult {
	var out []frameResult
	for {
		h, body, err := readFrame(fr)
		out = append(out, frameResult{h, body, err})
		if err != nil {
			return out
		}
	}
}

// readAllFramesFull is the reader before frameReader: io.ReadFull of the
// header, then of the body.
func readAllFramesFull(r io.Reader) []frameResult {
	var out []frameResult
	hb := make([]byte, headerLen)
	for {
		var res frameResult
		if _, res.err = io.ReadFull(r, hb); res.err == nil {
			if res.h, res.err = parseHeader(hb); res.err == nil {
				res.body = make([]byte, res.h.bodyLen)
				if _, res.err = io.ReadFull(r, res.body); res.err != nil {
					if res.err == io.EOF {
						res.err = io.ErrUnexpectedEOF
					}
				}
			}
		}
		if res.err != nil {
			res.h, res.body = header{}, nil
		}
		out = append(out, res)
		if res.err != nil {
			return out
		}
	}
}

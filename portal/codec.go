package portal

import (
	"context"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/proto" // registers the "proto" codec
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
)

// requestCodec is the server's codec: proto, except that a request that
// does not decode becomes InvalidArgument. gRPC turns every codec error
// into Internal (the server's fault), and a malformed request (bad wire
// format, a string that is not UTF-8) is the client's. The codec cannot
// choose the code, so it records the failure against the (reset) request
// and returns nil; the first interceptor, which every unary handler calls
// right after decoding, answers InvalidArgument for it.
type requestCodec struct {
	encoding.CodecV2
	bad *sync.Map // request message -> its unmarshal error
}

func newRequestCodec() requestCodec {
	return requestCodec{CodecV2: encoding.GetCodecV2("proto"), bad: &sync.Map{}}
}

// Unmarshal implements encoding.CodecV2.
func (c requestCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if err := c.CodecV2.Unmarshal(data, v); err != nil {
		c.bad.Store(v, err)
	}
	return nil
}

// rejectMalformed answers InvalidArgument for a request Unmarshal failed on.
func (c requestCodec) rejectMalformed(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if err, bad := c.bad.LoadAndDelete(req); bad {
		return nil, status.Errorf(codes.InvalidArgument, "malformed %s request: %v", info.FullMethod, err)
	}
	return h(ctx, req)
}

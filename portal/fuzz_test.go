package portal_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/vda-io/vda"
	pb "github.com/vda-io/vda/api/portalpb"
	"github.com/vda-io/vda/portal"
	"github.com/vda-io/vda/store"
)

// apiCodes are the codes the portal documents for a refused request.
var apiCodes = []codes.Code{codes.InvalidArgument, codes.NotFound, codes.AlreadyExists,
	codes.FailedPrecondition, codes.ResourceExhausted}

// fuzzPortal is a real portal gRPC server (over bufconn) on a memstore
// holding the tutorial's cluster, reset to it before every input.
type fuzzPortal struct {
	st      store.Store
	conn    *grpc.ClientConn
	methods []protoreflect.MethodDescriptor
	seed    map[string]string
}

func newFuzzPortal(t testing.TB) *fuzzPortal {
	st := newStore(t)
	cl, err := vda.New(vda.DefaultConfig(st))
	require.NoError(t, err)
	srv, err := portal.New(portal.Config{Cluster: cl, Insecure: true})
	require.NoError(t, err)
	lis := bufconn.Listen(1 << 20)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	t.Cleanup(func() { cancel(); <-done })
	conn, err := grpc.NewClient("passthrough:///bufconn", grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	seed(t, pb.NewPortalClient(conn))
	fp := &fuzzPortal{st: st, conn: conn}
	fp.seed = fp.dump(t)
	sd := pb.File_portal_proto.Services().Get(0)
	for i := range sd.Methods().Len() {
		if md := sd.Methods().Get(i); !md.IsStreamingServer() { // Watch runs until cancelled: TestWatch
			fp.methods = append(fp.methods, md)
		}
	}
	return fp
}

// dump is every key of the store with its value.
func (fp *fuzzPortal) dump(t testing.TB) map[string]string {
	res, err := fp.st.List(context.Background(), "", store.ListOptions{})
	require.NoError(t, err)
	out := make(map[string]string, len(res.KVs))
	for _, kv := range res.KVs {
		out[kv.Key] = string(kv.Value)
	}
	return out
}

// reset puts the store back to the seeded cluster.
func (fp *fuzzPortal) reset(t testing.TB) {
	var ops []store.Op
	for k, v := range fp.dump(t) {
		if fp.seed[k] != v {
			ops = append(ops, store.Op{Key: k, Delete: true})
		}
	}
	for k, v := range fp.seed {
		ops = append(ops, store.Op{Key: k, Value: []byte(v)})
	}
	// A key may be written once per Txn: puts win over the deletes of
	// the same key.
	slices.SortStableFunc(ops, func(a, b store.Op) int { return strings.Compare(a.Key, b.Key) })
	ops = slices.CompactFunc(ops, func(a, b store.Op) bool { return a.Key == b.Key })
	_, err := fp.st.Txn(context.Background(), store.Txn{Ops: dedupPuts(ops)})
	require.NoError(t, err)
}

func dedupPuts(ops []store.Op) []store.Op {
	out := ops[:0]
	for i, op := range ops {
		if i+1 < len(ops) && ops[i+1].Key == op.Key {
			continue
		}
		out = append(out, op)
	}
	return out
}

// fuzzBytes hands out a fuzz input piece by piece (zeros once it is used up).
type fuzzBytes struct{ b []byte }

func (r *fuzzBytes) more() bool { return len(r.b) > 0 }

func (r *fuzzBytes) byte() byte {
	if len(r.b) == 0 {
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *fuzzBytes) take(n int) []byte {
	n = min(n, len(r.b))
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

// words are values that reach deep into the handlers: the seeded names,
// valid and invalid configurations, NQNs, tokens and hostile text.
var words = []string{
	"", "da0", "da1", "exp0", "exp1", "pd0", "pd1", "192.168.0.14:9720", "192.168.0.15:9720", "192.168.0.16:9820",
	"192.168.0.17:9820", "10.0.0.9:9720", ".", "..", "a:b", "127.0.43.14:09720", "[::1]:9720", "DN.example:1",
	`{"trtype":"tcp","traddr":"10.0.0.9","adrfam":"ipv4","trsvcid":"4420"}`,
	`{"trtype":"tcp","traddr":"192.168.0.14","adrfam":"ipv4","trsvcid":"4420"}`,
	`{"trtype":"tcp","traddr":"10.0.0.9","trsvcid":"4420","trtype":"rdma"}`,
	`{"type":"malloc","size":134217728}`, `{"type":"malloc","size":1099511627776}`, `{"type":"aio","filename":"/dev/sdb"}`,
	`{"type":"aio","filename":"/etc/../etc/shadow"}`, `{"type":"nvme","traddr":"0000:01:00.0"}`, `{"type":"malloc","Size":1}`,
	`{"stripe_count":2,"stripe_size_kb":64}`, `{"stripe_count":1,"stripe_size_kb":4}`, `{"stripe_count":2,"stripe_size_kb":64}x`,
	"nqn.2016-06.io.spdk:host0", "nqn.2016-06.io.spdk:host1", "nqn.2016-06.io.spdk:vda-cntlr-x", "nqn.2016-06.io.spdk:h\n",
	"192.168.0.14:9720/pd0", "da0/exp0", "\x1b[2J", "a\x00b", "é", strings.Repeat("x", 300),
}

// fieldWords are the likely values of a string field, by the end of its
// name, so that generated requests get past validation often.
var fieldWords = map[string][]string{
	"dn_name": {"192.168.0.14:9720", "192.168.0.15:9720", "10.0.0.9:9720", "dn9", "127.0.43.14:09720"},
	"cn_name": {"192.168.0.16:9820", "192.168.0.17:9820", "10.0.0.9:9820", "cn9", "[fd00::9]:9820"},
	"pd_name": {"pd0", "pd1", ".."}, "da_name": {"da0", "da1", "."}, "exp_name": {"exp0", "exp1", "-x"},
	"listener_conf": {`{"trtype":"tcp","traddr":"10.0.0.9","adrfam":"ipv4","trsvcid":"4420"}`,
		`{"trtype":"tcp","traddr":"192.168.0.16","trsvcid":"4430"}`, `{"trtype":"tcp","traddr":"fd00::9","trsvcid":"4420"}`},
	"pd_conf": {`{"type":"malloc","size":134217728}`, `{"type":"malloc","size":67108864}`, `{"type":"aio","filename":"/var/lib/vda/pd.img"}`,
		`{"type":"nvme","traddr":"01:00.0"}`},
	"da_conf":       {`{"stripe_count":2,"stripe_size_kb":64}`, `{"stripe_count":1,"stripe_size_kb":64}`, `{"stripe_count":2,"stripe_size_kb":4}`},
	"initiator_nqn": {"nqn.2016-06.io.spdk:host0", "nqn.2016-06.io.spdk:host1", "nqn.2014-08.org.nvmexpress:uuid:1b4e28ba-2fa1-11d2-883f-0016d3cca427"},
	"page_token":    {"", "192.168.0.14:9720", "192.168.0.14:9720/pd0", "da0", "da0/exp0", "pd0"},
	"description":   {"", "x", "maintenance"},
	"location":      {"", "r1", "192.168.0.14:9720"},
}

func wordsFor(fd protoreflect.FieldDescriptor) []string {
	name := string(fd.Name())
	for suffix, ws := range fieldWords {
		if strings.HasSuffix(name, suffix) {
			return ws
		}
	}
	return nil
}

// fill sets fields of m from r: scalars from the input, strings mostly
// from words, messages recursively.
func fill(m protoreflect.Message, r *fuzzBytes, depth int) {
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if r.byte()%4 == 0 || fd.IsList() || fd.IsMap() {
			continue // left unset
		}
		var v protoreflect.Value
		switch fd.Kind() {
		case protoreflect.StringKind:
			if c, ws := r.byte(), wordsFor(fd); c < 0x80 && ws != nil {
				v = protoreflect.ValueOfString(ws[int(c)%len(ws)])
			} else if c < 0xc0 {
				v = protoreflect.ValueOfString(words[int(c)%len(words)])
			} else {
				v = protoreflect.ValueOfString(strings.ToValidUTF8(string(r.take(int(c-0xc0))), "?"))
			}
		case protoreflect.BoolKind:
			v = protoreflect.ValueOfBool(r.byte()&1 == 1)
		case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
			v = protoreflect.ValueOfInt32(int32(number(r)))
		case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
			v = protoreflect.ValueOfUint32(uint32(number(r)))
		case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
			v = protoreflect.ValueOfInt64(int64(number(r)))
		case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
			v = protoreflect.ValueOfUint64(number(r))
		case protoreflect.MessageKind:
			if depth > 3 {
				continue
			}
			sub := m.NewField(fd).Message()
			fill(sub, r, depth+1)
			v = protoreflect.ValueOfMessage(sub)
		default:
			continue
		}
		m.Set(fd, v)
	}
}

// number is a small count, a size that fits the seeded cluster, an edge
// value, or eight bytes of the input.
func number(r *fuzzBytes) uint64 {
	switch c := r.byte(); {
	case c < 0x40:
		return uint64(c % 20)
	case c < 0x80:
		return []uint64{32 << 20, 64 << 20, 33554433, 1 << 30, 1 << 50, 1 << 62, 1<<63 - 1, 1<<64 - 1,
			1<<31 - 1, 1 << 31, 1<<32 - 1, 4096, 1001, 1000}[int(c)%14]
	default:
		var b [8]byte
		copy(b[:], r.take(8))
		return binary.LittleEndian.Uint64(b[:])
	}
}

// FuzzPortal sends generated, well-formed requests for every portal
// method (and, for inputs starting with 0xff, raw bytes) to the real gRPC
// server over a seeded cluster: nothing may panic (the server would answer
// Internal), every error must carry one of the documented codes, and a
// failed request must leave the store as it was.
func FuzzPortal(f *testing.F) {
	fp := newFuzzPortal(f)
	for i := range fp.methods {
		f.Add(append([]byte{byte(i)}, bytes.Repeat([]byte{1, 1}, 8)...))
		f.Add([]byte{byte(i), 1, 3, 1, 0x10, 1, 0x13, 1, 0x16})
	}
	f.Add([]byte{0xff, 0x0a, 0x02, 0xff, 0xfe})
	f.Fuzz(func(t *testing.T, data []byte) {
		fp.reset(t)
		r := &fuzzBytes{data}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for step := 0; step < 3 && r.more(); step++ {
			c := r.byte()
			raw := c == 0xff
			if raw {
				c = r.byte()
			}
			md := fp.methods[int(c)%len(fp.methods)]
			name := fmt.Sprintf("/%s/%s", md.Parent().FullName(), md.Name())
			before := fp.dump(t)
			rev, err := fp.st.Revision(ctx)
			require.NoError(t, err)
			var req any
			reply := dynamicpb.NewMessage(md.Output())
			var opts []grpc.CallOption
			if raw {
				in, out := rawMsg(r.take(int(r.byte()))), rawMsg(nil)
				req, opts = &in, []grpc.CallOption{grpc.ForceCodec(rawCodec{})}
				err = fp.conn.Invoke(ctx, name, req, &out, opts...)
			} else {
				m := dynamicpb.NewMessage(md.Input())
				fill(m, r, 0)
				req = m
				err = fp.conn.Invoke(ctx, name, req, reply)
			}
			if err == nil {
				continue
			}
			st, ok := status.FromError(err)
			require.True(t, ok, "%s: not a status: %v", name, err)
			require.Contains(t, apiCodes, st.Code(), "%s %v: %v", name, req, err)
			require.NotEmpty(t, st.Message())
			require.Equal(t, before, fp.dump(t), "%s %v failed (%v) but changed the store", name, req, err)
			after, err := fp.st.Revision(ctx)
			require.NoError(t, err)
			require.Equal(t, rev, after, "%s failed but committed", name)
		}
	})
}

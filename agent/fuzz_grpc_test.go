package agent_test

import (
	"context"
	"encoding/binary"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/vda-io/vda/agent"
	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/nvmeof"
)

// agentCodes are the codes the agent answers a request it refuses with.
var agentCodes = []codes.Code{codes.InvalidArgument, codes.FailedPrecondition}

// syncBytes hands out a fuzz input piece by piece (zeros once used up).
type syncBytes struct{ b []byte }

func (r *syncBytes) byte() byte {
	if len(r.b) == 0 {
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// fuzzIDs are the IDs generated states use, so that objects repeat
// across PDs, VDs and requests.
var fuzzIDs = []string{"0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210",
	"00000000000000000000000000000001", "ffffffffffffffffffffffffffffffff", "0123456789ABCDEF0123456789ABCDEF", "x", ""}

func syncString(fd protoreflect.FieldDescriptor, r *syncBytes) string {
	c := r.byte()
	name := string(fd.Name())
	switch {
	case c >= 0xf0:
		n := int(c - 0xf0)
		s := r.b[:min(n, len(r.b))]
		r.b = r.b[len(s):]
		return strings.ToValidUTF8(string(s), "?")
	case name == "id" || strings.HasSuffix(name, "_id"):
		return fuzzIDs[int(c)%len(fuzzIDs)]
	case strings.HasSuffix(name, "nqn"):
		return []string{string(nvmeof.HostNQN(fuzzIDs[0])), string(nvmeof.HostNQN(fuzzIDs[1])), "nqn.2016-06.io.spdk:host0",
			"nqn.2016-06.io.spdk:h\n", ""}[int(c)%5]
	case name == "filename":
		return []string{"/etc/passwd", "/tmp/../etc/shadow", "relative", "/dev/null", ""}[int(c)%5]
	case name == "traddr":
		return []string{"127.0.0.1", "0000:01:00.0", "::1", "localhost", ""}[int(c)%5]
	case name == "trtype":
		return []string{"TCP", "tcp", "RDMA", "PCIe", ""}[int(c)%5]
	case name == "trsvcid":
		return []string{"4420", "0", "65536", "04420", ""}[int(c)%5]
	case name == "adrfam":
		return []string{"IPv4", "ipv6", "ib", ""}[int(c)%4]
	}
	return []string{"", "x", "vda-pd-x", strings.Repeat("a", 300)}[int(c)%4]
}

func syncNumber(r *syncBytes) uint64 {
	switch c := r.byte(); {
	case c < 0x80:
		return uint64(c % 8)
	case c < 0xc0:
		return []uint64{8 << 20, 64 << 20, 4097, 1 << 40, 1<<63 - 1, 1<<64 - 1, 1 << 31, 512}[int(c)%8]
	default:
		var b [8]byte
		for i := range b {
			b[i] = r.byte()
		}
		return binary.LittleEndian.Uint64(b[:])
	}
}

// syncFill sets fields of m from r, lists of messages included (0-2
// elements).
func syncFill(m protoreflect.Message, r *syncBytes, depth int) {
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if r.byte()%4 == 0 || depth > 5 {
			continue
		}
		if fd.IsList() {
			if fd.Kind() != protoreflect.MessageKind {
				continue
			}
			l := m.Mutable(fd).List()
			for range int(r.byte() % 3) {
				e := l.NewElement()
				syncFill(e.Message(), r, depth+1)
				l.Append(e)
			}
			continue
		}
		if fd.IsMap() {
			continue
		}
		var v protoreflect.Value
		switch fd.Kind() {
		case protoreflect.StringKind:
			v = protoreflect.ValueOfString(syncString(fd, r))
		case protoreflect.BoolKind:
			v = protoreflect.ValueOfBool(r.byte()&1 == 1)
		case protoreflect.EnumKind:
			v = protoreflect.ValueOfEnum(protoreflect.EnumNumber(r.byte() % 4))
		case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
			v = protoreflect.ValueOfInt32(int32(syncNumber(r)))
		case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
			v = protoreflect.ValueOfUint32(uint32(syncNumber(r)))
		case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
			v = protoreflect.ValueOfInt64(int64(syncNumber(r)))
		case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
			v = protoreflect.ValueOfUint64(syncNumber(r))
		case protoreflect.MessageKind:
			sub := m.NewField(fd).Message()
			syncFill(sub, r, depth+1)
			v = protoreflect.ValueOfMessage(sub)
		default:
			continue
		}
		m.Set(fd, v)
	}
}

// FuzzAgentSync sends generated Sync requests (desired states of PDs and
// VDs, or controllers for the wrong role) to a real disk-node agent over
// gRPC in front of the fake SPDK, then Health: no request may panic (the
// server would answer Internal), a refused Sync carries a documented code,
// and Health keeps answering.
func FuzzAgentSync(f *testing.F) {
	fake := srvFake(f)
	cfg := srvConfig(f, agent.RoleDN, fake)
	cfg.SyncTimeout = 5 * time.Second
	r := srvStart(f, cfg)
	conn, err := grpc.NewClient(r.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(f, err)
	f.Cleanup(func() { _ = conn.Close() })
	c := agentpb.NewAgentClient(conn)
	seedReq := dnRequest(1, fuzzIDs[0], fuzzIDs[0], fuzzIDs[1], fuzzIDs[2], fuzzIDs[3], 1)
	b, err := proto.Marshal(seedReq)
	require.NoError(f, err)
	f.Add(b, []byte{})
	f.Add([]byte{}, []byte{1, 1, 1, 3, 1, 1, 1, 2, 1, 1, 1, 1, 1, 1, 0x80, 1, 1})
	f.Add([]byte{}, []byte{1, 0x81, 1, 1, 1, 4, 1, 1, 1})
	var next atomic.Int64 // generations that keep growing, so the guard does not refuse everything
	f.Fuzz(func(t *testing.T, wire, gen []byte) {
		req := &agentpb.SyncRequest{}
		if proto.Unmarshal(wire, req) != nil || len(gen) > 0 {
			req = &agentpb.SyncRequest{}
			syncFill(req.ProtoReflect(), &syncBytes{gen}, 0)
		}
		if len(gen) > 0 && gen[0]%8 != 0 {
			req.Generation = next.Add(1) << 20
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err := c.Sync(ctx, req)
		if err != nil {
			st, ok := status.FromError(err)
			require.True(t, ok, "not a status: %v", err)
			require.Contains(t, agentCodes, st.Code(), "%v: %v", req, err)
		}
		_, err = c.Health(ctx, &agentpb.HealthRequest{})
		require.NoError(t, err, "after %v", req)
	})
}

package csi

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const (
	testVol = "csi-0123456789abcdef0123456789abcdef"
	testNQN = "nqn.2016-06.io.spdk:vda-exp-" + "csi--0123456789abcdef0123456789abcdef-csi--0123456789abcdef0123456789abcdef"
	// nvmeof.NamespaceUUID(testNQN)
	testUUID = "8ea1681b-968e-5e59-8be0-ef912da5392f"
)

// fakeNVMe plays nvme-cli: list-subsys prints before until a connect
// succeeded, then after; every call is recorded.
type fakeNVMe struct {
	mu            sync.Mutex
	before, after []byte
	connected     bool
	failAddr      string // connect to it fails
	calls         []string
}

func (f *fakeNVMe) run(_ context.Context, name string, args ...string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, name+" "+strings.Join(args, " "))
	switch args[0] {
	case "list-subsys":
		if f.connected {
			return f.after, nil
		}
		return f.before, nil
	case "connect":
		if strings.Contains(strings.Join(args, " "), "-a "+f.failAddr+" ") {
			return nil, errors.New("Failed to write to /dev/nvme-fabrics: Connection refused")
		}
		f.connected = true
		return nil, nil
	case "disconnect":
		f.connected = false
		return []byte("NQN:" + args[2] + " disconnected 2 controller(s)\n"), nil
	}
	return nil, errors.New("unexpected command")
}

func sysfs(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	sub := filepath.Join(root, "class", "nvme-subsystem", "nvme-subsys1")
	for name, uuid := range map[string]string{"nvme1n1": testUUID, "nvme1n2": "00000000-0000-0000-0000-000000000001"} {
		require.NoError(t, os.MkdirAll(filepath.Join(sub, name), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(sub, name, "uuid"), []byte(uuid+"\n"), 0o644))
	}
	require.NoError(t, os.MkdirAll(filepath.Join(sub, "nvme1"), 0o755)) // a controller, no uuid
	return root
}

func readData(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return b
}

func testTarget() Target {
	return Target{VolumeID: testVol, NQN: testNQN, HostNQN: "nqn.2016-06.io.vda:node1", Listeners: []Listener{
		{TrType: "tcp", TrAddr: "192.168.0.16", AdrFam: "ipv4", TrSvcID: "4430"},
		{TrType: "tcp", TrAddr: "192.168.0.17", AdrFam: "ipv4", TrSvcID: "4430"}}}
}

// Connect runs one nvme connect per listener with the host NQN and ID and
// finds the namespace by its UUID; a second Connect connects nothing
// more; Disconnect disconnects the subsystem.
func TestNVMeConnectorConnects(t *testing.T) {
	f := &fakeNVMe{before: []byte("[]\n"), after: readData(t, "list-subsys-v2.json")}
	n := &NVMeConnector{HostID: "4c4c4544-0051-3010-8054-b4c04f4e3732", Run: f.run, SysfsRoot: sysfs(t), Poll: time.Millisecond}
	ctx := context.Background()
	dev, err := n.Connect(ctx, testTarget())
	require.NoError(t, err)
	require.Equal(t, "/dev/nvme1n1", dev)
	var connects []string
	for _, c := range f.calls {
		if strings.HasPrefix(c, "nvme connect") {
			connects = append(connects, c)
		}
	}
	require.Equal(t, []string{
		"nvme connect -t tcp -a 192.168.0.16 -s 4430 -n " + testNQN + " --hostnqn nqn.2016-06.io.vda:node1 --hostid 4c4c4544-0051-3010-8054-b4c04f4e3732",
		"nvme connect -t tcp -a 192.168.0.17 -s 4430 -n " + testNQN + " --hostnqn nqn.2016-06.io.vda:node1 --hostid 4c4c4544-0051-3010-8054-b4c04f4e3732",
	}, connects)

	f.calls = nil
	dev, err = n.Connect(ctx, testTarget())
	require.NoError(t, err)
	require.Equal(t, "/dev/nvme1n1", dev)
	for _, c := range f.calls {
		require.NotContains(t, c, "nvme connect", "both paths are live already")
	}

	require.NoError(t, n.Disconnect(ctx, Target{VolumeID: testVol, NQN: testNQN}))
	require.Contains(t, f.calls, "nvme disconnect -n "+testNQN)
	f.calls = nil
	require.NoError(t, n.Disconnect(ctx, Target{VolumeID: testVol, NQN: testNQN}), "disconnected already")
	require.NotContains(t, f.calls, "nvme disconnect -n "+testNQN)
}

// One listener refusing leaves the volume connected through the other;
// all refusing fails with nvme-cli's message.
func TestNVMeConnectorPartialPaths(t *testing.T) {
	f := &fakeNVMe{before: []byte("[]\n"), after: readData(t, "list-subsys-v2.json"), failAddr: "192.168.0.16"}
	n := &NVMeConnector{Run: f.run, SysfsRoot: sysfs(t), Poll: time.Millisecond}
	dev, err := n.Connect(context.Background(), testTarget())
	require.NoError(t, err)
	require.Equal(t, "/dev/nvme1n1", dev)

	f = &fakeNVMe{before: []byte("[]\n"), failAddr: "192.168.0.16"}
	n.Run = f.run
	one := testTarget()
	one.Listeners = one.Listeners[:1]
	_, err = n.Connect(context.Background(), one)
	require.ErrorContains(t, err, "Connection refused")
}

// A namespace that never shows fails when the context ends.
func TestNVMeConnectorWaitsForNamespace(t *testing.T) {
	f := &fakeNVMe{before: []byte("[]\n"), after: readData(t, "list-subsys-v2.json")}
	n := &NVMeConnector{Run: f.run, SysfsRoot: t.TempDir(), Poll: time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := n.Connect(ctx, testTarget())
	require.ErrorIs(t, err, context.Canceled)
}

func TestParseListSubsys(t *testing.T) {
	subs, err := parseListSubsys(readData(t, "list-subsys-v2.json"))
	require.NoError(t, err)
	require.Len(t, subs, 2)
	require.Equal(t, "nvme-subsys1", subs[1].Name)
	require.Equal(t, testNQN, subs[1].NQN)
	require.Len(t, subs[1].Paths, 2)
	subs, err = parseListSubsys(readData(t, "list-subsys-v1.json"))
	require.NoError(t, err)
	require.Len(t, subs, 1)
	require.Equal(t, testNQN, subs[0].NQN)
	require.Len(t, subs[0].Paths, 1)
	for _, empty := range []string{"", "[]", "{}"} {
		subs, err = parseListSubsys([]byte(empty))
		require.NoError(t, err)
		require.Empty(t, subs)
	}
	_, err = parseListSubsys([]byte("[{"))
	require.Error(t, err)
}

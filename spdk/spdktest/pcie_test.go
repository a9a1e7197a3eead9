package spdktest

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParsePCIAddr(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"0000:01:00.0", "0000:01:00.0"},
		{"01:00.0", "0000:01:00.0"},
		{"0:1:0.0", "0000:01:00.0"},
		{"10000:ff:1f.7", "10000:ff:1f.7"},
		{"0000:AB:1e.3", "0000:ab:1e.3"},
	} {
		got, err := ParsePCIAddr(tc.in)
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, got, tc.in)
	}
	for _, bad := range []string{"", "x", "0000:01:00", "0000:100:00.0", "0000:01:20.0", "0000:01:00.8", "0000:01:00.0.1", "a:b:c:d.0", "0000::00.0", "0000:01:.0", "0000:01:00.-1", "127.0.0.1"} {
		_, err := ParsePCIAddr(bad)
		require.ErrorIs(t, err, ErrConfig, bad)
	}
}

func TestParseNVMeDevice(t *testing.T) {
	d, err := ParseNVMeDevice("0000:01:00.0,file=/var/tmp/n0.img,size=2GiB,block-size=512,serial=S1,model=M1")
	require.NoError(t, err)
	require.Equal(t, NVMeDevice{TrAddr: "0000:01:00.0", Path: "/var/tmp/n0.img", SizeBytes: 2 << 30, BlockSize: 512, SerialNumber: "S1", ModelNumber: "M1"}, d)
	d, err = ParseNVMeDevice("02:00.0,size=4096")
	require.NoError(t, err)
	require.Equal(t, NVMeDevice{TrAddr: "02:00.0", SizeBytes: 4096}, d)
	for _, s := range []string{"0000:01:00.0,size", "0000:01:00.0,size=1GB", "0000:01:00.0,colour=red", "0000:01:00.0,block-size=x", "0000:01:00.0,size=99999999999TiB"} {
		_, err := ParseNVMeDevice(s)
		require.ErrorIs(t, err, ErrConfig, s)
	}
}

func TestNewRejectsBadNVMeDevices(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small.img")
	require.NoError(t, createSparse(small, 1<<20))
	tiny := filepath.Join(dir, "tiny.img")
	require.NoError(t, createSparse(tiny, 100))
	for name, devs := range map[string][]NVMeDevice{
		"bad address":         {{TrAddr: "0000:01:20.0", SizeBytes: 1 << 20}},
		"twice":               {{TrAddr: "0000:01:00.0", SizeBytes: 1 << 20}, {TrAddr: "01:00.0", SizeBytes: 1 << 20}},
		"no size, no file":    {{TrAddr: "0000:01:00.0"}},
		"unaligned size":      {{TrAddr: "0000:01:00.0", SizeBytes: 4097}},
		"odd block size":      {{TrAddr: "0000:01:00.0", SizeBytes: 1 << 20, BlockSize: 1000}},
		"missing file":        {{TrAddr: "0000:01:00.0", Path: filepath.Join(dir, "none.img")}},
		"file size mismatch":  {{TrAddr: "0000:01:00.0", Path: small, SizeBytes: 2 << 20}},
		"file under a block":  {{TrAddr: "0000:01:00.0", Path: tiny}},
		"file in missing dir": {{TrAddr: "0000:01:00.0", Path: filepath.Join(dir, "no", "x.img"), SizeBytes: 1 << 20}},
	} {
		_, err := New(Config{SockPath: filepath.Join(dir, "s.sock"), NVMeDevices: devs})
		require.ErrorIs(t, err, ErrConfig, name)
	}
}

// nvmeCtrlrs decodes bdev_nvme_get_controllers.
func nvmeCtrlrs(t *testing.T, rc *rawConn) []map[string]any {
	t.Helper()
	var out []map[string]any
	require.NoError(t, json.Unmarshal(rc.ok("bdev_nvme_get_controllers", nil), &out))
	return out
}

func TestAttachPCIeAnswersLikeSPDK(t *testing.T) {
	srv := NewServer(t, WithNVMeDevice(NVMeDevice{TrAddr: "0000:01:00.0", SizeBytes: 64 << 20}),
		WithNVMeDevice(NVMeDevice{TrAddr: "0000:02:00.0", SizeBytes: 32 << 20, BlockSize: 512, SerialNumber: "SN2", ModelNumber: "Model 2"}))
	rc := dialRaw(t, srv.SockPath())
	attach := func(name, traddr string, extra ...any) map[string]any {
		p := map[string]any{"name": name, "trtype": "PCIe", "traddr": traddr}
		for i := 0; i+1 < len(extra); i += 2 {
			p[extra[i].(string)] = extra[i+1]
		}
		return p
	}

	require.JSONEq(t, `["nvme0n1"]`, string(rc.ok("bdev_nvme_attach_controller", attach("nvme0", "0000:01:00.0"))))
	require.JSONEq(t, `["nvme1n1"]`, string(rc.ok("bdev_nvme_attach_controller", attach("nvme1", "02:00.0", "trtype", "pcie"))))

	// Unknown or malformed addresses: spdk_nvme_connect_async finds no
	// device and bdev_nvme_create returns -ENODEV.
	for _, addr := range []string{"0000:03:00.0", "0000:01:00.1", "not-a-pci-address", "127.0.0.1"} {
		require.Equal(t, "No such device", rc.fails(-19, "bdev_nvme_attach_controller", attach("nvmeX", addr)), addr)
	}
	rc.fails(-22, "bdev_nvme_attach_controller", attach("nvmeX", strings.Repeat("0", 257)))
	// The same device under another name, in either spelling: -EEXIST.
	require.Equal(t, "File exists", rc.fails(-17, "bdev_nvme_attach_controller", attach("other", "0000:01:00.0")))
	rc.fails(-17, "bdev_nvme_attach_controller", attach("other", "01:00.0"))
	// The same name again.
	require.Equal(t, "A controller named nvme0 already exists with the specified network path\n",
		rc.fails(-114, "bdev_nvme_attach_controller", attach("nvme0", "0000:01:00.0")))
	require.Equal(t, "A controller named nvme0 already exists and multipath is disabled\n",
		rc.fails(-114, "bdev_nvme_attach_controller", attach("nvme0", "0000:01:00.0", "multipath", "disable")))
	require.Equal(t, "A controller named nvme0 already exists, but uses a different hostnqn ("+srv.hostNQN(t)+")\n",
		rc.fails(-22, "bdev_nvme_attach_controller", attach("nvme0", "0000:03:00.0", "hostnqn", "nqn.2016-06.io.vda:h")))
	rc.fails(-32603, "bdev_nvme_attach_controller", attach("nvme9", "0000:01:00.0", "multipath", "sometimes"))

	var bdevs []bdevJSON
	require.NoError(t, json.Unmarshal(rc.ok("bdev_get_bdevs", map[string]any{"name": "nvme1n1"}), &bdevs))
	b := bdevs[0]
	require.Equal(t, "NVMe disk", b.ProductName)
	require.Equal(t, uint32(512), b.BlockSize)
	require.Equal(t, uint64(32<<20/512), b.NumBlocks)
	require.Equal(t, []string{b.UUID}, b.Aliases)
	ds, err := json.Marshal(b.DriverSpecific)
	require.NoError(t, err)
	var drv struct {
		NVMe []struct {
			PCIAddress string                     `json:"pci_address"`
			Trid       map[string]string          `json:"trid"`
			CtrlrData  map[string]json.RawMessage `json:"ctrlr_data"`
		} `json:"nvme"`
	}
	require.NoError(t, json.Unmarshal(ds, &drv))
	require.Equal(t, "0000:02:00.0", drv.NVMe[0].PCIAddress)
	require.Equal(t, map[string]string{"trtype": "PCIe", "traddr": "0000:02:00.0"}, drv.NVMe[0].Trid)
	require.JSONEq(t, `"SN2"`, string(drv.NVMe[0].CtrlrData["serial_number"]))
	require.JSONEq(t, `"Model 2"`, string(drv.NVMe[0].CtrlrData["model_number"]))

	ctrls := nvmeCtrlrs(t, rc)
	require.Len(t, ctrls, 2)
	require.Equal(t, "nvme0", ctrls[0]["name"])
	path := ctrls[0]["ctrlrs"].([]any)[0].(map[string]any)
	require.Equal(t, "enabled", path["state"])
	require.Equal(t, map[string]any{"trtype": "PCIe", "traddr": "0000:01:00.0"}, path["trid"], "a PCIe trid has no adrfam, trsvcid or subnqn")

	// Detach removes the bdev; the device can be attached again.
	rc.ok("bdev_nvme_detach_controller", map[string]any{"name": "nvme0"})
	rc.fails(-19, "bdev_get_bdevs", map[string]any{"name": "nvme0n1"})
	rc.fails(-19, "bdev_nvme_detach_controller", map[string]any{"name": "nvme0"})
	rc.ok("bdev_nvme_attach_controller", attach("again", "0000:01:00.0"))
	// Detaching by the path's address works too.
	rc.ok("bdev_nvme_detach_controller", map[string]any{"name": "again", "traddr": "0000:01:00.0"})
	rc.fails(-19, "bdev_get_bdevs", map[string]any{"name": "againn1"})
}

// hostNQN is the current instance's default host NQN.
func (s *Server) hostNQN(t *testing.T) string {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	require.NotNil(t, s.cur)
	return s.cur.st.hostNQN
}

func TestPCIeBdevUUIDStableAcrossRestart(t *testing.T) {
	srv := NewServer(t, WithNVMeDevice(NVMeDevice{TrAddr: "0000:01:00.0", SizeBytes: 16 << 20}))
	uuid := func() string {
		rc := dialRaw(t, srv.SockPath())
		rc.ok("bdev_nvme_attach_controller", map[string]any{"name": "n", "trtype": "PCIe", "traddr": "0000:01:00.0"})
		var bdevs []bdevJSON
		require.NoError(t, json.Unmarshal(rc.ok("bdev_get_bdevs", map[string]any{"name": "nn1"}), &bdevs))
		return bdevs[0].UUID
	}
	first := uuid()
	srv.Crash()
	require.NoError(t, srv.Restart(false))
	require.Equal(t, first, uuid(), "the namespace identity belongs to the device")
}

// TestPCIeDataSurvivesCrash writes through the bdev and an lvstore on it,
// crashes the target, and finds both again after a restart: a file-backed
// device also across a new Target on the same file (a new process), a
// memory-backed one only within the Target.
func TestPCIeDataSurvivesCrash(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "nvme0.img")
	for _, tc := range []struct {
		name string
		dev  NVMeDevice
	}{
		{"memory", NVMeDevice{TrAddr: "0000:01:00.0", SizeBytes: 64 << 20}},
		{"file", NVMeDevice{TrAddr: "0000:01:00.0", Path: file, SizeBytes: 64 << 20}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := NewServer(t, WithNVMeDevice(tc.dev), WithWaitForRPC())
			lvs, pattern := pcieWriteLvstore(t, srv)

			srv.Crash()
			require.NoError(t, srv.Restart(true))
			pcieFindLvstore(t, srv, lvs, pattern)

			srv.Crash()
			require.NoError(t, srv.Restart(true))
			rc := dialRaw(t, srv.SockPath())
			rc.ok("framework_start_init", nil)
			rc.ok("bdev_nvme_attach_controller", map[string]any{"name": "pd", "trtype": "PCIe", "traddr": "0000:01:00.0"})
			rc.ok("bdev_nvme_detach_controller", map[string]any{"name": "pd"})
			require.NoError(t, srv.Close())

			// A new Target on the same configuration is a new process.
			next := NewServer(t, WithNVMeDevice(tc.dev), WithWaitForRPC())
			if tc.dev.Path == "" {
				rc := dialRaw(t, next.SockPath())
				rc.ok("bdev_set_options", map[string]any{"bdev_auto_examine": false})
				rc.ok("framework_start_init", nil)
				rc.ok("bdev_nvme_attach_controller", map[string]any{"name": "pd", "trtype": "PCIe", "traddr": "0000:01:00.0"})
				rc.ok("bdev_examine", map[string]any{"name": "pdn1"})
				next.CompleteExamines()
				rc.fails(-19, "bdev_lvol_get_lvstores", map[string]any{"lvs_name": "lvs"})
				return
			}
			pcieFindLvstore(t, next, lvs, pattern)
		})
	}
}

// pcieWriteLvstore attaches the device as pd, creates an lvstore with a
// thick lvol and writes a pattern into the lvol.
func pcieWriteLvstore(t *testing.T, srv *Server) (string, []byte) {
	t.Helper()
	rc := dialRaw(t, srv.SockPath())
	rc.ok("bdev_set_options", map[string]any{"bdev_auto_examine": false})
	rc.ok("framework_start_init", nil)
	rc.ok("bdev_nvme_attach_controller", map[string]any{"name": "pd", "trtype": "PCIe", "traddr": "0000:01:00.0"})
	lvs := strings.Trim(string(rc.ok("bdev_lvol_create_lvstore", map[string]any{"bdev_name": "pdn1", "lvs_name": "lvs", "cluster_sz": 1 << 20, "clear_method": "none"})), `"`)
	rc.ok("bdev_lvol_create", map[string]any{"lvs_name": "lvs", "lvol_name": "vd", "size_in_mib": 8})
	pattern := bytes.Repeat([]byte("nvme"), 2048)
	_, err := srv.bdevDevice(t, "lvs/vd").WriteAt(pattern, 1<<20)
	require.NoError(t, err)
	return lvs, pattern
}

// pcieFindLvstore attaches the device after a restart, examines it and
// reads the pattern back through the lvol.
func pcieFindLvstore(t *testing.T, srv *Server, lvs string, pattern []byte) {
	t.Helper()
	rc := dialRaw(t, srv.SockPath())
	rc.ok("bdev_set_options", map[string]any{"bdev_auto_examine": false})
	rc.ok("framework_start_init", nil)
	rc.fails(-19, "bdev_get_bdevs", map[string]any{"name": "pdn1"})
	require.JSONEq(t, `["pdn1"]`, string(rc.ok("bdev_nvme_attach_controller", map[string]any{"name": "pd", "trtype": "PCIe", "traddr": "0000:01:00.0"})))
	rc.ok("bdev_examine", map[string]any{"name": "pdn1"})
	srv.CompleteExamines()
	var got []lvstoreJSON
	require.NoError(t, json.Unmarshal(rc.ok("bdev_lvol_get_lvstores", map[string]any{"lvs_name": "lvs"}), &got))
	require.Equal(t, lvs, got[0].UUID)
	require.Equal(t, "pdn1", got[0].BaseBdev)
	buf := make([]byte, len(pattern))
	_, err := srv.bdevDevice(t, "lvs/vd").ReadAt(buf, 1<<20)
	require.NoError(t, err)
	require.Equal(t, pattern, buf)
}

func TestPCIeFileCreatedSparseAndReused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "n.img")
	srv := NewServer(t, WithNVMeDevice(NVMeDevice{TrAddr: "0000:05:00.0", Path: path, SizeBytes: 8 << 20}))
	st, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, int64(8<<20), st.Size())
	require.NoError(t, srv.Close())
	// Reopening without a size keeps the file's size and its contents.
	srv = NewServer(t, WithNVMeDevice(NVMeDevice{TrAddr: "0000:05:00.0", Path: path}))
	rc := dialRaw(t, srv.SockPath())
	rc.ok("bdev_nvme_attach_controller", map[string]any{"name": "n", "trtype": "PCIe", "traddr": "0000:05:00.0"})
	var bdevs []bdevJSON
	require.NoError(t, json.Unmarshal(rc.ok("bdev_get_bdevs", map[string]any{"name": "nn1"}), &bdevs))
	require.Equal(t, uint64(8<<20/DefaultNVMeBlockSize), bdevs[0].NumBlocks)
	require.NoError(t, srv.Restart(false))
}

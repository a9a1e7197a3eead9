package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRunStopsOnKillInstance(t *testing.T) {
	dir, err := os.MkdirTemp("", "fakespdk")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "s.sock")
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() { done <- run([]string{"-r", sock, "--wait-for-rpc", "--log-level", "error"}, &stderr) }()
	var c net.Conn
	require.Eventually(t, func() bool {
		c, err = net.Dial("unix", sock)
		return err == nil
	}, 10*time.Second, 5*time.Millisecond)
	defer c.Close()
	_, _ = io.WriteString(c, `{"jsonrpc":"2.0","method":"bdev_get_bdevs","id":1}{"jsonrpc":"2.0","method":"spdk_kill_instance","params":{"sig_name":"SIGTERM"},"id":2}`)
	buf, _ := io.ReadAll(c)
	if !strings.Contains(string(buf), `"code":-1`) || !strings.Contains(string(buf), `"id":2,"result":true`) {
		t.Fatalf("replies: %s", buf)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit code %d: %s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("vda-fakespdk did not stop after spdk_kill_instance")
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	var stderr bytes.Buffer
	if code := run([]string{"--no-such-flag"}, &stderr); code != 2 {
		t.Fatalf("exit code %d", code)
	}
	stderr.Reset()
	if code := run([]string{"--log-format", "xml"}, &stderr); code != 2 || !strings.Contains(stderr.String(), "--log-format") {
		t.Fatalf("exit code %d: %s", code, stderr.String())
	}
}

func TestRunServesNVMeDevices(t *testing.T) {
	dir, err := os.MkdirTemp("", "fakespdk")
	require.NoError(t, err)
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "s.sock")
	img := filepath.Join(dir, "n0.img")
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run([]string{"-r", sock, "--log-level", "error", "--nvme", "0000:01:00.0,file=" + img + ",size=8MiB", "--nvme", "02:00.0,size=4MiB,block-size=512"}, &stderr)
	}()
	var c net.Conn
	require.Eventually(t, func() bool {
		c, err = net.Dial("unix", sock)
		return err == nil
	}, 10*time.Second, 5*time.Millisecond)
	defer c.Close()
	_, _ = io.WriteString(c, `{"jsonrpc":"2.0","method":"bdev_nvme_attach_controller","params":{"name":"a","trtype":"PCIe","traddr":"0000:01:00.0"},"id":1}`+
		`{"jsonrpc":"2.0","method":"bdev_nvme_attach_controller","params":{"name":"b","trtype":"PCIe","traddr":"0000:02:00.0"},"id":2}`+
		`{"jsonrpc":"2.0","method":"spdk_kill_instance","params":{"sig_name":"SIGTERM"},"id":3}`)
	buf, _ := io.ReadAll(c)
	require.Contains(t, string(buf), `"id":1,"result":["an1"]`)
	require.Contains(t, string(buf), `"id":2,"result":["bn1"]`)
	require.Equal(t, 0, <-done, stderr.String())
	st, err := os.Stat(img)
	require.NoError(t, err)
	require.Equal(t, int64(8<<20), st.Size())

	if code := run([]string{"-r", sock, "--nvme", "0000:01:00.0"}, &stderr); code != 1 {
		t.Fatalf("a device without size or file: exit code %d", code)
	}
	if code := run([]string{"-r", sock, "--nvme", "0000:01:00.0,bogus=1"}, &stderr); code != 2 {
		t.Fatalf("a malformed --nvme: exit code %d", code)
	}
}

// --reserve holds a port for the process's life: nothing else can bind it,
// connections are refused until a listener is added on its address, then
// served; --reserved-file tells the address before the socket is served.
func TestRunReservesListenerPorts(t *testing.T) {
	dir, err := os.MkdirTemp("", "fakespdk")
	require.NoError(t, err)
	defer os.RemoveAll(dir)
	sock, file := filepath.Join(dir, "s.sock"), filepath.Join(dir, "addrs")
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run([]string{"-r", sock, "--log-level", "error", "--reserve", "127.0.0.1", "--reserve", "127.0.0.1:0",
			"--reserved-file", file}, &stderr)
	}()
	var c net.Conn
	require.Eventually(t, func() bool {
		c, err = net.Dial("unix", sock)
		return err == nil
	}, 10*time.Second, 5*time.Millisecond)
	defer c.Close()
	b, err := os.ReadFile(file)
	require.NoError(t, err, "written before the socket is served")
	addrs := strings.Fields(string(b))
	require.Len(t, addrs, 2)
	require.NotEqual(t, addrs[0], addrs[1])
	ap, err := netip.ParseAddrPort(addrs[0])
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1", ap.Addr().String())
	require.NotZero(t, ap.Port())
	_, err = net.Listen("tcp", addrs[0])
	require.Error(t, err, "held: nobody else binds it")
	_, err = net.Dial("tcp", addrs[0])
	require.Error(t, err, "refused while no listener is added")

	listener := fmt.Sprintf(`{"trtype":"tcp","adrfam":"ipv4","traddr":"127.0.0.1","trsvcid":"%d"}`, ap.Port())
	_, _ = io.WriteString(c, `{"jsonrpc":"2.0","method":"nvmf_create_transport","params":{"trtype":"TCP"},"id":1}`+
		`{"jsonrpc":"2.0","method":"nvmf_create_subsystem","params":{"nqn":"nqn.2016-06.io.spdk:a"},"id":2}`+
		`{"jsonrpc":"2.0","method":"nvmf_subsystem_add_listener","params":{"nqn":"nqn.2016-06.io.spdk:a","listen_address":`+listener+`},"id":3}`)
	dec := json.NewDecoder(c)
	for id := 1; id <= 3; id++ {
		var rep struct {
			ID    int             `json:"id"`
			Error json.RawMessage `json:"error"`
		}
		require.NoError(t, dec.Decode(&rep))
		require.Equal(t, id, rep.ID)
		require.Nil(t, rep.Error, "request %d", id)
	}
	tc, err := net.Dial("tcp", addrs[0])
	require.NoError(t, err, "served on the reservation")
	_ = tc.Close()
	_, _ = io.WriteString(c, `{"jsonrpc":"2.0","method":"spdk_kill_instance","params":{"sig_name":"SIGTERM"},"id":4}`)
	require.Equal(t, 0, <-done, stderr.String())

	if code := run([]string{"-r", sock, "--reserve", "localhost"}, &stderr); code != 2 {
		t.Fatalf("a --reserve that is no IP: exit code %d", code)
	}
	if code := run([]string{"-r", sock, "--reserved-file", file}, &stderr); code != 2 {
		t.Fatalf("--reserved-file without --reserve: exit code %d", code)
	}
}

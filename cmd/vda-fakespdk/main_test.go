package main

import (
	"bytes"
	"io"
	"net"
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

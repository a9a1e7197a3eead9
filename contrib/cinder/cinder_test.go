// The Cinder driver's tests: Python unit tests (tests/) run by Debian's
// python3 against a dev cluster's real portal, which this Go test starts
// with mutual TLS and a certificate of the driver's own.
package cinder_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/devcluster"
	"github.com/vda-io/vda/failover"
	"github.com/vda-io/vda/internal/generated"
	"github.com/vda-io/vda/mtls"
	"github.com/vda-io/vda/nvmeof"
)

// EnvRequire, set to 1 (CI does), makes missing Debian packages of the
// driver (python3-cinder, python3-os-brick, python3-grpcio) a failure
// instead of a skip.
const EnvRequire = "VDA_REQUIRE_CINDER"

const packages = "python3-cinder python3-os-brick python3-grpcio"

// needPython returns the Python that imports what the driver and its
// tests need: $VDA_PYTHON, else Debian's /usr/bin/python3 (a python3
// earlier in PATH, such as pyenv's, does not see Debian's packages), else
// python3. Without one it skips, or fails with VDA_REQUIRE_CINDER=1.
func needPython(t *testing.T) string {
	t.Helper()
	candidates := []string{"/usr/bin/python3", "python3"}
	if p := os.Getenv("VDA_PYTHON"); p != "" {
		candidates = []string{p}
	}
	var msgs []string
	for _, py := range candidates {
		out, err := exec.Command(py, "-c", "import cinder.tests.unit.fake_volume, os_brick.initiator.connectors.nvmeof, grpc, google.protobuf").CombinedOutput()
		if err == nil {
			return py
		}
		msgs = append(msgs, py+": "+lastLine(string(out))+" ("+err.Error()+")")
	}
	msg := "the Cinder driver's tests need Debian's " + packages + " (scripts/test installs them as root): " +
		strings.Join(msgs, "; ")
	if os.Getenv(EnvRequire) == "1" {
		t.Fatalf("%s, and %s=1", msg, EnvRequire)
	}
	t.Skip(msg)
	return ""
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// startCluster runs a dev cluster with mutual TLS and PDs of pdBytes.
func startCluster(t *testing.T, pdBytes uint64) *devcluster.Cluster {
	t.Helper()
	c, err := devcluster.New(devcluster.Config{DataDir: t.TempDir(), AnyPorts: true, Register: true,
		PDSizeBytes: pdBytes, Failover: failover.Config{Interval: 500 * time.Millisecond, MissThreshold: 6,
			Window: 5 * time.Second, SlowTimeout: 10 * time.Second, HoldDown: 30 * time.Second}})
	require.NoError(t, err)
	stop, err := c.Start(context.Background())
	require.NoError(t, err, "cluster did not start")
	t.Cleanup(func() { require.NoError(t, stop()) })
	return c
}

// driverTLS issues the driver's own identity (an admin certificate named
// "cinder", as `vda certs issue --role admin --name cinder` does) into dir.
func driverTLS(t *testing.T, c *devcluster.Cluster, dir string) mtls.Config {
	t.Helper()
	ca, err := mtls.LoadCA(filepath.Join(c.TLSDir(), mtls.CACertFile), filepath.Join(c.TLSDir(), mtls.CAKeyFile))
	require.NoError(t, err)
	cfg, err := ca.IssueFiles(dir, mtls.CertRequest{Identity: mtls.Identity{Role: mtls.RoleAdmin, Name: "cinder"}}, false)
	require.NoError(t, err)
	return cfg
}

// TestDriver runs the driver's Python tests (contrib/cinder/tests) against
// the portal of a dev cluster: every operation the driver supports, the
// state it leaves in VDA checked through the portal, the connection info
// parsed by os-brick's NVMe-oF connector.
func TestDriver(t *testing.T) {
	py := needPython(t)
	c := startCluster(t, 4<<30)
	tls := driverTLS(t, c, filepath.Join(t.TempDir(), "cinder-tls"))
	const vectorNQN = "nqn.2016-06.io.vda:exp-cinder-vector"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "-W", "ignore::DeprecationWarning", "-m", "unittest", "discover", "-v", "-s", "tests", "-t", ".")
	cmd.Env = append(os.Environ(),
		"PYTHONPATH=.",
		"PYTHONDONTWRITEBYTECODE=1",
		"VDA_PORTAL_ADDR="+c.PortalAddr(),
		"VDA_TLS_CERT="+tls.CertFile,
		"VDA_TLS_KEY="+tls.KeyFile,
		"VDA_TLS_CA="+tls.CAFile,
		"VDA_TEST_CNS=2",
		"VDA_TEST_NS_UUID="+vectorNQN+" "+nvmeof.NamespaceUUID(nvmeof.NQN(vectorNQN)),
	)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	t.Log("\n" + out.String())
	require.NoError(t, err, "the driver's Python tests failed (output above)")
	// unittest exits 0 with every test skipped: a skip here is a failure.
	require.NotContains(t, out.String(), "skipped", "no Python test may skip against a running portal")
	require.Regexp(t, `Ran [1-9][0-9]* tests`, out.String())
}

// TestPythonMessagesAreCurrent regenerates vda_cinder/portal_pb2.py from
// api/portalpb/portal.proto and compares it with the committed file.
func TestPythonMessagesAreCurrent(t *testing.T) {
	if _, err := exec.LookPath("protoc"); err != nil {
		if os.Getenv(generated.EnvRequire) == "1" {
			t.Fatalf("protoc is missing and %s=1: %v", generated.EnvRequire, err)
		}
		t.Skipf("needs protoc (apt-get install protobuf-compiler; scripts/test does): %v", err)
	}
	out := t.TempDir()
	cmd := exec.Command("protoc", "--python_out="+out, "portal.proto")
	cmd.Dir = filepath.Join("..", "..", "api", "portalpb")
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", b)
	want, err := os.ReadFile(filepath.Join(out, "portal_pb2.py"))
	require.NoError(t, err)
	got, err := os.ReadFile(filepath.Join("vda_cinder", "portal_pb2.py"))
	require.NoError(t, err)
	require.True(t, bytes.Equal(want, got), "vda_cinder/portal_pb2.py is stale: run go generate ./api/portalpb")
}

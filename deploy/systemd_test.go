package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/internal/systemdunit"
)

const unitDir = "systemd"

// unitKeys are the keys each section of deploy/systemd's units may use:
// a typo (or a key of another section) would be ignored by systemd with
// only a warning in its log.
var unitKeys = map[string][]string{
	"Unit": {"Description", "Documentation", "Wants", "Requires", "After", "Before", "BindsTo", "PartOf"},
	"Service": {"Type", "User", "Group", "Environment", "EnvironmentFile", "ExecStart", "ExecStartPre", "ExecStartPost",
		"Restart", "RestartSec", "TimeoutStartSec", "TimeoutStopSec", "LimitNOFILE", "LimitMEMLOCK",
		"StateDirectory", "StateDirectoryMode", "NoNewPrivileges", "CapabilityBoundingSet", "ProtectSystem",
		"ProtectHome", "PrivateTmp", "PrivateDevices", "ProtectKernelTunables", "ProtectKernelModules",
		"ProtectKernelLogs", "ProtectControlGroups", "ProtectClock", "ProtectHostname", "RestrictAddressFamilies",
		"RestrictNamespaces", "RestrictRealtime", "RestrictSUIDSGID", "LockPersonality", "MemoryDenyWriteExecute",
		"SystemCallArchitectures", "UMask"},
	"Install": {"WantedBy"},
}

// installed maps an installed env file (/etc/vda/x.env) to its copy here.
func installed(p string) string {
	return filepath.Join(unitDir, strings.TrimPrefix(p, "/etc/vda/"))
}

func units(t *testing.T) map[string]systemdunit.Unit {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(unitDir, "*.service"))
	require.NoError(t, err)
	out := map[string]systemdunit.Unit{}
	for _, f := range files {
		u, err := systemdunit.ParseUnitFile(f)
		require.NoError(t, err)
		out[filepath.Base(f)] = u
	}
	for _, want := range []string{"vda-portal.service", "vda-monitor.service", "vda-agent.service", "spdk_tgt.service"} {
		require.Contains(t, out, want)
	}
	return out
}

func TestSystemdUnitsKnownKeys(t *testing.T) {
	for name, u := range units(t) {
		for _, e := range u.Entries {
			keys, ok := unitKeys[e.Section]
			require.True(t, ok, "%s:%d: section [%s]", name, e.Line, e.Section)
			require.Contains(t, keys, e.Key, "%s:%d: key %s in [%s]", name, e.Line, e.Key, e.Section)
		}
		require.NotEmpty(t, u.Value("Unit", "Description"), name)
		require.Equal(t, "on-failure", u.Value("Service", "Restart"), name)
		require.Equal(t, "multi-user.target", u.Value("Install", "WantedBy"), name)
		for _, f := range u.Values("Service", "EnvironmentFile") {
			require.Regexp(t, `^-/etc/vda/[a-z_]+\.env$`, f, "%s: the env-file convention", name)
			require.FileExists(t, installed(strings.TrimPrefix(f, "-")), "%s: an example of %s", name, f)
		}
	}
}

// The VDA units start a binary of cmd/ (its flags are checked by that
// binary's TestSystemdUnitArgs), report readiness (Type=notify, which the
// binary implements), and keep their state in their StateDirectory.
func TestSystemdUnitsVDA(t *testing.T) {
	us := units(t)
	for _, bin := range []string{"vda-portal", "vda-monitor", "vda-agent"} {
		u := us[bin+".service"]
		args, err := systemdunit.ExecStart(filepath.Join(unitDir, bin+".service"), installed)
		require.NoError(t, err)
		require.Equal(t, "/usr/local/bin/"+bin, args[0])
		main, err := os.ReadFile(filepath.Join("..", "cmd", bin, "main.go"))
		require.NoError(t, err, "%s is a binary of cmd/", bin)
		require.Equal(t, "notify", u.Value("Service", "Type"), bin)
		require.Contains(t, string(main), "cmdrun.NotifyReady(", "%s sends READY=1, or Type=notify never starts", bin)
		state := "/var/lib/" + u.Value("Service", "StateDirectory")
		i := slices.IndexFunc(args, func(a string) bool { return a == "--data-dir" || a == "--state-dir" })
		require.GreaterOrEqual(t, i, 0, "%s: its state directory is passed", bin)
		require.Equal(t, state, args[i+1], "%s: the state directory is the unit's", bin)
		require.Equal(t, "yes", u.Value("Service", "NoNewPrivileges"), bin)
		require.Equal(t, "strict", u.Value("Service", "ProtectSystem"), bin)
	}
	portal, monitor, agent := us["vda-portal.service"], us["vda-monitor.service"], us["vda-agent.service"]
	// The monitor's default store is the portal's socket: same user, same
	// directory, started after the portal is ready.
	require.Equal(t, portal.Value("Service", "User"), monitor.Value("Service", "User"))
	require.Equal(t, portal.Value("Service", "StateDirectory"), monitor.Value("Service", "StateDirectory"))
	require.Contains(t, strings.Fields(monitor.Value("Unit", "After")), "vda-portal.service")
	require.Contains(t, portal.Value("Service", "RestrictAddressFamilies"), "AF_UNIX")
	require.Contains(t, monitor.Value("Service", "RestrictAddressFamilies"), "AF_UNIX")
	// The agent: after and with spdk_tgt, as root, seeing its socket in the
	// host's /var/tmp and the block devices of aio PDs.
	require.Contains(t, strings.Fields(agent.Value("Unit", "After")), "spdk_tgt.service")
	require.Contains(t, strings.Fields(agent.Value("Unit", "Requires")), "spdk_tgt.service")
	require.Empty(t, agent.Value("Service", "User"), "root, like spdk_tgt's socket")
	require.NotEqual(t, "yes", agent.Value("Service", "PrivateTmp"), "spdk_tgt's socket is in /var/tmp")
	require.NotEqual(t, "yes", agent.Value("Service", "PrivateDevices"), "aio PDs on block devices")
	require.Contains(t, agent.Value("Service", "RestrictAddressFamilies"), "AF_UNIX")
}

// spdk_tgt starts with examine off and room for more than SPDK's default
// 1024 subsystems, both set before the framework starts.
func TestSystemdSPDKUnit(t *testing.T) {
	u := units(t)["spdk_tgt.service"]
	require.Contains(t, u.Value("Service", "ExecStart"), "--wait-for-rpc")
	var steps []string
	for _, p := range u.Values("Service", "ExecStartPost") {
		for _, m := range []string{"bdev_set_options -d", "nvmf_set_max_subsystems -x", "framework_start_init", "framework_wait_init"} {
			if strings.Contains(p, m) {
				steps = append(steps, m)
			}
		}
	}
	require.Equal(t, []string{"bdev_set_options -d", "nvmf_set_max_subsystems -x", "framework_start_init", "framework_wait_init"}, steps)
	require.Contains(t, u.Value("Service", "Environment"), "SPDK_MAX_SUBSYSTEMS=4096")
}

// systemd-analyze verify, where systemd is installed, on copies whose
// binaries are /bin/true (it checks that they exist).
func TestSystemdAnalyzeVerify(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (apt-get install systemd to run this check): ", err)
	}
	dir := t.TempDir()
	files, err := filepath.Glob(filepath.Join(unitDir, "*.service"))
	require.NoError(t, err)
	bins := regexp.MustCompile(`/usr/local/bin/vda-[a-z]+`)
	var names []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		b = bins.ReplaceAll(b, []byte("/bin/true"))
		require.NoError(t, os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644))
		names = append(names, filepath.Base(f))
	}
	cmd := exec.Command(sa, append([]string{"verify"}, names...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Empty(t, strings.TrimSpace(string(out)), "systemd-analyze verify warns")
}

// The binaries' image: one build stage, a runtime with the vda user, and a
// target per server binary whose entry point is that binary.
func TestDockerfileVDA(t *testing.T) {
	b, err := os.ReadFile("Dockerfile.vda")
	require.NoError(t, err)
	s := string(b)
	targets := map[string]string{}
	var last string
	for _, l := range strings.Split(s, "\n") {
		f := strings.Fields(l)
		if len(f) == 4 && f[0] == "FROM" && strings.EqualFold(f[2], "AS") {
			targets[f[3]], last = f[1], f[3]
		}
		if len(f) > 1 && f[0] == "ENTRYPOINT" {
			require.NotEmpty(t, last)
			require.Contains(t, l, `"/usr/local/bin/`+last+`"`, "target %s runs its binary", last)
		}
	}
	require.Regexp(t, `^golang:1\.26\.\d+-\S+$`, targets["build"])
	require.Contains(t, targets["runtime"], "-slim")
	for _, bin := range []string{"vda-portal", "vda-monitor", "vda-agent", "vda"} {
		require.Equal(t, "runtime", targets[bin], "target %s", bin)
		require.DirExists(t, filepath.Join("..", "cmd", bin))
		require.Contains(t, s, "./cmd/"+bin+" ", "built")
	}
	require.Equal(t, "vda", last, "the default target: every binary, the CLI first")
	require.Contains(t, s, "CGO_ENABLED=0")
	require.Contains(t, s, "VOLUME /var/lib/vda")
}

package csi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vda-io/vda/nvmeof"
)

// NVMeConnector attaches volumes with nvme-cli over NVMe/TCP: one `nvme
// connect` per controller listener (the kernel's native multipath joins
// them into one namespace), then finds the namespace by its UUID (VDA
// derives it from the exporter NQN) in sysfs.
type NVMeConnector struct {
	// HostID is passed as --hostid when set.
	HostID string
	// Run runs nvme-cli (execRunner if nil).
	Run Runner
	// SysfsRoot is "/sys" if empty (tests use a recorded tree).
	SysfsRoot string
	// Poll is how often the namespace is looked for (100ms if 0).
	Poll time.Duration
}

func (n *NVMeConnector) run(ctx context.Context, args ...string) ([]byte, error) {
	if n.Run != nil {
		return n.Run(ctx, "nvme", args...)
	}
	return execRunner(ctx, "nvme", args...)
}

// Connect connects every listener of t (one failing listener is tolerated
// while another works: the others are failover paths) and waits for the
// namespace.
func (n *NVMeConnector) Connect(ctx context.Context, t Target) (string, error) {
	if len(t.Listeners) == 0 {
		return "", errors.New("no listener to connect to")
	}
	connected := n.paths(ctx, t.NQN)
	var errs []error
	ok := 0
	for _, l := range t.Listeners {
		if connected[pathKey(l.TrAddr, l.TrSvcID)] {
			ok++
			continue
		}
		args := []string{"connect", "-t", l.TrType, "-a", l.TrAddr, "-s", l.TrSvcID, "-n", t.NQN, "--hostnqn", t.HostNQN}
		if n.HostID != "" {
			args = append(args, "--hostid", n.HostID)
		}
		if _, err := n.run(ctx, args...); err != nil {
			errs = append(errs, err)
			continue
		}
		ok++
	}
	if ok == 0 {
		return "", fmt.Errorf("no path of %s connected: %w", t.NQN, errors.Join(errs...))
	}
	return n.waitDevice(ctx, t.NQN)
}

func pathKey(addr, svcid string) string { return addr + "," + svcid }

// paths is the listeners this host has live controllers to, for nqn.
func (n *NVMeConnector) paths(ctx context.Context, nqn string) map[string]bool {
	subs, err := n.listSubsys(ctx)
	got := map[string]bool{}
	if err != nil {
		return got
	}
	for _, s := range subs {
		if s.NQN != nqn {
			continue
		}
		for _, p := range s.Paths {
			if p.Transport != "tcp" || p.State != "live" && p.State != "connecting" {
				continue
			}
			var addr, svcid string
			for _, kv := range strings.Split(p.Address, ",") {
				k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
				switch k {
				case "traddr":
					addr = v
				case "trsvcid":
					svcid = v
				}
			}
			got[pathKey(addr, svcid)] = true
		}
	}
	return got
}

// subsys is one subsystem of `nvme list-subsys -o json`.
type subsys struct {
	Name  string `json:"Name"`
	NQN   string `json:"NQN"`
	Paths []struct {
		Name      string `json:"Name"`
		Transport string `json:"Transport"`
		Address   string `json:"Address"`
		State     string `json:"State"`
	} `json:"Paths"`
}

// listSubsys parses `nvme list-subsys -o json`: nvme-cli 2.x prints an
// array of hosts, each with its Subsystems; 1.x one object.
func (n *NVMeConnector) listSubsys(ctx context.Context) ([]subsys, error) {
	out, err := n.run(ctx, "list-subsys", "-o", "json")
	if err != nil {
		return nil, err
	}
	return parseListSubsys(out)
}

func parseListSubsys(out []byte) ([]subsys, error) {
	type host struct {
		Subsystems []subsys `json:"Subsystems"`
	}
	var subs []subsys
	trimmed := strings.TrimSpace(string(out))
	switch {
	case trimmed == "" || trimmed == "{}" || trimmed == "[]":
		return nil, nil
	case strings.HasPrefix(trimmed, "["):
		var hosts []host
		if err := json.Unmarshal(out, &hosts); err != nil {
			return nil, fmt.Errorf("nvme list-subsys: %w", err)
		}
		for _, h := range hosts {
			subs = append(subs, h.Subsystems...)
		}
	default:
		var h host
		if err := json.Unmarshal(out, &h); err != nil {
			return nil, fmt.Errorf("nvme list-subsys: %w", err)
		}
		// 1.x prints a subsystem's Name and NQN and its Paths as two
		// consecutive objects.
		for _, x := range h.Subsystems {
			if x.NQN == "" && len(subs) > 0 {
				subs[len(subs)-1].Paths = append(subs[len(subs)-1].Paths, x.Paths...)
				continue
			}
			subs = append(subs, x)
		}
	}
	return subs, nil
}

// waitDevice waits until the namespace of nqn shows under its subsystem
// in sysfs, and returns /dev/<name>.
func (n *NVMeConnector) waitDevice(ctx context.Context, nqn string) (string, error) {
	want := strings.ToLower(nvmeof.NamespaceUUID(nvmeof.NQN(nqn)))
	poll := n.Poll
	if poll <= 0 {
		poll = 100 * time.Millisecond
	}
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		dev, err := n.findDevice(ctx, nqn, want)
		if err != nil || dev != "" {
			return dev, err
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("namespace %s of %s did not appear: %w", want, nqn, ctx.Err())
		case <-tick.C:
		}
	}
}

func (n *NVMeConnector) findDevice(ctx context.Context, nqn, uuid string) (string, error) {
	subs, err := n.listSubsys(ctx)
	if err != nil {
		return "", err
	}
	root := n.SysfsRoot
	if root == "" {
		root = "/sys"
	}
	for _, s := range subs {
		if s.NQN != nqn {
			continue
		}
		dir := filepath.Join(root, "class", "nvme-subsystem", s.Name)
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			// Head namespaces are nvme<subsys>n<nsid>; controllers are
			// nvme<N> (and hidden paths nvme<S>c<C>n<N> are not here).
			if !strings.HasPrefix(e.Name(), "nvme") || !strings.Contains(e.Name(), "n") || strings.Count(e.Name(), "n") < 2 {
				continue
			}
			b, err := os.ReadFile(filepath.Join(dir, e.Name(), "uuid"))
			if err == nil && strings.EqualFold(strings.TrimSpace(string(b)), uuid) {
				return "/dev/" + e.Name(), nil
			}
		}
	}
	return "", nil
}

// Disconnect disconnects every controller of t's subsystem.
func (n *NVMeConnector) Disconnect(ctx context.Context, t Target) error {
	if len(n.paths(ctx, t.NQN)) == 0 {
		return nil
	}
	_, err := n.run(ctx, "disconnect", "-n", t.NQN)
	return err
}

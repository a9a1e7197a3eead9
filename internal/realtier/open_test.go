package realtier

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/vda-io/vda/nvmeof/nvmetcp"
	"github.com/vda-io/vda/spdk/spdktest/fabric"
)

// hostDev is the host side of an export: the NVMe/TCP initiator.
type hostDev interface {
	fabric.BlockIO
	Close() error
}

var _ hostDev = (*nvmetcp.Multipath)(nil)

// hostCommandTimeout bounds one NVMe command on the test's host: a command
// a stopped or dead controller never answers fails its path after this
// long, and the Multipath retries it on another.
const hostCommandTimeout = 5 * time.Second

// hostOptions are host's NVMe/TCP settings as hnqn: its connections are
// dialled from inside host's network namespace.
func (c *cluster) hostOptions(host, hnqn string) nvmetcp.Options {
	return nvmetcp.Options{HostNQN: hnqn, Dial: c.Host(host).DialContext, CommandTimeout: hostCommandTimeout}
}

// open connects host, as hnqn, to namespace 1 of subsystem nqn through
// paths (multipath, also over one path) and returns it with its geometry.
func (c *cluster) open(ctx context.Context, host, nqn, hnqn string, paths []string) (hostDev, uint32, uint64, error) {
	m, err := nvmetcp.NewMultipath(paths, nqn, nvmetcp.MultipathOptions{Options: c.hostOptions(host, hnqn)})
	if err != nil {
		return nil, 0, 0, err
	}
	ns, err := m.Namespace(ctx, 1)
	if err != nil {
		_ = m.Close()
		return nil, 0, 0, fmt.Errorf("namespace 1: %w", err)
	}
	return m, ns.BlockSize, ns.Blocks, nil
}

// connectOne connects one controller (no multipath, no retries), as a
// check of who may connect.
func (c *cluster) connectOne(ctx context.Context, host, nqn, hnqn, addr string) error {
	ctrl, err := nvmetcp.Connect(ctx, addr, nqn, c.hostOptions(host, hnqn))
	if err == nil {
		_ = ctrl.Close()
	}
	return err
}

// pathStats describes what each path of h carried, for the log.
func pathStats(h *hostConn) string {
	m, ok := h.dev.(*nvmetcp.Multipath)
	if !ok {
		return ""
	}
	var b strings.Builder
	for _, p := range m.Paths() {
		fmt.Fprintf(&b, "[%s connected %v ANA %v: %d I/Os", p.Addr, p.Connected, p.ANAState, p.IOs)
		if p.LastErr != nil {
			fmt.Fprintf(&b, ", last error %v", p.LastErr)
		}
		b.WriteString("] ")
	}
	st := m.Stats()
	fmt.Fprintf(&b, "retries %d, connects %d, failed connects %d", st.Retries, st.Connects, st.ConnectFailures)
	return b.String()
}

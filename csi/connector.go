package csi

import (
	"context"
	"os/exec"
	"strings"
)

// Target is one volume to attach: its exporter and every controller's
// listener (from the publish context), and this node's host NQN.
type Target struct {
	VolumeID  string
	NQN       string     // the exporter's subsystem NQN
	Listeners []Listener // empty in Disconnect
	HostNQN   string
}

// Connector attaches a volume's namespace to this node as a block device.
// Both calls are idempotent: Connect of an attached target returns its
// device; Disconnect of a detached one succeeds.
type Connector interface {
	// Connect attaches every path of t and returns the block device.
	Connect(ctx context.Context, t Target) (device string, err error)
	// Disconnect detaches t's paths (only this volume's).
	Disconnect(ctx context.Context, t Target) error
}

// Resizer is a Connector that must be told when a volume grew (an NVMe
// host learns it from the target by itself).
type Resizer interface {
	Resize(ctx context.Context, t Target) error
}

// Runner runs a command and returns its standard output; an error
// carries the standard error.
type Runner func(ctx context.Context, name string, args ...string) ([]byte, error)

// execRunner runs commands on this machine.
func execRunner(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, &cmdError{cmd: name + " " + strings.Join(args, " "), err: err, stderr: strings.TrimSpace(stderr.String())}
	}
	return out, nil
}

type cmdError struct {
	cmd, stderr string
	err         error
}

func (e *cmdError) Error() string { return e.cmd + ": " + e.err.Error() + ": " + e.stderr }
func (e *cmdError) Unwrap() error { return e.err }

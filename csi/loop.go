package csi

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// LoopConnector stands in for NVMe/TCP where the kernel has no initiator
// (tests, development): each volume is a sparse file in Dir attached as a
// loop device, so formatting and mounting are real. The data stays in the
// file across Disconnect.
type LoopConnector struct {
	Dir string
	// Size returns the volume's size in bytes (the test asks the portal).
	Size func(ctx context.Context, volumeID string) (int64, error)
	Run  Runner // execRunner if nil

	mu sync.Mutex
}

func (l *LoopConnector) run(ctx context.Context, args ...string) ([]byte, error) {
	if l.Run != nil {
		return l.Run(ctx, "losetup", args...)
	}
	return execRunner(ctx, "losetup", args...)
}

func (l *LoopConnector) file(t Target) string { return filepath.Join(l.Dir, t.VolumeID+".img") }

// attached is the loop devices over t's file.
func (l *LoopConnector) attached(ctx context.Context, t Target) ([]string, error) {
	out, err := l.run(ctx, "-n", "-O", "NAME", "-j", l.file(t))
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(out)), nil
}

// Connect creates the file (the volume's size) and attaches it.
func (l *LoopConnector) Connect(ctx context.Context, t Target) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	size, err := l.Size(ctx, t.VolumeID)
	if err != nil {
		return "", err
	}
	f, err := os.OpenFile(l.file(t), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return "", err
	}
	st, err := f.Stat()
	if err == nil && st.Size() < size {
		err = f.Truncate(size)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", err
	}
	devs, err := l.attached(ctx, t)
	if err != nil {
		return "", err
	}
	if len(devs) > 0 {
		return devs[0], nil
	}
	out, err := l.run(ctx, "-f", "--show", l.file(t))
	if err != nil {
		return "", err
	}
	dev := strings.TrimSpace(string(out))
	if dev == "" {
		return "", errors.New("losetup printed no device")
	}
	return dev, nil
}

// Disconnect detaches every loop device over t's file.
func (l *LoopConnector) Disconnect(ctx context.Context, t Target) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := os.Stat(l.file(t)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	devs, err := l.attached(ctx, t)
	if err != nil {
		return err
	}
	for _, d := range devs {
		if _, err := l.run(ctx, "-d", d); err != nil {
			return err
		}
	}
	return nil
}

// Resize grows the file to the volume's size and tells the loop device.
func (l *LoopConnector) Resize(ctx context.Context, t Target) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	size, err := l.Size(ctx, t.VolumeID)
	if err != nil {
		return err
	}
	st, err := os.Stat(l.file(t))
	if err != nil {
		return fmt.Errorf("volume %s is not attached: %w", t.VolumeID, err)
	}
	if st.Size() < size {
		if err := os.Truncate(l.file(t), size); err != nil {
			return err
		}
	}
	devs, err := l.attached(ctx, t)
	if err != nil {
		return err
	}
	for _, d := range devs {
		if _, err := l.run(ctx, "-c", d); err != nil {
			return err
		}
	}
	return nil
}

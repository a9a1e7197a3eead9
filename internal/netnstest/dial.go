package netnstest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// DialContext opens a connection from inside h's namespace without leaving
// the test process, as if a program on h had dialled: the socket is
// created on a thread switched into the namespace, which switches back
// before it is released. addr must be an IP address and port (a name would
// be resolved on other threads, outside the namespace). Its signature is
// net.Dialer's, so it can be passed wherever a dial function is taken.
func (h *Host) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("netnstest: dial %s from %s: %w", addr, h.Name, err)
	}
	if _, err := netip.ParseAddr(host); err != nil {
		return nil, fmt.Errorf("netnstest: dial %s from %s: want an IP address, not a name", addr, h.Name)
	}
	var conn net.Conn
	err = h.inNamespace(func() error {
		var d net.Dialer
		var err error
		conn, err = d.DialContext(ctx, network, addr)
		return err
	})
	if err != nil {
		if conn != nil {
			_ = conn.Close()
		}
		return nil, fmt.Errorf("netnstest: dial %s from %s: %w", addr, h.Name, err)
	}
	return conn, nil
}

// inNamespace runs f on this goroutine's thread switched into h's network
// namespace. If the thread cannot be switched back, it stays locked to the
// goroutine, so the runtime ends it when the goroutine exits instead of
// reusing a thread in the wrong namespace.
func (h *Host) inNamespace(f func() error) error {
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	target, err := os.Open(nsPath(h.NS))
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter namespace %s: %w", h.NS, err)
	}
	ferr := f()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		return errors.Join(ferr, fmt.Errorf("return from namespace %s: %w", h.NS, err))
	}
	runtime.UnlockOSThread()
	return ferr
}

// nsPath is where ip netns keeps a namespace's handle.
func nsPath(ns string) string {
	for _, dir := range []string{"/run/netns", "/var/run/netns"} {
		p := filepath.Join(dir, ns)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return filepath.Join("/run/netns", ns)
}

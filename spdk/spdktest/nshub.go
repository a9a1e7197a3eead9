package spdktest

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/vda-io/vda/spdk/spdktest/blockdev"
	"github.com/vda-io/vda/spdk/spdktest/fabric"
)

// The fabric carries no "namespace removed" event, so fakes in one process
// tell each other through this hub: a host controller registers its paths,
// and a target that drops a namespace notifies the hosts connected through
// its listeners. Across processes the host's bdev stays, but its I/O fails
// (see nsDevice).

type nsHubKey struct{ addr, port, subNQN string }

var nsHub = struct {
	mu   sync.Mutex
	subs map[nsHubKey]map[*nvmeCtrlr]func(nsid uint32)
	keys map[*nvmeCtrlr][]nsHubKey // what each controller registered
}{subs: map[nsHubKey]map[*nvmeCtrlr]func(uint32){}, keys: map[*nvmeCtrlr][]nsHubKey{}}

func hubRegister(trid fabric.TransportID, subNQN string, c *nvmeCtrlr, f func(uint32)) {
	k := nsHubKey{trid.TrAddr, trid.TrSvcID, subNQN}
	nsHub.mu.Lock()
	defer nsHub.mu.Unlock()
	if nsHub.subs[k] == nil {
		nsHub.subs[k] = map[*nvmeCtrlr]func(uint32){}
	}
	nsHub.subs[k][c] = f
	nsHub.keys[c] = append(nsHub.keys[c], k)
}

func hubUnregister(c *nvmeCtrlr) {
	nsHub.mu.Lock()
	defer nsHub.mu.Unlock()
	for _, k := range nsHub.keys[c] {
		if m := nsHub.subs[k]; m != nil {
			delete(m, c)
			if len(m) == 0 {
				delete(nsHub.subs, k)
			}
		}
	}
	delete(nsHub.keys, c)
}

// hubNotify runs the callbacks in their own goroutines: they take the host
// fake's lock, and the caller holds the target fake's.
func hubNotify(subNQN string, listeners []*listener, nsid uint32) {
	nsHub.mu.Lock()
	var fs []func(uint32)
	for _, l := range listeners {
		for _, f := range nsHub.subs[nsHubKey{l.trid.TrAddr, l.trid.TrSvcID, subNQN}] {
			fs = append(fs, f)
		}
	}
	nsHub.mu.Unlock()
	for _, f := range fs {
		go f(nsid)
	}
}

var errNamespaceGone = errors.New("spdktest: namespace removed")

// nsDevice is what a namespace serves over the fabric: once the namespace is
// removed (or its bdev deleted) connected hosts can no longer reach the
// bytes.
type nsDevice struct {
	dev     blockdev.Device
	removed *atomic.Bool
}

func (d nsDevice) BlockSize() uint32 { return d.dev.BlockSize() }
func (d nsDevice) NumBlocks() uint64 { return d.dev.NumBlocks() }

func (d nsDevice) ReadAt(p []byte, off int64) (int, error) {
	if d.removed.Load() {
		return 0, errNamespaceGone
	}
	return d.dev.ReadAt(p, off)
}

func (d nsDevice) WriteAt(p []byte, off int64) (int, error) {
	if d.removed.Load() {
		return 0, errNamespaceGone
	}
	return d.dev.WriteAt(p, off)
}

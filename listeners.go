package vda

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/store"
)

// listenerMemo holds the listener configurations a Cluster parsed, by
// their stored text: describing an exporter's ports reads the listener of
// each of its controllers' nodes, a cluster has few, and parsing one
// (strict JSON, validated) cost more than reading the node's record.
type listenerMemo struct {
	mu sync.Mutex
	m  map[string]nvmeof.TransportID
}

// listenerMemoMax bounds the memo; past it, it starts again.
const listenerMemoMax = 4096

// parse returns text parsed as TransportID.UnmarshalText does.
func (l *listenerMemo) parse(text string) (nvmeof.TransportID, error) {
	l.mu.Lock()
	t, ok := l.m[text]
	l.mu.Unlock()
	if ok {
		return t, nil
	}
	if err := t.UnmarshalText([]byte(text)); err != nil {
		return nvmeof.TransportID{}, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil || len(l.m) >= listenerMemoMax {
		l.m = map[string]nvmeof.TransportID{}
	}
	l.m[text] = t
	return t, nil
}

// cnListener reads the listener of controller node name from its spec,
// decoded as getSpecJSON decodes the spec (any field that does not decode
// fails it) but with the listener parsed through the memo.
func (c *Cluster) cnListener(ctx context.Context, name string) (nvmeof.TransportID, error) {
	key := KeyCN(name)
	kv, err := c.s.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return nvmeof.TransportID{}, fmt.Errorf("%w: controller node %q", ErrNotFound, name)
	}
	if err != nil {
		return nvmeof.TransportID{}, err
	}
	var spec struct {
		ControllerNode
		Listener string `json:"listener_conf"` // shadows ControllerNode's
	}
	if err := json.Unmarshal(kv.Value, &spec); err != nil {
		return nvmeof.TransportID{}, fmt.Errorf("vda: decode %s: %w", key, err)
	}
	t, err := c.listeners.parse(spec.Listener)
	if err != nil {
		return nvmeof.TransportID{}, fmt.Errorf("vda: decode %s: %w", key, err)
	}
	return t, nil
}

package spdktest

import (
	"crypto/sha1"
	"encoding/json"
	"sort"
	"sync/atomic"
)

func init() {
	register("bdev_passthru_create", phaseRuntime, passthruCreate)
	register("bdev_passthru_delete", phaseRuntime, passthruDelete)
}

// passthruNamespace is BDEV_PASSTHRU_NAMESPACE_UUID: passthru bdevs get the
// v5 uuid of their base bdev's uuid in this namespace.
var passthruNamespace = []byte{0x7e, 0x25, 0x81, 0x2e, 0xc8, 0xc0, 0x4d, 0x3f, 0x85, 0x99, 0x16, 0xd7, 0x90, 0x55, 0x5b, 0x85}

// passthruCfg survives its bdev: SPDK keeps the name association and
// re-creates the passthru when a base of that name appears.
type passthruCfg struct {
	name string
	base string
	seq  uint64 // creation order: SPDK keeps the associations in a list
	bdev *bdev
}

func uuidV5(ns, data []byte) string {
	h := sha1.New()
	h.Write(ns)
	h.Write(data)
	sum := h.Sum(nil)[:16]
	sum[6] = sum[6]&0x0f | 0x50
	sum[8] = sum[8]&0x3f | 0x80
	return formatUUID(sum)
}

func passthruCreate(s *state, params json.RawMessage) (any, *Error) {
	var p struct {
		Name     string `json:"name"`
		BaseName string `json:"base_bdev_name"`
		UUID     string `json:"uuid"`
	}
	if err := decodeParams(params, &p, "name", "base_bdev_name"); err != nil {
		return nil, err
	}
	if raw := uuidParam(params); raw != nil {
		// spdk_json_decode_uuid: the 36-character form only ("" too fails).
		if _, ok := parseUUID(*raw); !ok || !isDashedUUID(*raw) {
			return nil, errDecode
		}
	}
	if _, ok := s.passthrus[p.Name]; ok {
		return nil, errExists
	}
	// v24.01 keeps the association even when the passthru cannot be
	// created now, and ignores the requested uuid: the bdev's is always
	// derived from its base's (vbdev_passthru_register overwrites it).
	cfg := &passthruCfg{name: p.Name, base: p.BaseName, seq: passthruSeq.Add(1)}
	s.passthrus[p.Name] = cfg
	if base := s.lookup(p.BaseName); base != nil {
		if rerr := s.passthruAttach(cfg, base); rerr != nil {
			return nil, rerr
		}
	}
	return p.Name, nil
}

// passthruAttach creates cfg's bdev on base.
func (s *state) passthruAttach(cfg *passthruCfg, base *bdev) *Error {
	if base.claim != "" {
		return errPerm
	}
	raw, _ := parseUUID(base.uuid)
	uuid := uuidV5(passthruNamespace, raw)
	b := &bdev{
		name: cfg.name, uuid: uuid, aliases: []string{uuid}, product: "passthru",
		blockSize: base.blockSize, numBlocks: base.numBlocks, io: base.io, memDomains: base.memDomains,
		dev: base.device(),
		md:  base.md, optimalIOBoundary: base.optimalIOBoundary,
	}
	// vbdev_passthru_io_type_supported asks the base for every type.
	ds := obj{{"passthru", obj{{"name", cfg.name}, {"base_bdev_name", base.name}}}}
	b.driver = func() any { return ds }
	claimBdev(base, claimExclusiveWrite, "passthru")
	if rerr := s.registerBdev(b); rerr != nil {
		// The error path of vbdev_passthru_register releases the wrong
		// bdev and unregisters an io_device still in use: v24.01 dies
		// (recorded on a name clash).
		s.crash("vbdev_passthru_register: could not register pt_bdev " + cfg.name + " (error path aborts)")
		return rerr
	}
	cfg.bdev = b
	return nil
}

func passthruDelete(s *state, params json.RawMessage) (any, *Error) {
	var p struct {
		Name string `json:"name"`
	}
	if err := decodeParams(params, &p, "name"); err != nil {
		return nil, err
	}
	var cfg *passthruCfg
	if b := s.lookup(p.Name); b != nil {
		for _, c := range s.passthrus {
			if c.bdev == b {
				cfg = c
			}
		}
	}
	if cfg == nil {
		// spdk_bdev_unregister_by_name finds no passthru bdev of that name.
		// A pending passthru is not cancelled: SPDK answers -19 and keeps it.
		return nil, errNoDevice
	}
	delete(s.passthrus, cfg.name)
	b := cfg.bdev
	cfg.bdev = nil
	s.unregisterBdev(b)
	if base := s.lookup(cfg.base); base != nil && base.claimedBy == "passthru" {
		releaseBdev(base)
	}
	return true, nil
}

// passthruBaseAppeared is vbdev_passthru_register for a new bdev: the
// associations waiting for it, in creation order, until one fails (the
// first takes the bdev, so a second fails to claim it and ends the walk).
func (s *state) passthruBaseAppeared(b *bdev) {
	for _, cfg := range s.passthruList() {
		if cfg.bdev == nil && (cfg.base == b.name || s.lookup(cfg.base) == b) {
			if s.passthruAttach(cfg, b) != nil {
				return
			}
		}
	}
}

var passthruSeq atomic.Uint64

// uuidParam returns the "uuid" member of params if it is there.
func uuidParam(params json.RawMessage) *string {
	var p struct {
		UUID *string `json:"uuid"`
	}
	if json.Unmarshal(params, &p) != nil {
		return nil
	}
	return p.UUID
}

func (s *state) passthruList() []*passthruCfg {
	out := make([]*passthruCfg, 0, len(s.passthrus))
	for _, c := range s.passthrus {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].seq < out[j].seq })
	return out
}

func (s *state) passthruBaseRemoved(b *bdev) {
	for _, cfg := range s.passthruList() {
		if cfg.bdev != nil && (cfg.base == b.name || s.lookup(cfg.base) == b) {
			pb := cfg.bdev
			cfg.bdev = nil
			s.unregisterBdev(pb)
		}
	}
}

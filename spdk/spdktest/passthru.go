package spdktest

import (
	"crypto/sha1"
	"encoding/json"
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
	uuid string // requested, or ""
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
	if _, ok := s.passthrus[p.Name]; ok {
		return nil, errExists
	}
	cfg := &passthruCfg{name: p.Name, base: p.BaseName}
	if p.UUID != "" {
		u, rerr := bdevUUID(p.UUID)
		if rerr != nil {
			return nil, rerr
		}
		cfg.uuid = u
	}
	if base := s.lookup(p.BaseName); base != nil {
		if rerr := s.passthruAttach(cfg, base); rerr != nil {
			return nil, rerr
		}
	}
	s.passthrus[p.Name] = cfg
	return p.Name, nil
}

// passthruAttach creates cfg's bdev on base.
func (s *state) passthruAttach(cfg *passthruCfg, base *bdev) *Error {
	if base.claim != "" {
		return errPerm
	}
	uuid := cfg.uuid
	if uuid == "" {
		raw, _ := parseUUID(base.uuid)
		uuid = uuidV5(passthruNamespace, raw)
	}
	b := &bdev{
		name: cfg.name, uuid: uuid, aliases: []string{uuid}, product: "passthru",
		blockSize: base.blockSize, numBlocks: base.numBlocks, io: base.io, memDomains: base.memDomains,
		dev: base.device(),
	}
	b.io.NvmeAdmin, b.io.NvmeIO, b.io.Compare, b.io.CompareAndWrite, b.io.Abort = false, false, false, false, false
	ds := obj{{"passthru", obj{{"name", cfg.name}, {"base_bdev_name", base.name}}}}
	b.driver = func() any { return ds }
	claimBdev(base, claimExclusiveWrite, "passthru")
	if rerr := s.registerBdev(b); rerr != nil {
		releaseBdev(base)
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
	cfg, ok := s.passthrus[p.Name]
	if !ok || cfg.bdev == nil {
		// A pending passthru is not cancelled: SPDK answers -19 and keeps it.
		return nil, errNoDevice
	}
	delete(s.passthrus, p.Name)
	b := cfg.bdev
	cfg.bdev = nil
	s.unregisterBdev(b)
	if base := s.lookup(cfg.base); base != nil && base.claimedBy == "passthru" {
		releaseBdev(base)
	}
	return true, nil
}

func (s *state) passthruBaseAppeared(b *bdev) {
	for _, cfg := range s.passthrus {
		if cfg.bdev == nil && (cfg.base == b.name || s.lookup(cfg.base) == b) {
			_ = s.passthruAttach(cfg, b)
		}
	}
}

func (s *state) passthruBaseRemoved(b *bdev) {
	for _, cfg := range s.passthrus {
		if cfg.bdev != nil && (cfg.base == b.name || s.lookup(cfg.base) == b) {
			pb := cfg.bdev
			cfg.bdev = nil
			s.unregisterBdev(pb)
		}
	}
}

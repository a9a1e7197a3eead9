package spdktest

import (
	"encoding/json"
	"fmt"
	"math/bits"
	"strings"

	"github.com/vda-io/vda/spdk/spdktest/blockdev"
)

func init() {
	register("bdev_raid_create", phaseRuntime, raidCreate)
	register("bdev_raid_delete", phaseRuntime, raidDelete)
	register("bdev_raid_get_bdevs", phaseRuntime, raidGetBdevs)
}

const zeroUUID = "00000000-0000-0000-0000-000000000000"

type raidMember struct {
	name       string
	b          *bdev
	configured bool
	removed    bool
	dataSize   uint64
}

type raid struct {
	name      string
	level     string
	stripKB   uint32
	uuid      string // requested uuid, or "" for a random one at each start
	superblk  bool
	members   []*raidMember
	state     string
	bdev      *bdev
	liveUUID  string
	dataSize  uint64
	operating int
}

type raidBaseJSON struct {
	Name         *string `json:"name"`
	UUID         string  `json:"uuid"`
	IsConfigured bool    `json:"is_configured"`
	DataOffset   uint64  `json:"data_offset"`
	DataSize     uint64  `json:"data_size"`
}

type raidJSON struct {
	Name        string         `json:"name,omitempty"`
	UUID        string         `json:"uuid"`
	StripSizeKB uint32         `json:"strip_size_kb"`
	State       string         `json:"state"`
	RaidLevel   string         `json:"raid_level"`
	Superblock  bool           `json:"superblock"`
	NumBase     int            `json:"num_base_bdevs"`
	Discovered  int            `json:"num_base_bdevs_discovered"`
	Operational int            `json:"num_base_bdevs_operational"`
	BaseList    []raidBaseJSON `json:"base_bdevs_list"`
}

func (r *raid) json(withName bool) raidJSON {
	j := raidJSON{
		UUID: zeroUUID, StripSizeKB: r.stripKB, State: r.state, RaidLevel: r.level,
		Superblock: r.superblk, NumBase: len(r.members), BaseList: []raidBaseJSON{},
	}
	if withName {
		j.Name = r.name
	}
	if r.liveUUID != "" {
		j.UUID = r.liveUUID
	}
	for _, m := range r.members {
		e := raidBaseJSON{UUID: zeroUUID, DataSize: m.dataSize}
		if !m.removed {
			name := m.name
			e.Name = &name
		}
		if m.configured {
			j.Discovered++
			e.IsConfigured = true
			e.UUID = m.b.uuid
		}
		if !m.removed {
			j.Operational++
		}
		j.BaseList = append(j.BaseList, e)
	}
	return j
}

var raidLevels = map[string]string{"raid0": "raid0", "0": "raid0", "raid1": "raid1", "1": "raid1", "concat": "concat"}

func raidFail(name string, e *Error) *Error {
	return rpcErr(e.Code, "Failed to create RAID bdev "+name+": "+e.Message)
}

func raidCreate(s *state, params json.RawMessage) (any, *Error) {
	var p struct {
		Name       string   `json:"name"`
		RaidLevel  string   `json:"raid_level"`
		BaseBdevs  []string `json:"base_bdevs"`
		StripKB    uint32   `json:"strip_size_kb"`
		StripSize  uint32   `json:"strip_size"`
		UUID       string   `json:"uuid"`
		Superblock bool     `json:"superblock"`
	}
	if err := decodeParams(params, &p, "name", "raid_level", "base_bdevs"); err != nil {
		return nil, rpcErr(codeParseError, err.Message)
	}
	level, ok := raidLevels[strings.ToLower(p.RaidLevel)]
	if !ok {
		return nil, rpcErr(codeParseError, errDecode.Message)
	}
	if len(p.BaseBdevs) == 0 {
		return nil, raidFail(p.Name, errInval)
	}
	if level == "raid1" && p.StripKB != 0 {
		return nil, raidFail(p.Name, errInval)
	}
	if level != "raid1" && (p.StripKB == 0 || bits.OnesCount32(p.StripKB) != 1) {
		return nil, raidFail(p.Name, errInval)
	}
	if s.findRaid(p.Name) != nil || s.lookup(p.Name) != nil {
		return nil, raidFail(p.Name, errExists)
	}
	for _, n := range p.BaseBdevs {
		if b := s.lookup(n); b != nil && b.claim != "" {
			return nil, raidFail(p.Name, errPerm)
		}
	}
	r := &raid{name: p.Name, level: level, stripKB: p.StripKB, superblk: p.Superblock, state: "configuring"}
	if p.UUID != "" {
		u, rerr := bdevUUID(p.UUID)
		if rerr != nil {
			return nil, raidFail(p.Name, rerr)
		}
		r.uuid = u
	}
	for _, n := range p.BaseBdevs {
		r.members = append(r.members, &raidMember{name: n})
	}
	s.raids = append(s.raids, r)
	for _, m := range r.members {
		if b := s.lookup(m.name); b != nil {
			r.configure(m, b)
		}
	}
	if rerr := s.raidTryOnline(r); rerr != nil {
		return nil, raidFail(p.Name, rerr)
	}
	return true, nil
}

func (r *raid) configure(m *raidMember, b *bdev) {
	m.b = b
	m.configured = true
	m.dataSize = b.numBlocks
	if r.stripKB > 0 {
		strip := uint64(r.stripKB) * 1024 / uint64(b.blockSize)
		m.dataSize = b.numBlocks / strip * strip
	}
	claimBdev(b, claimExclusiveWrite, "raid")
}

func (s *state) findRaid(name string) *raid {
	for _, r := range s.raids {
		if r.name == name {
			return r
		}
	}
	return nil
}

// raidTryOnline registers the raid bdev once every member is configured.
func (s *state) raidTryOnline(r *raid) *Error {
	if r.state != "configuring" {
		return nil
	}
	devs := make([]blockdev.Device, 0, len(r.members))
	minBlocks := uint64(0)
	for _, m := range r.members {
		if !m.configured {
			return nil
		}
		devs = append(devs, m.b.device())
		if minBlocks == 0 || m.b.numBlocks < minBlocks {
			minBlocks = m.b.numBlocks
		}
	}
	bs := r.members[0].b.blockSize
	stripBlocks := uint64(r.stripKB) * 1024 / uint64(bs)
	var dev blockdev.Device
	var err error
	switch r.level {
	case "raid0":
		dev, err = blockdev.NewRaid0(reblock(devs), r.stripKB)
		r.dataSize = minBlocks / stripBlocks * stripBlocks
	case "concat":
		dev, err = newConcat(devs, stripBlocks)
		r.dataSize = minBlocks / stripBlocks * stripBlocks
	default:
		dev, err = newMirror(devs)
		r.dataSize = minBlocks
	}
	if err != nil {
		return errInval
	}
	r.liveUUID = r.uuid
	if r.liveUUID == "" {
		r.liveUUID = newUUID()
	}
	memDomains := 0
	for _, m := range r.members {
		if r.level != "concat" {
			m.dataSize = r.dataSize
		} else {
			m.dataSize = m.b.numBlocks / stripBlocks * stripBlocks
		}
		memDomains += m.b.memDomains
	}
	b := &bdev{
		name: r.name, uuid: r.liveUUID, aliases: []string{r.liveUUID}, product: "Raid Volume",
		blockSize: dev.BlockSize(), numBlocks: dev.NumBlocks(), io: ioRaid, dev: dev,
	}
	b.driver = func() any { return obj{{"raid", r.json(false)}} }
	b.memDomains = memDomains
	r.state = "online"
	r.bdev = b
	if rerr := s.registerBdev(b); rerr != nil {
		r.state = "configuring"
		r.bdev = nil
		r.liveUUID = ""
		return rerr
	}
	return nil
}

func (s *state) raidBaseAppeared(b *bdev) {
	for _, r := range s.raids {
		if r.state != "configuring" {
			continue
		}
		for _, m := range r.members {
			if !m.configured && !m.removed && (m.name == b.name || s.lookup(m.name) == b) && b.claim == "" {
				r.configure(m, b)
			}
		}
		_ = s.raidTryOnline(r)
	}
}

// raidBaseRemoved sends raids that lose a member offline and unregisters
// their bdev.
//
// A raid0 (or concat) that loses a member while I/O can reach it (its bdev
// is claimed: an lvstore is loaded on it) crashes the target. Real SPDK
// v24.01 starts unregistering the raid at the first lost member, frees the
// descriptor of every further lost member at once while the raid is still
// registered, and dies on the next I/O to it (from a host, or from the
// lvstore unload that the unregistration itself starts):
// "raid0_submit_rw_request: base bdev desc null for pd_idx N". Whether it
// survives is a race; the fake never lets a caller win it. The safe order
// is the reverse: nothing above the raid (bdev_raid_delete only once its
// namespaces are gone), then the members.
func (s *state) raidBaseRemoved(b *bdev) {
	for _, r := range s.raids {
		for i, m := range r.members {
			if m.b != b {
				continue
			}
			if r.state == "online" && r.level != "raid1" && r.bdev != nil && r.bdev.claim != "" {
				s.crash(fmt.Sprintf("raid0_submit_rw_request: base bdev desc null for pd_idx %d "+
					"(member %s of raid %s removed while %s was loaded on it)", i, m.name, r.name, r.bdev.claimedBy))
			}
			m.b, m.configured, m.removed = nil, false, true
			if r.state == "online" {
				r.state = "offline"
				if r.bdev != nil {
					rb := r.bdev
					r.bdev = nil
					s.unregisterBdev(rb)
				}
			}
		}
	}
}

func raidDelete(s *state, params json.RawMessage) (any, *Error) {
	var p struct {
		Name string `json:"name"`
	}
	if err := decodeParams(params, &p, "name"); err != nil {
		return nil, err
	}
	r := s.findRaid(p.Name)
	if r == nil {
		return nil, rpcErr(-19, "raid bdev "+p.Name+" not found")
	}
	for i, x := range s.raids {
		if x == r {
			s.raids = append(s.raids[:i:i], s.raids[i+1:]...)
			break
		}
	}
	if r.bdev != nil {
		rb := r.bdev
		r.bdev = nil
		s.unregisterBdev(rb)
	}
	for _, m := range r.members {
		if m.b != nil {
			releaseBdev(m.b)
		}
	}
	return true, nil
}

func raidGetBdevs(s *state, params json.RawMessage) (any, *Error) {
	var p struct {
		Category string `json:"category"`
	}
	if err := decodeParams(params, &p, "category"); err != nil {
		return nil, err
	}
	switch p.Category {
	case "all", "online", "configuring", "offline":
	default:
		return nil, errInval
	}
	out := []raidJSON{}
	for _, r := range s.raids {
		if p.Category == "all" || p.Category == r.state {
			out = append(out, r.json(true))
		}
	}
	return out, nil
}

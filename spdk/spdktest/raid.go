package spdktest

// The raid module, after SPDK v24.01's module/bdev/raid (bdev_raid.c,
// bdev_raid_rpc.c, raid0.c, raid1.c, concat.c, bdev_raid_sb.c). SPDK runs
// a raid's steps asynchronously (every new member's superblock is read
// before it counts as discovered, the superblock is written before the raid
// registers); the fake runs them in the same order, synchronously, which is
// what an idle SPDK shows between two RPCs. Consequences of that order the
// fake keeps:
//
//   - All members named in one bdev_raid_create are claimed before any of
//     them is discovered, so each sets the raid's block length and the last
//     one wins: members with different block sizes are accepted.
//   - A member that fails after others were claimed fails the create, which
//     then deletes the raid (-1 for a claimed or duplicate member, -17 for a
//     member that carries a superblock).
//   - A raid whose bdev cannot register (its name or uuid is taken, or its
//     name is empty) answers true and stays configuring with every member
//     discovered.

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/vda-io/vda/spdk/spdktest/blockdev"
)

func init() {
	register("bdev_raid_create", phaseRuntime, raidCreate)
	register("bdev_raid_delete", phaseRuntime, raidDelete)
	register("bdev_raid_get_bdevs", phaseRuntime, raidGetBdevs)
	register("bdev_raid_remove_base_bdev", phaseRuntime, raidRemoveBaseBdev)
	register("bdev_raid_add_base_bdev", phaseRuntime, raidAddBaseBdev)
}

const zeroUUID = "00000000-0000-0000-0000-000000000000"

// errParse is how the raid RPCs answer params they cannot decode.
var errParse = rpcErr(codeParseError, "spdk_json_decode_object failed")

// raidMaxBaseBdevs is RPC_MAX_BASE_BDEVS; raidNameSize RAID_BDEV_SB_NAME_SIZE;
// raidMinDataOffset RAID_BDEV_MIN_DATA_OFFSET_SIZE.
const (
	raidMaxBaseBdevs  = 255
	raidNameSize      = 64
	raidMinDataOffset = 1 << 20
)

// Errnos the raid module answers with.
const (
	eNoDev  = -19
	eInval  = -22
	eExist  = -17
	ePerm   = -1
	eBusy   = -16
	eAlrdy  = -114
	eNoSpc  = -28
	eNoMem  = -12
	eIOFail = -5
)

// raidMember is a raid_base_bdev_info: one slot of the raid.
type raidMember struct {
	name       string
	named      bool   // name is set (printed as null otherwise)
	uuid       string // "" is the null uuid
	b          *bdev  // the member's open, claimed descriptor; nil: none
	configured bool
	remove     bool // remove_scheduled
	dataOffset uint64
	dataSize   uint64
}

// raid is a raid_bdev: it exists from bdev_raid_create (or an examined
// superblock) to its deletion, registered as a bdev only while online.
type raid struct {
	name        string
	level       string // raid0, raid1, concat
	stripKB     uint32
	uuid        string  // the raid bdev's uuid; "" is the null uuid
	sb          *raidSB // the superblock, nil without one
	sbNew       bool    // sb is to be initialised at configure time
	members     []*raidMember
	state       string // online, configuring, offline
	discovered  int
	operational int
	minOper     int
	blocklen    uint32
	mdLen       uint32
	mdInterlv   bool
	numBlocks   uint64
	bdev        *bdev // registered while online
	// exposedUntil: the raid went offline while I/O could reach it (an
	// lvol on it exported); until then SPDK is still unregistering it.
	exposedUntil time.Time
}

// raidUnregisterWindow is how long the fake treats an exported raid as
// still unregistering after it went offline: SPDK's raid bdev stays
// registered until the export lets go of the lvols above it and the
// lvstore unloads.
const raidUnregisterWindow = 2 * time.Second

var raidLevels = map[string]string{"raid0": "raid0", "0": "raid0", "raid1": "raid1", "1": "raid1",
	"concat": "concat", "raid5f": "raid5f", "5f": "raid5f"}

// raidLevelOf is raid_bdev_str_to_level (case-insensitive).
func raidLevelOf(s string) (string, bool) {
	for k, v := range raidLevels {
		if equalFold(k, s) {
			return v, true
		}
	}
	return "", false
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// isDashedUUID reports whether s has the 8-4-4-4-12 form spdk_uuid_parse
// requires.
func isDashedUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for _, i := range []int{8, 13, 18, 23} {
		if s[i] != '-' {
			return false
		}
	}
	return true
}

func errnoErr(errno int) *Error { return rpcErr(errno, strerror(errno)) }

func strerror(errno int) string {
	switch errno {
	case eNoDev:
		return "No such device"
	case eInval:
		return "Invalid argument"
	case eExist:
		return "File exists"
	case ePerm:
		return "Operation not permitted"
	case eBusy:
		return "Device or resource busy"
	case eAlrdy:
		return "Operation already in progress"
	case eNoSpc:
		return "No space left on device"
	case eNoMem:
		return "Cannot allocate memory"
	case eIOFail:
		return "Input/output error"
	}
	return fmt.Sprintf("Unknown error %d", -errno)
}

// ---- JSON ----

func (r *raid) infoJSON() obj {
	o := obj{
		{"uuid", r.uuidOrZero()}, {"strip_size_kb", r.stripKB}, {"state", r.state},
		{"raid_level", r.level}, {"superblock", r.sb != nil}, {"num_base_bdevs", len(r.members)},
		{"num_base_bdevs_discovered", r.discovered}, {"num_base_bdevs_operational", r.operational},
	}
	list := make([]obj, 0, len(r.members))
	for _, m := range r.members {
		var name any
		if m.named {
			name = m.name
		}
		u := m.uuid
		if u == "" {
			u = zeroUUID
		}
		list = append(list, obj{{"name", name}, {"uuid", u}, {"is_configured", m.configured},
			{"data_offset", m.dataOffset}, {"data_size", m.dataSize}})
	}
	return append(o, kv{"base_bdevs_list", list})
}

// appendInfo appends the members of infoJSON's object (without its
// braces) as it encodes them: a controller node lists every raid twice
// on each sync (bdev_get_bdevs' driver part, bdev_raid_get_bdevs), and
// the tree of objects was most of that cost. TestRaidInfoAsObj holds the
// two to the same bytes.
func (r *raid) appendInfo(b []byte) []byte {
	b = appendStr(append(b, `"uuid":`...), r.uuidOrZero())
	b = strconv.AppendUint(append(b, `,"strip_size_kb":`...), uint64(r.stripKB), 10)
	b = appendStr(append(b, `,"state":`...), r.state)
	b = appendStr(append(b, `,"raid_level":`...), r.level)
	b = strconv.AppendBool(append(b, `,"superblock":`...), r.sb != nil)
	b = strconv.AppendInt(append(b, `,"num_base_bdevs":`...), int64(len(r.members)), 10)
	b = strconv.AppendInt(append(b, `,"num_base_bdevs_discovered":`...), int64(r.discovered), 10)
	b = strconv.AppendInt(append(b, `,"num_base_bdevs_operational":`...), int64(r.operational), 10)
	b = append(b, `,"base_bdevs_list":[`...)
	for i, m := range r.members {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		if m.named {
			b = appendStr(b, m.name)
		} else {
			b = append(b, "null"...)
		}
		u := m.uuid
		if u == "" {
			u = zeroUUID
		}
		b = appendStr(append(b, `,"uuid":`...), u)
		b = strconv.AppendBool(append(b, `,"is_configured":`...), m.configured)
		b = strconv.AppendUint(append(b, `,"data_offset":`...), m.dataOffset, 10)
		b = strconv.AppendUint(append(b, `,"data_size":`...), m.dataSize, 10)
		b = append(b, '}')
	}
	return append(b, ']')
}

// raidDriverJSON is a raid bdev's driver_specific part, {"raid":{...}},
// appended in place (bdev.driverJSON).
type raidDriverJSON struct{ r *raid }

// MarshalJSON is appendJSON for encoding/json.
func (d raidDriverJSON) MarshalJSON() ([]byte, error) { return d.appendJSON(nil) }

func (d raidDriverJSON) appendJSON(b []byte) ([]byte, error) {
	return append(d.r.appendInfo(append(b, `{"raid":{`...)), "}}"...), nil
}

func (r *raid) uuidOrZero() string {
	if r.uuid == "" {
		return zeroUUID
	}
	return r.uuid
}

// ---- creation ----

// raidModule is what raid_bdev_module_find knows of a level: raid5f is
// not built into the recorded SPDK.
func raidModule(level string, n int) (minBase, minOper int, ok bool) {
	switch level {
	case "raid0", "concat":
		return 1, n, true
	case "raid1":
		return 2, 1, true
	}
	return 0, 0, false
}

// newRaid is _raid_bdev_create: the checks, then the raid in configuring.
func (s *state) newRaid(name string, stripKB uint32, n int, level string, superblock bool, uuid string) (*raid, int) {
	if len(name) >= raidNameSize {
		return nil, eInval
	}
	if s.findRaid(name) != nil {
		return nil, eExist
	}
	if level == "raid1" {
		if stripKB != 0 {
			return nil, eInval
		}
	} else if stripKB == 0 || stripKB&(stripKB-1) != 0 {
		return nil, eInval
	}
	minBase, minOper, ok := raidModule(level, n)
	if !ok || n < minBase || minOper == 0 || minOper > n {
		return nil, eInval
	}
	r := &raid{name: name, level: level, stripKB: stripKB, uuid: uuid, state: "configuring", minOper: minOper}
	for i := 0; i < n; i++ {
		r.members = append(r.members, &raidMember{})
	}
	if superblock {
		r.sb, r.sbNew = &raidSB{}, true
	}
	s.raids = append(s.raids, r)
	return r, 0
}

func raidCreate(s *state, params json.RawMessage) (any, *Error) {
	var p struct {
		Name       *string            `json:"name"`
		StripKB    uint32             `json:"strip_size_kb"`
		RaidLevel  *string            `json:"raid_level"`
		BaseBdevs  *[]json.RawMessage `json:"base_bdevs"`
		UUID       *string            `json:"uuid"`
		Superblock bool               `json:"superblock"`
	}
	if err := decodeParams(params, &p, "name", "raid_level", "base_bdevs"); err != nil {
		return nil, errParse
	}
	level, ok := raidLevelOf(*p.RaidLevel)
	if !ok || len(*p.BaseBdevs) > raidMaxBaseBdevs {
		return nil, errParse
	}
	bases := make([]string, 0, len(*p.BaseBdevs))
	for _, raw := range *p.BaseBdevs {
		var n string
		if firstByte(raw) != '"' || json.Unmarshal(raw, &n) != nil {
			return nil, errParse
		}
		bases = append(bases, n)
	}
	uuid := ""
	if p.UUID != nil {
		u, ok := parseUUID(*p.UUID)
		if !ok || !isDashedUUID(*p.UUID) {
			return nil, errParse
		}
		if uuid = formatUUID(u); uuid == zeroUUID {
			uuid = ""
		}
	}
	name := *p.Name
	fail := func(errno int) *Error {
		return rpcErr(errno, "Failed to create RAID bdev "+name+": "+strerror(errno))
	}
	r, errno := s.newRaid(name, p.StripKB, len(bases), level, p.Superblock, uuid)
	if errno != 0 {
		return nil, fail(errno)
	}
	if p.Superblock && r.uuid == "" {
		r.uuid = newUUID()
	}
	r.operational = len(bases)
	// Every member is opened and claimed first; their superblock reads
	// complete afterwards, in order. SPDK reads them in the background
	// (raid_bdev_load_base_bdev_superblock) and answers once the last one
	// completed, serving other requests meanwhile: the reads run without
	// the state lock (a raid over NVMe-oF members held it for two network
	// round trips, and every other request of the node waited).
	type sbRead struct {
		m     *raidMember
		b     *bdev
		found bool
	}
	var pending []sbRead
	status := 0
	for i, n := range bases {
		m := r.members[i]
		m.name, m.named = n, true
		rc := s.raidConfigureMember(r, m, false)
		if rc == eNoDev {
			continue
		}
		if rc != 0 {
			status = rc
			break
		}
		if m.b != nil {
			pending = append(pending, sbRead{m: m, b: m.b})
		}
	}
	if status != 0 {
		s.raidDelete(r)
		return nil, fail(status)
	}
	if len(pending) == 0 {
		return true, nil
	}
	return async(func() (any, *Error) {
		for i := range pending {
			_, pending[i].found = readRaidSB(pending[i].b)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if !slices.Contains(s.raids, r) {
			return nil, fail(eNoDev) // deleted meanwhile
		}
		status := 0
		for _, rd := range pending {
			if rd.m.b != rd.b {
				continue // freed meanwhile (the raid's delete, a hot remove)
			}
			if rc := s.raidMemberSB(r, rd.m, rd.found); rc != 0 {
				status = rc
			}
		}
		if status != 0 {
			s.raidDelete(r)
			return nil, fail(status)
		}
		return true, nil
	}), nil
}

// raidConfigureMember is raid_bdev_configure_base_bdev: it opens and claims
// the member's bdev (by uuid when the slot has one) and checks it against
// the raid. existing: the member is known from a superblock or a previous
// create (examine): it counts as discovered at once; otherwise its
// superblock is checked first (raidCheckMemberSB).
func (s *state) raidConfigureMember(r *raid, m *raidMember, existing bool) int {
	if m.uuid != "" {
		b := s.lookup(m.uuid)
		if b == nil {
			return eNoDev
		}
		if !m.named {
			m.name, m.named = b.name, true
		} else if m.name != b.name {
			return eInval
		}
	}
	b := s.lookup(m.name)
	if b == nil {
		return eNoDev
	}
	if m.uuid == "" {
		m.uuid = b.uuid
	} else if m.uuid != b.uuid {
		return eInval
	}
	if b.claim != "" {
		return ePerm
	}
	claimBdev(b, claimExclusiveWrite, "raid")
	m.b = b
	rc := 0
	if r.sb != nil {
		off := m.dataOffset
		if off == 0 {
			off = raidMinDataOffset / uint64(b.blockSize)
		}
		if b.optimalIOBoundary != 0 {
			o := uint64(b.optimalIOBoundary)
			rounded := (off + o - 1) / o * o
			if m.dataOffset == 0 || m.dataOffset == rounded {
				off = rounded
			}
		}
		m.dataOffset = off
	}
	switch {
	case m.dataOffset >= b.numBlocks:
		rc = eInval
	case m.dataSize == 0:
		m.dataSize = b.numBlocks - m.dataOffset
	case m.dataOffset+m.dataSize > b.numBlocks:
		rc = eInval
	}
	if rc == 0 && b.md.difType != 0 {
		rc = eInval
	}
	if rc == 0 {
		if r.discovered == 0 {
			r.blocklen, r.mdLen, r.mdInterlv = b.blockSize, b.md.size, b.md.interleave
		} else if r.blocklen != b.blockSize || r.mdLen != b.md.size || r.mdInterlv != b.md.interleave {
			rc = eInval
		}
	}
	if rc != 0 {
		r.freeMember(m)
		return rc
	}
	if existing {
		s.raidMemberDiscovered(r, m)
	}
	return 0
}

// raidCheckMemberSB is the end of raid_bdev_configure_base_bdev for a new
// member: a member that carries a raid superblock is refused (-17).
func (s *state) raidCheckMemberSB(r *raid, m *raidMember) int {
	if m.b == nil {
		return 0
	}
	_, found := readRaidSB(m.b)
	return s.raidMemberSB(r, m, found)
}

// raidMemberSB goes on with member m once its superblock was read: found,
// a member of a raid made without one carries a superblock (-EEXIST);
// otherwise it is discovered.
func (s *state) raidMemberSB(r *raid, m *raidMember, found bool) int {
	if found {
		r.freeMember(m)
		return eExist
	}
	return s.raidMemberDiscovered(r, m)
}

// raidMemberDiscovered is raid_bdev_configure_base_bdev_cont.
func (s *state) raidMemberDiscovered(r *raid, m *raidMember) int {
	m.configured = true
	r.discovered++
	switch {
	case r.discovered == r.operational:
		return s.raidConfigure(r)
	case r.discovered > r.operational:
		// A member added to an online raid1: SPDK rebuilds it in the
		// background; the fake copies at once.
		r.operational++
		s.raidRebuild(r, m)
		r.refresh()
	}
	return 0
}

// freeMember is raid_bdev_free_base_bdev_resource.
func (r *raid) freeMember(m *raidMember) {
	m.name, m.named = "", false
	if r.state != "configuring" {
		m.uuid = ""
	}
	if m.b == nil {
		return
	}
	releaseBdev(m.b)
	m.b = nil
	if m.configured {
		r.discovered--
		m.configured = false
	}
}

// raidConfigure is raid_bdev_configure: the module's start, the superblock,
// then the registration.
func (s *state) raidConfigure(r *raid) int {
	// strip_size_kb * 1024 is computed in 32 bits: 2^22 KiB and more wrap.
	stripBlocks := uint64(r.stripKB*1024) / uint64(r.blocklen)
	if stripBlocks == 0 && r.level != "raid1" {
		return eInval
	}
	switch r.level {
	case "raid0", "raid1":
		least := uint64(0)
		for i, m := range r.members {
			if i == 0 || m.dataSize < least {
				least = m.dataSize
			}
		}
		if r.level == "raid0" {
			least = least / stripBlocks * stripBlocks
		}
		for _, m := range r.members {
			m.dataSize = least
		}
		r.numBlocks = least
		if r.level == "raid0" {
			r.numBlocks = least * uint64(len(r.members))
		}
	case "concat":
		r.numBlocks = 0
		for _, m := range r.members {
			m.dataSize = m.dataSize / stripBlocks * stripBlocks
			r.numBlocks += m.dataSize
		}
	}
	if r.sb != nil {
		if r.sbNew {
			r.sbNew = false
			r.initSB(stripBlocks)
		} else if r.sb.blockSize != r.blocklen || r.sb.raidSize != r.numBlocks {
			return eInval
		}
		s.raidWriteSB(r)
	}
	s.raidRegister(r)
	return 0
}

// raidRegister is raid_bdev_configure_cont: online, then registered; a
// registration that fails leaves the raid configuring.
func (s *state) raidRegister(r *raid) {
	uuid := r.uuid
	if uuid == "" {
		uuid = newUUID()
	}
	b := &bdev{name: r.name, uuid: uuid, aliases: []string{uuid}, product: "Raid Volume", blockSize: r.blocklen,
		numBlocks: r.numBlocks, dev: r.device()}
	b.driver = func() any { return obj{{"raid", r.infoJSON()}} }
	b.driverJSON = raidDriverJSON{r}
	r.state = "online"
	r.bdev = b
	r.refresh()
	if r.name == "" || s.registerBdev(b) != nil {
		r.state = "configuring"
		r.bdev = nil
		return
	}
	r.uuid = uuid
}

// refresh recomputes what the raid bdev inherits from its open members.
func (r *raid) refresh() {
	if r.bdev == nil {
		return
	}
	io := ioTypes{Read: true, Write: true, WriteZeroes: true, Reset: true, Unmap: r.level != "raid1", Flush: r.level != "raid1"}
	domains := 0
	for _, m := range r.members {
		if m.b == nil {
			continue
		}
		io.Reset = io.Reset && m.b.io.Reset
		io.Unmap = io.Unmap && m.b.io.Unmap
		io.Flush = io.Flush && m.b.io.Flush
		domains += m.b.memDomains
	}
	r.bdev.io = io
	r.bdev.memDomains = domains
}

func (s *state) findRaid(name string) *raid {
	for _, r := range s.raids {
		if r.name == name {
			return r
		}
	}
	return nil
}

func (s *state) dropRaid(r *raid) {
	for i, x := range s.raids {
		if x == r {
			s.raids = append(s.raids[:i:i], s.raids[i+1:]...)
			return
		}
	}
}

// ---- deletion and lost members ----

// raidDelete is raid_bdev_delete.
func (s *state) raidDelete(r *raid) {
	for _, m := range r.members {
		m.remove = true
		if r.state != "online" {
			r.freeMember(m)
		}
	}
	if r.discovered == 0 {
		s.dropRaid(r)
		return
	}
	s.raidDeconfigure(r)
}

// raidDeconfigure takes an online raid offline and unregisters its bdev;
// its destruct closes the members scheduled for removal, and frees the raid
// once none is left.
func (s *state) raidDeconfigure(r *raid) {
	if r.state != "online" {
		return
	}
	r.state = "offline"
	if rb := r.bdev; rb != nil {
		if s.raidExported(rb) {
			r.exposedUntil = time.Now().Add(raidUnregisterWindow)
		}
		r.bdev = nil
		s.unregisterBdev(rb)
	}
	for _, m := range r.members {
		if m.remove {
			r.freeMember(m)
		}
	}
	if r.discovered == 0 {
		s.dropRaid(r)
	}
}

// raidMemberOf finds the slot whose open descriptor is b.
func (s *state) raidMemberOf(b *bdev) (*raid, *raidMember) {
	for _, r := range s.raids {
		for _, m := range r.members {
			if m.b == b {
				return r, m
			}
		}
	}
	return nil, nil
}

// raidLoseMember is _raid_bdev_remove_base_bdev. It reports false when
// SPDK never completes the removal (the raid was not online and is freed
// with the callback still pending: an RPC waiting for it never answers).
//
// Real SPDK v24.01 survives a raid0 or concat losing members under an idle
// lvstore, one or several, back to back or apart (recorded: the raid goes
// offline, the lvstore unloads). The first lost member starts the raid's
// unregistration and keeps its descriptor until then; a further lost
// member's descriptor is freed at once, and I/O that still reaches the
// raid meanwhile dereferences it ("raid0_submit_rw_request: base bdev desc
// null for pd_idx N") and kills the process. That I/O comes from hosts
// through an export of an lvol on the raid, which holds the lvol (and so
// the raid) open: the fake crashes when a further member of an exported
// raid0 or concat goes within raidUnregisterWindow of the first.
func (s *state) raidLoseMember(r *raid, m *raidMember) bool {
	if m.remove {
		return true
	}
	m.remove = true
	switch {
	case r.state != "online":
		if r.level != "raid1" && m.configured && time.Now().Before(r.exposedUntil) {
			s.crash(fmt.Sprintf("raid0_submit_rw_request: base bdev desc null for pd_idx %d "+
				"(member %s of raid %s lost while the raid, exported through an lvol, was unregistering)", r.slot(m), m.name, r.name))
		}
		r.freeMember(m)
		if r.discovered == 0 {
			s.dropRaid(r)
		}
		return false
	case r.operational == r.minOper:
		r.operational--
		s.raidDeconfigure(r)
	default:
		r.operational--
		slot := r.slot(m)
		r.freeMember(m)
		m.remove = false
		if r.sb != nil {
			for i := range r.sb.bases {
				if sbb := &r.sb.bases[i]; sbb.state == sbConfigured && int(sbb.slot) == slot {
					sbb.state = sbFailed
					s.raidWriteSB(r)
					break
				}
			}
		}
		r.refresh()
		if r.bdev != nil {
			r.bdev.dev = r.device()
		}
	}
	return true
}

// raidExported reports whether an lvol of an lvstore on rb is a namespace
// of a subsystem: host I/O can reach the raid.
func (s *state) raidExported(rb *bdev) bool {
	for _, l := range s.lvstores {
		if l.base != rb {
			continue
		}
		for _, ss := range s.subsystems {
			for _, ns := range ss.namespaces {
				if ns == nil || ns.removed.Load() {
					continue
				}
				if _, ok := l.lvols[ns.b]; ok {
					return true
				}
			}
		}
	}
	return false
}

func (r *raid) slot(m *raidMember) int {
	for i, x := range r.members {
		if x == m {
			return i
		}
	}
	return -1
}

// raidBaseRemoved runs when a bdev is hot-removed: the raid that holds it
// loses that member.
func (s *state) raidBaseRemoved(b *bdev) {
	if r, m := s.raidMemberOf(b); r != nil {
		s.raidLoseMember(r, m)
	}
}

func raidDelete(s *state, params json.RawMessage) (any, *Error) {
	var p struct {
		Name *string `json:"name"`
	}
	if err := decodeParams(params, &p, "name"); err != nil {
		return nil, errParse
	}
	r := s.findRaid(*p.Name)
	if r == nil {
		return nil, rpcErr(eNoDev, "raid bdev "+*p.Name+" not found")
	}
	s.raidDelete(r)
	return true, nil
}

func raidGetBdevs(s *state, params json.RawMessage) (any, *Error) {
	var p struct {
		Category *string `json:"category"`
	}
	if err := decodeParams(params, &p, "category"); err != nil {
		return nil, errParse
	}
	want := ""
	for _, st := range []string{"online", "configuring", "offline"} {
		if equalFold(st, *p.Category) {
			want = st
		}
	}
	if want == "" && *p.Category != "all" {
		return nil, errnoErr(eInval)
	}
	out := newRawResult(384 * len(s.raids))
	out.b = append(out.b, '[')
	first := true
	for _, r := range s.raids {
		if want == "" || r.state == want {
			if !first {
				out.b = append(out.b, ',')
			}
			first = false
			// SPDK writes the uuid twice: once itself, once in the info.
			out.b = appendStr(append(out.b, `{"name":`...), r.name)
			out.b = appendStr(append(out.b, `,"uuid":`...), r.uuidOrZero())
			out.b = append(r.appendInfo(append(out.b, ',')), '}')
		}
	}
	out.b = append(out.b, ']')
	return out, nil
}

func raidRemoveBaseBdev(s *state, params json.RawMessage) (any, *Error) {
	var p struct {
		Name *string `json:"name"`
	}
	if err := decodeParams(params, &p, "name"); err != nil {
		return nil, errParse
	}
	failed := rpcErr(eNoDev, "Failed to remove base bdev from raid bdev")
	b := s.lookup(*p.Name)
	if b == nil {
		return nil, failed
	}
	r, m := s.raidMemberOf(b)
	if r == nil || m.remove {
		return nil, failed
	}
	if !s.raidLoseMember(r, m) {
		// The raid was not online: SPDK frees the slot and never answers.
		done := s.in.done
		return async(func() (any, *Error) {
			<-done
			return nil, failed
		}), nil
	}
	return true, nil
}

func raidAddBaseBdev(s *state, params json.RawMessage) (any, *Error) {
	var p struct {
		BaseBdev *string `json:"base_bdev"`
		RaidBdev *string `json:"raid_bdev"`
	}
	if err := decodeParams(params, &p, "base_bdev", "raid_bdev"); err != nil {
		return nil, err
	}
	r := s.findRaid(*p.RaidBdev)
	if r == nil {
		return nil, rpcErr(eNoDev, "raid bdev "+*p.RaidBdev+" is not found in config")
	}
	b := s.lookup(*p.BaseBdev)
	if b == nil {
		return nil, rpcErr(eNoDev, "Failed to open bdev "+*p.BaseBdev+": "+strerror(eNoDev))
	}
	attachFail := func(errno int) *Error {
		return rpcErr(errno, "Failed to attach base bdev "+b.name+" to RAID bdev "+r.name+": "+strerror(errno))
	}
	if r.state != "online" {
		return nil, attachFail(eInval)
	}
	var m *raidMember
	for _, x := range r.members {
		if x.b == nil {
			m = x
			break
		}
	}
	if m == nil {
		return nil, attachFail(eInval)
	}
	if m.named || m.uuid != "" {
		rc := eBusy
		r.freeMember(m)
		return nil, attachFail(rc)
	}
	m.name, m.named = b.name, true
	if rc := s.raidConfigureMember(r, m, false); rc != 0 {
		r.freeMember(m)
		return nil, attachFail(rc)
	}
	if rc := s.raidCheckMemberSB(r, m); rc != 0 {
		return nil, rpcErr(rc, "Failed to add base bdev to RAID bdev: "+strerror(rc))
	}
	return true, nil
}

// raidRebuild copies the raid1's data onto a new member.
func (s *state) raidRebuild(r *raid, to *raidMember) {
	var from *raidMember
	for _, m := range r.members {
		if m != to && m.configured {
			from = m
			break
		}
	}
	if from == nil || r.bdev == nil {
		if r.bdev != nil {
			r.bdev.dev = r.device()
		}
		return
	}
	src, dst := memberWindow(from, r.blocklen), memberWindow(to, r.blocklen)
	buf := make([]byte, 1<<20)
	total := int64(r.numBlocks) * int64(r.blocklen)
	for off := int64(0); off < total; off += int64(len(buf)) {
		n := min(int64(len(buf)), total-off)
		if k, err := src.ReadAt(buf[:n], off); err != nil || int64(k) != n {
			break
		}
		if _, err := dst.WriteAt(buf[:n], off); err != nil {
			break
		}
	}
	r.bdev.dev = r.device()
}

// ---- examine ----

// raidBaseAppeared is raid_bdev_examine for a new bdev nothing claimed: a
// raid superblock on it assembles (or completes) its raid, otherwise a
// configuring raid waiting for a member of that name takes it.
//
// Like every examine_disk, it runs only for a bdev SPDK examines: with
// bdev_auto_examine on, or after bdev_examine named it.
func (s *state) raidBaseAppeared(b *bdev) {
	if b.claim != "" || !(s.autoExamine || s.examined[b.name]) {
		return
	}
	if b.md.difType == 0 {
		if sb, ok := readRaidSB(b); ok {
			s.raidExamineSB(sb, b)
			return
		}
	}
	for _, r := range append([]*raid(nil), s.raids...) {
		for _, m := range r.members {
			if m.b == nil && m.named && m.name == b.name {
				s.raidConfigureMember(r, m, true)
				break
			}
		}
	}
}

// raidExamineSB is raid_bdev_examine_sb.
func (s *state) raidExamineSB(sb *raidSB, b *bdev) {
	if sb.blockSize != b.blockSize || sb.uuid == zeroUUID {
		return
	}
	var r *raid
	for _, x := range s.raids {
		if x.uuid == sb.uuid {
			r = x
			break
		}
	}
	if r != nil {
		if r.sb == nil {
			// SPDK dereferences the raid's missing superblock.
			s.crash("raid_bdev_examine_sb: raid " + r.name + " with the superblock's uuid has no superblock")
			return
		}
		switch {
		case sb.seq > r.sb.seq:
			if r.state != "configuring" {
				return
			}
			s.raidDelete(r)
			r = nil
		case sb.seq < r.sb.seq:
			sb = r.sb
		}
	}
	idx := -1
	for i, x := range sb.bases {
		if x.uuid == b.uuid {
			idx = i
			break
		}
	}
	if idx < 0 {
		return
	}
	if r == nil {
		var errno int
		if r, errno = s.raidFromSB(sb); errno != 0 {
			return
		}
	}
	if sb.bases[idx].state != sbConfigured {
		return
	}
	for _, m := range r.members {
		if m.uuid == b.uuid {
			s.raidConfigureMember(r, m, true)
			return
		}
	}
}

// raidFromSB is raid_bdev_create_from_sb.
func (s *state) raidFromSB(sb *raidSB) (*raid, int) {
	r, errno := s.newRaid(sb.name, uint32(uint64(sb.stripSize)*uint64(sb.blockSize)/1024), int(sb.numBase), sb.level, true, sb.uuid)
	if errno != 0 {
		return nil, errno
	}
	cp := *sb
	cp.bases = append([]raidSBBase(nil), sb.bases...)
	r.sb, r.sbNew = &cp, false
	for _, x := range sb.bases {
		if int(x.slot) >= len(r.members) {
			continue
		}
		m := r.members[x.slot]
		if x.state == sbConfigured {
			m.uuid = x.uuid
			r.operational++
		}
		m.dataOffset, m.dataSize = x.dataOffset, x.dataSize
	}
	return r, 0
}

// ---- data path ----

// memberWindow is a member's data area [data_offset, +data_size) presented
// at the raid's block length (members of other block sizes are SPDK
// v24.01's bug: the raid addresses them in its own blocks).
func memberWindow(m *raidMember, bs uint32) blockdev.Device {
	if m.b == nil {
		return nil
	}
	return window{dev: m.b.device(), bs: bs, off: int64(m.dataOffset) * int64(m.b.blockSize), blocks: m.dataSize}
}

// device builds the raid's data path over its open members; a lost member
// fails the I/O that reaches it.
func (r *raid) device() blockdev.Device {
	ws := make([]blockdev.Device, len(r.members))
	for i, m := range r.members {
		if w := memberWindow(m, r.blocklen); w != nil {
			ws[i] = w
		} else {
			ws[i] = missingDev{bs: r.blocklen, blocks: m.dataSize}
		}
	}
	switch r.level {
	case "raid0":
		return &stripeDev{bs: r.blocklen, strip: int64(r.stripKB) * 1024, members: ws,
			per: int64(r.numBlocks) / int64(max(len(ws), 1)) * int64(r.blocklen), blocks: r.numBlocks}
	case "concat":
		sizes := make([]uint64, len(ws))
		for i, m := range r.members {
			sizes[i] = m.dataSize
		}
		return &concat{bs: r.blocklen, members: ws, sizes: sizes, total: r.numBlocks}
	}
	var live []blockdev.Device
	for i, m := range r.members {
		if m.b != nil {
			live = append(live, ws[i])
		}
	}
	return &mirror{bs: r.blocklen, members: live, blocks: r.numBlocks}
}

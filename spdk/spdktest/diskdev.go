package spdktest

// The data path of the fake: block devices with real bytes (sparse memory,
// files, raid0) and an lvstore format that keeps its metadata on the base
// device, so examine finds the same lvstore, lvols and uuids again after a
// restart or on another fake over the same bytes. It follows the blockdev
// contract of the project (spdk/spdktest/blockdev); it lives here until that
// package lands.

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
)

type blockDevice interface {
	BlockSize() uint32
	NumBlocks() uint64
	ReadAt(p []byte, off int64) (int, error)
	WriteAt(p []byte, off int64) (int, error)
}

var (
	errBlkRange     = errors.New("blockdev: out of range")
	errBlkNoLvstore = errors.New("blockdev: no lvstore")
	errBlkNoSpace   = errors.New("blockdev: no space")
	errBlkExists    = errors.New("blockdev: exists")
	errBlkNotFound  = errors.New("blockdev: not found")
	errBlkBusy      = errors.New("blockdev: busy")
)

func checkRange(d blockDevice, p []byte, off int64) error {
	if off < 0 || uint64(off)+uint64(len(p)) > d.NumBlocks()*uint64(d.BlockSize()) {
		return errBlkRange
	}
	return nil
}

type memDevice struct {
	mu   sync.Mutex
	bs   uint32
	n    uint64
	data map[int64][]byte // by 4 KiB memPage
}

const memPage = 4096

func newMemDevice(bs uint32, n uint64) *memDevice {
	return &memDevice{bs: bs, n: n, data: map[int64][]byte{}}
}
func (m *memDevice) BlockSize() uint32 { return m.bs }
func (m *memDevice) NumBlocks() uint64 { return m.n }
func (m *memDevice) ReadAt(p []byte, off int64) (int, error) {
	if err := checkRange(m, p, off); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := 0; i < len(p); {
		pg, o := (off+int64(i))/memPage, (off+int64(i))%memPage
		n := min(len(p)-i, int(memPage-o))
		if d, ok := m.data[pg]; ok {
			copy(p[i:i+n], d[o:])
		} else {
			clear(p[i : i+n])
		}
		i += n
	}
	return len(p), nil
}
func (m *memDevice) WriteAt(p []byte, off int64) (int, error) {
	if err := checkRange(m, p, off); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := 0; i < len(p); {
		pg, o := (off+int64(i))/memPage, (off+int64(i))%memPage
		n := min(len(p)-i, int(memPage-o))
		d, ok := m.data[pg]
		if !ok {
			d = make([]byte, memPage)
			m.data[pg] = d
		}
		copy(d[o:], p[i:i+n])
		i += n
	}
	return len(p), nil
}

type fileDevice struct {
	f  *os.File
	bs uint32
	n  uint64
}

func openFileDevice(path string, bs uint32) (*fileDevice, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &fileDevice{f: f, bs: bs, n: uint64(st.Size()) / uint64(bs)}, nil
}
func (f *fileDevice) BlockSize() uint32 { return f.bs }
func (f *fileDevice) NumBlocks() uint64 { return f.n }
func (f *fileDevice) ReadAt(p []byte, off int64) (int, error) {
	if err := checkRange(f, p, off); err != nil {
		return 0, err
	}
	return f.f.ReadAt(p, off)
}
func (f *fileDevice) WriteAt(p []byte, off int64) (int, error) {
	if err := checkRange(f, p, off); err != nil {
		return 0, err
	}
	return f.f.WriteAt(p, off)
}
func (f *fileDevice) Close() error { return f.f.Close() }

type raid0Device struct {
	m     []blockDevice
	strip int64
	per   uint64
	bs    uint32
}

func newRaid0Device(members []blockDevice, stripKB uint32) (*raid0Device, error) {
	if len(members) == 0 {
		return nil, errBlkRange
	}
	bs := members[0].BlockSize()
	strip := int64(stripKB) * 1024
	per := members[0].NumBlocks()
	for _, d := range members {
		per = min(per, d.NumBlocks())
	}
	sb := uint64(strip) / uint64(bs)
	per = per / sb * sb
	return &raid0Device{m: members, strip: strip, per: per, bs: bs}, nil
}
func (r *raid0Device) BlockSize() uint32 { return r.bs }
func (r *raid0Device) NumBlocks() uint64 { return r.per * uint64(len(r.m)) }
func (r *raid0Device) do(p []byte, off int64, w bool) (int, error) {
	if err := checkRange(r, p, off); err != nil {
		return 0, err
	}
	for i := 0; i < len(p); {
		o := off + int64(i)
		s := o / r.strip
		in := o % r.strip
		dev := r.m[s%int64(len(r.m))]
		at := (s/int64(len(r.m)))*r.strip + in
		n := min(len(p)-i, int(r.strip-in))
		var err error
		if w {
			_, err = dev.WriteAt(p[i:i+n], at)
		} else {
			_, err = dev.ReadAt(p[i:i+n], at)
		}
		if err != nil {
			return i, err
		}
		i += n
	}
	return len(p), nil
}
func (r *raid0Device) ReadAt(p []byte, off int64) (int, error)  { return r.do(p, off, false) }
func (r *raid0Device) WriteAt(p []byte, off int64) (int, error) { return r.do(p, off, true) }

type diskLvstoreOptions struct {
	Name, UUID             string
	ClusterSize            uint64
	ClearMethod            string
	MDPagesPerClusterRatio uint32
}

type lvolMeta struct {
	Name, UUID string
	Size       uint64
	Thin, Snap bool
	Parent     string
	Clusters   []int64
	Seq        int
}

type lvsMeta struct {
	Magic, Name, UUID string
	ClusterSize       uint64
	Total             uint64
	Lvols             []*lvolMeta
	Seq               int
}

type diskLvstore struct {
	mu   sync.Mutex
	base blockDevice
	m    lvsMeta
	objs map[string]*diskLvol
}

type diskLvol struct {
	ls *diskLvstore
	m  *lvolMeta
}

func createDiskLvstore(base blockDevice, o diskLvstoreOptions) (*diskLvstore, error) {
	cs := o.ClusterSize
	if cs == 0 || cs%4096 != 0 {
		return nil, errBlkRange
	}
	total := base.NumBlocks() * uint64(base.BlockSize()) / cs
	if total > 0 {
		total--
	}
	l := &diskLvstore{base: base, m: lvsMeta{Magic: "FAKELVS1", Name: o.Name, UUID: o.UUID, ClusterSize: cs, Total: total}, objs: map[string]*diskLvol{}}
	return l, l.persist()
}

func loadDiskLvstore(base blockDevice) (*diskLvstore, error) {
	hdr := make([]byte, base.BlockSize())
	if _, err := base.ReadAt(hdr, 0); err != nil {
		return nil, errBlkNoLvstore
	}
	var n int
	if _, err := fmt.Sscanf(string(hdr[:16]), "%d", &n); err != nil || n <= 0 || n > 64<<20 {
		return nil, errBlkNoLvstore
	}
	blk := uint64(base.BlockSize())
	buf := make([]byte, (uint64(n+16)+blk-1)/blk*blk)
	if _, err := base.ReadAt(buf, 0); err != nil {
		return nil, errBlkNoLvstore
	}
	l := &diskLvstore{base: base, objs: map[string]*diskLvol{}}
	if json.Unmarshal(buf[16:16+n], &l.m) != nil || l.m.Magic != "FAKELVS1" {
		return nil, errBlkNoLvstore
	}
	for _, m := range l.m.Lvols {
		l.objs[m.Name] = &diskLvol{ls: l, m: m}
	}
	return l, nil
}

func (l *diskLvstore) persist() error {
	b, _ := json.Marshal(l.m)
	if uint64(len(b)+16) > l.m.ClusterSize {
		return errBlkNoSpace
	}
	blk := uint64(l.base.BlockSize())
	buf := make([]byte, (uint64(len(b)+16)+blk-1)/blk*blk)
	copy(buf, fmt.Sprintf("%-15d\n", len(b)))
	copy(buf[16:], b)
	_, err := l.base.WriteAt(buf, 0)
	return err
}

func (l *diskLvstore) Name() string        { return l.m.Name }
func (l *diskLvstore) UUID() string        { return l.m.UUID }
func (l *diskLvstore) ClusterSize() uint64 { return l.m.ClusterSize }
func (l *diskLvstore) TotalDataClusters() uint64 {
	return l.m.Total
}
func (l *diskLvstore) used() map[int64]bool {
	u := map[int64]bool{}
	for _, m := range l.m.Lvols {
		for _, c := range m.Clusters {
			if c >= 0 {
				u[c] = true
			}
		}
	}
	return u
}
func (l *diskLvstore) FreeClusters() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.m.Total - uint64(len(l.used()))
}
func (l *diskLvstore) Lvols() []*diskLvol {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := []*diskLvol{}
	for _, m := range l.m.Lvols {
		out = append(out, l.objs[m.Name])
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].m.Seq < out[j].m.Seq })
	return out
}
func (l *diskLvstore) alloc() (int64, bool) {
	u := l.used()
	for c := int64(1); c <= int64(l.m.Total); c++ {
		if !u[c] {
			return c, true
		}
	}
	return 0, false
}
func (l *diskLvstore) clusters(size uint64) uint64 {
	return (size + l.m.ClusterSize - 1) / l.m.ClusterSize
}
func (l *diskLvstore) CreateLvol(name, uuid string, size uint64, thin bool, cm string) (*diskLvol, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.objs[name]; ok {
		return nil, errBlkExists
	}
	n := l.clusters(size)
	if !thin && n > l.m.Total-uint64(len(l.used())) {
		return nil, errBlkNoSpace
	}
	m := &lvolMeta{Name: name, UUID: uuid, Size: n * l.m.ClusterSize, Thin: thin, Clusters: make([]int64, n)}
	l.m.Seq++
	m.Seq = l.m.Seq
	for i := range m.Clusters {
		m.Clusters[i] = -1
	}
	l.m.Lvols = append(l.m.Lvols, m)
	if !thin {
		for i := range m.Clusters {
			m.Clusters[i], _ = l.alloc()
		}
	}
	v := &diskLvol{ls: l, m: m}
	l.objs[name] = v
	return v, l.persist()
}
func (l *diskLvstore) Lvol(name string) (*diskLvol, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	v, ok := l.objs[name]
	return v, ok
}
func (l *diskLvstore) Delete(name string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	v, ok := l.objs[name]
	if !ok {
		return errBlkNotFound
	}
	kids := l.children(name)
	if len(kids) > 1 {
		return errBlkBusy
	}
	if len(kids) == 1 {
		c := kids[0]
		for i := range c.Clusters {
			if c.Clusters[i] < 0 && i < len(v.m.Clusters) {
				c.Clusters[i] = v.m.Clusters[i]
				v.m.Clusters[i] = -1
			}
		}
		c.Parent = v.m.Parent
	}
	for i, m := range l.m.Lvols {
		if m == v.m {
			l.m.Lvols = append(l.m.Lvols[:i:i], l.m.Lvols[i+1:]...)
			break
		}
	}
	delete(l.objs, name)
	return l.persist()
}
func (l *diskLvstore) children(name string) []*lvolMeta {
	var out []*lvolMeta
	for _, m := range l.m.Lvols {
		if m.Parent == name {
			out = append(out, m)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out
}
func (l *diskLvstore) Resize(name string, size uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	v, ok := l.objs[name]
	if !ok {
		return errBlkNotFound
	}
	n := l.clusters(size)
	cur := uint64(len(v.m.Clusters))
	if n > cur && !v.m.Thin && n-cur > l.m.Total-uint64(len(l.used())) {
		return errBlkNoSpace
	}
	if n < cur {
		v.m.Clusters = v.m.Clusters[:n]
	}
	for uint64(len(v.m.Clusters)) < n {
		c := int64(-1)
		if !v.m.Thin {
			c, _ = l.alloc()
		}
		v.m.Clusters = append(v.m.Clusters, c)
	}
	v.m.Size = n * l.m.ClusterSize
	return l.persist()
}
func (l *diskLvstore) Snapshot(lvolName, snapName, snapUUID string) (*diskLvol, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	v, ok := l.objs[lvolName]
	if !ok {
		return nil, errBlkNotFound
	}
	if _, ok := l.objs[snapName]; ok {
		return nil, errBlkExists
	}
	s := &lvolMeta{Name: snapName, UUID: snapUUID, Size: v.m.Size, Thin: v.m.Thin, Snap: true, Parent: v.m.Parent, Clusters: v.m.Clusters}
	l.m.Seq++
	s.Seq = l.m.Seq
	v.m.Clusters = make([]int64, len(s.Clusters))
	for i := range v.m.Clusters {
		v.m.Clusters[i] = -1
	}
	v.m.Parent = snapName
	v.m.Thin = true
	l.m.Lvols = append(l.m.Lvols, s)
	o := &diskLvol{ls: l, m: s}
	l.objs[snapName] = o
	return o, l.persist()
}
func (l *diskLvstore) Clone(snapName, cloneName, cloneUUID string) (*diskLvol, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s, ok := l.objs[snapName]
	if !ok || !s.m.Snap {
		return nil, errBlkNotFound
	}
	if _, ok := l.objs[cloneName]; ok {
		return nil, errBlkExists
	}
	c := &lvolMeta{Name: cloneName, UUID: cloneUUID, Size: s.m.Size, Thin: true, Parent: snapName, Clusters: make([]int64, len(s.m.Clusters))}
	for i := range c.Clusters {
		c.Clusters[i] = -1
	}
	l.m.Seq++
	c.Seq = l.m.Seq
	l.m.Lvols = append(l.m.Lvols, c)
	o := &diskLvol{ls: l, m: c}
	l.objs[cloneName] = o
	return o, l.persist()
}

func (v *diskLvol) Name() string      { return v.m.Name }
func (v *diskLvol) UUID() string      { return v.m.UUID }
func (v *diskLvol) Thin() bool        { return v.m.Thin }
func (v *diskLvol) IsSnapshot() bool  { return v.m.Snap }
func (v *diskLvol) IsClone() bool     { return v.m.Parent != "" }
func (v *diskLvol) Parent() string    { return v.m.Parent }
func (v *diskLvol) BlockSize() uint32 { return v.ls.base.BlockSize() }
func (v *diskLvol) NumBlocks() uint64 {
	v.ls.mu.Lock()
	defer v.ls.mu.Unlock()
	return v.m.Size / uint64(v.ls.base.BlockSize())
}
func (v *diskLvol) Clones() []string {
	v.ls.mu.Lock()
	defer v.ls.mu.Unlock()
	var out []string
	for _, c := range v.ls.children(v.m.Name) {
		out = append(out, c.Name)
	}
	return out
}
func (v *diskLvol) AllocatedClusters() uint64 {
	n := uint64(0)
	for _, c := range v.m.Clusters {
		if c >= 0 {
			n++
		}
	}
	return n
}
func (v *diskLvol) ReadAt(p []byte, off int64) (int, error) {
	v.ls.mu.Lock()
	defer v.ls.mu.Unlock()
	if off < 0 || uint64(off)+uint64(len(p)) > v.m.Size {
		return 0, errBlkRange
	}
	cs := int64(v.ls.m.ClusterSize)
	for i := 0; i < len(p); {
		o := off + int64(i)
		ci, in := o/cs, o%cs
		n := min(len(p)-i, int(cs-in))
		m := v.m
		for m != nil && (ci >= int64(len(m.Clusters)) || m.Clusters[ci] < 0) {
			if m.Parent == "" {
				m = nil
				break
			}
			m = v.ls.objs[m.Parent].m
		}
		if m == nil {
			clear(p[i : i+n])
		} else if _, err := v.ls.base.ReadAt(p[i:i+n], m.Clusters[ci]*cs+in); err != nil {
			return i, err
		}
		i += n
	}
	return len(p), nil
}
func (v *diskLvol) WriteAt(p []byte, off int64) (int, error) {
	v.ls.mu.Lock()
	defer v.ls.mu.Unlock()
	if v.m.Snap {
		return 0, errBlkBusy
	}
	if off < 0 || uint64(off)+uint64(len(p)) > v.m.Size {
		return 0, errBlkRange
	}
	cs := int64(v.ls.m.ClusterSize)
	dirty := false
	for i := 0; i < len(p); {
		o := off + int64(i)
		ci, in := o/cs, o%cs
		n := min(len(p)-i, int(cs-in))
		if v.m.Clusters[ci] < 0 {
			c, ok := v.ls.alloc()
			if !ok {
				return i, errBlkNoSpace
			}
			// copy-on-write from the parent chain
			buf := make([]byte, cs)
			v.ls.mu.Unlock()
			_, _ = (&diskLvol{ls: v.ls, m: v.m}).readParent(buf, ci)
			v.ls.mu.Lock()
			v.m.Clusters[ci] = c
			if _, err := v.ls.base.WriteAt(buf, c*cs); err != nil {
				return i, err
			}
			dirty = true
		}
		if _, err := v.ls.base.WriteAt(p[i:i+n], v.m.Clusters[ci]*cs+in); err != nil {
			return i, err
		}
		i += n
	}
	if dirty {
		if err := v.ls.persist(); err != nil {
			return len(p), err
		}
	}
	return len(p), nil
}
func (v *diskLvol) readParent(buf []byte, ci int64) (int, error) {
	v.ls.mu.Lock()
	parent := v.m.Parent
	v.ls.mu.Unlock()
	if parent == "" {
		clear(buf)
		return len(buf), nil
	}
	v.ls.mu.Lock()
	pm := v.ls.objs[parent]
	v.ls.mu.Unlock()
	if pm == nil || uint64(ci+1)*v.ls.m.ClusterSize > pm.m.Size {
		clear(buf)
		return len(buf), nil
	}
	return pm.ReadAt(buf, ci*int64(v.ls.m.ClusterSize))
}

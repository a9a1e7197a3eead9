package agent

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/spdk"
	"github.com/vda-io/vda/spdk/spdktest/blockdev"
)

func writeFile(t *testing.T, path string, size int64, head []byte) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, head, 0o600))
	require.NoError(t, os.Truncate(path, size))
}

// The allow-list: only regular files and block devices inside an allowed
// directory, symlinks resolved first (no escape through a link), and
// nothing at all without one.
func TestAioPolicyResolve(t *testing.T) {
	allowed, outside := t.TempDir(), t.TempDir()
	in := filepath.Join(allowed, "pd.img")
	writeFile(t, in, 1<<20, nil)
	secret := filepath.Join(outside, "shadow")
	writeFile(t, secret, 4096, []byte("root:$6$..."))
	require.NoError(t, os.Symlink(secret, filepath.Join(allowed, "escape")))
	require.NoError(t, os.Symlink(in, filepath.Join(outside, "inward")))
	require.NoError(t, os.Mkdir(filepath.Join(allowed, "dir"), 0o700))
	linkDir := filepath.Join(t.TempDir(), "link")
	require.NoError(t, os.Symlink(allowed, linkDir))

	_, _, err := aioPolicy{}.resolve(in)
	require.ErrorIs(t, err, errAioRefused)
	require.ErrorContains(t, err, "--aio-dir")

	p := aioPolicy{dirs: []string{linkDir}} // an allowed directory may itself be a symlink
	real, fi, err := p.resolve(in)
	require.NoError(t, err)
	wantReal, err := filepath.EvalSymlinks(in)
	require.NoError(t, err)
	require.Equal(t, wantReal, real)
	require.True(t, fi.Mode().IsRegular())
	real, _, err = p.resolve(filepath.Join(outside, "inward"))
	require.NoError(t, err, "a link from elsewhere to an allowed file names the allowed file")
	require.Equal(t, wantReal, real)

	for name, tc := range map[string]struct{ file, msg string }{
		"outside":        {secret, "outside the directories"},
		"symlink escape": {filepath.Join(allowed, "escape"), "outside the directories"},
		"dotdot escape":  {filepath.Join(allowed, "..", filepath.Base(outside), "shadow"), "outside the directories"},
		"directory":      {filepath.Join(allowed, "dir"), "not a regular file or a block device"},
		"missing":        {filepath.Join(allowed, "nope"), "no such file"},
	} {
		_, _, err := p.resolve(tc.file)
		require.ErrorIs(t, err, errAioRefused, name)
		require.ErrorContains(t, err, tc.msg, name)
	}
	if _, err := os.Stat("/dev/null"); err == nil {
		_, _, err := aioPolicy{dirs: []string{"/dev"}}.resolve("/dev/null")
		require.ErrorContains(t, err, "not a regular file or a block device", "a character device")
	}
}

// realSPDKHead is the first 24 KiB of a 64 MiB file on which real SPDK
// v24.01 made an aio bdev and the lvstore
// vda-pdlvs-0123456789abcdef0123456789abcdef (1 MiB clusters) with one
// lvol: its blobstore super block and the super blob's metadata page.
func realSPDKHead(t *testing.T) []byte {
	t.Helper()
	f, err := os.Open("testdata/spdk-v24.01-lvstore-head.bin.gz")
	require.NoError(t, err)
	defer f.Close()
	z, err := gzip.NewReader(f)
	require.NoError(t, err)
	b, err := io.ReadAll(z)
	require.NoError(t, err)
	return b
}

func TestSPDKLvstoreLabel(t *testing.T) {
	head := realSPDKHead(t)
	name, ok := SPDKLvstoreLabel(bytes.NewReader(head), 64<<20)
	require.True(t, ok)
	require.Equal(t, "vda-pdlvs-0123456789abcdef0123456789abcdef", name)

	for what, mutate := range map[string]func([]byte){
		"no signature":  func(b []byte) { b[0] = 'X' },
		"blobstore":     func(b []byte) { copy(b[bsTypeOff:], "BLOBFS\x00\x00\x00") },
		"md page moved": func(b []byte) { b[bsMDStartOff] = 5 },
		"md beyond":     func(b []byte) { b[bsMDStartOff+3] = 0x7f },
	} {
		b := bytes.Clone(head)
		mutate(b)
		_, ok := SPDKLvstoreLabel(bytes.NewReader(b), 64<<20)
		require.False(t, ok, what)
	}
	_, ok = SPDKLvstoreLabel(bytes.NewReader(head[:100]), 100)
	require.False(t, ok)
}

func FuzzSPDKLvstoreLabel(f *testing.F) {
	f.Add([]byte(bsSignature), int64(4096))
	f.Fuzz(func(t *testing.T, data []byte, size int64) {
		_, _ = SPDKLvstoreLabel(bytes.NewReader(data), size) // no panic, whatever the bytes
	})
}

// The data check: blank files and the PD's own lvstore (real SPDK's or the
// fake's) pass; anything else needs force.
func TestAioPolicyCheck(t *testing.T) {
	dir := t.TempDir()
	p := aioPolicy{dirs: []string{dir}, labels: []LvstoreLabelReader{SPDKLvstoreLabel, blockdev.LvstoreName}}
	const ours = "0123456789abcdef0123456789abcdef"
	check := func(name string, force bool, id string) error {
		real, fi, err := p.resolve(filepath.Join(dir, name))
		require.NoError(t, err)
		return p.check(id, name, real, fi, force)
	}
	writeFile(t, filepath.Join(dir, "blank"), 64<<20, nil)
	writeFile(t, filepath.Join(dir, "empty"), 0, nil)
	late := make([]byte, aioProbeBytes+1)
	late[aioProbeBytes] = 1
	writeFile(t, filepath.Join(dir, "late"), 64<<20, late)
	writeFile(t, filepath.Join(dir, "data"), 64<<20, []byte("a file system"))
	writeFile(t, filepath.Join(dir, "spdk"), 64<<20, realSPDKHead(t))
	fake, err := blockdev.CreateFile(filepath.Join(dir, "fake"), 4096, 64<<20)
	require.NoError(t, err)
	_, err = blockdev.CreateLvstore(fake, blockdev.LvstoreOptions{Name: nvmeof.PDLvstoreName(ours), ClusterSize: 1 << 20})
	require.NoError(t, err)
	require.NoError(t, fake.Close())

	for _, name := range []string{"blank", "empty", "late"} {
		require.NoError(t, check(name, false, nvmeof.NewID()), name)
	}
	require.NoError(t, check("spdk", false, ours), "real SPDK's lvstore of this PD")
	require.NoError(t, check("fake", false, ours), "the fake SPDK's lvstore of this PD")

	err = check("data", false, ours)
	require.ErrorIs(t, err, errAioRefused)
	require.ErrorContains(t, err, "not all zeros")
	require.ErrorContains(t, err, "--force")
	other := nvmeof.NewID()
	err = check("spdk", false, other)
	require.ErrorContains(t, err, `lvstore "vda-pdlvs-0123456789abcdef0123456789abcdef", not this PD's vda-pdlvs-`+other)
	require.ErrorContains(t, check("fake", false, other), "not this PD's")
	for _, name := range []string{"data", "spdk", "fake"} {
		require.NoError(t, check(name, true, other), "force: "+name)
	}
}

// Through a sync on the fake SPDK: a file with data is refused before any
// bdev exists (so SPDK never touches it) and left as it was; with force
// the PD is made; a file outside the allowed directories is refused.
func TestDNAioPDRefusesForeignData(t *testing.T) {
	e := newDNEnv(t)
	dir := t.TempDir()
	content := []byte("#!/bin/sh\necho precious\n")
	foreign := filepath.Join(dir, "foreign.img")
	writeFile(t, foreign, 64<<20, content)
	id := nvmeof.NewID()
	pd := &agentpb.PdSpec{Id: id, Conf: &agentpb.PdSpec_Aio{Aio: &agentpb.AioConf{Filename: foreign}}}
	out := e.sync(&agentpb.DnState{Pds: []*agentpb.PdSpec{pd}})
	require.Len(t, out, 1)
	require.False(t, out[0].GetOk())
	require.Contains(t, out[0].GetError(), "holds data")
	bdevs, err := e.c.BdevGetBdevs(context.Background(), spdk.BdevGetBdevsParams{})
	require.NoError(t, err)
	require.Empty(t, bdevs, "refused before the bdev was made")
	got, err := os.ReadFile(foreign)
	require.NoError(t, err)
	require.Equal(t, content, got[:len(content)])

	pd.Conf.(*agentpb.PdSpec_Aio).Aio.Force = true
	e.syncOK(&agentpb.DnState{Pds: []*agentpb.PdSpec{pd}})
	lvs, err := e.c.BdevLvolGetLvstores(context.Background(), spdk.LvstoreSelector{LvsName: nvmeof.PDLvstoreName(id)})
	require.NoError(t, err)
	require.Len(t, lvs, 1)

	// Without force again, after a restart: the file is the PD's now.
	e.restart()
	pd.Conf.(*agentpb.PdSpec_Aio).Aio.Force = false
	e.syncOK(&agentpb.DnState{Pds: []*agentpb.PdSpec{pd}})

	e.dn.aio.dirs = []string{t.TempDir()}
	other := &agentpb.PdSpec{Id: nvmeof.NewID(), Conf: &agentpb.PdSpec_Aio{Aio: &agentpb.AioConf{Filename: "/etc/passwd", Force: true}}}
	out = e.sync(&agentpb.DnState{Pds: []*agentpb.PdSpec{other}})
	require.False(t, out[0].GetOk())
	require.Contains(t, out[0].GetError(), "outside the directories")
}

// A deleted aio PD leaves its file blank (lvstore deletion zeroes only the
// superblock), so a PD made on the same file again needs no force.
func TestDNAioPDDeletedLeavesItsFileBlank(t *testing.T) {
	e := newDNEnv(t)
	file := filepath.Join(t.TempDir(), "pd.img")
	writeFile(t, file, 64<<20, nil)
	e.dn.aio.dirs = []string{filepath.Dir(file)}
	pd := func() *agentpb.PdSpec {
		return &agentpb.PdSpec{Id: nvmeof.NewID(), Conf: &agentpb.PdSpec_Aio{Aio: &agentpb.AioConf{Filename: file}}}
	}
	e.syncOK(&agentpb.DnState{Pds: []*agentpb.PdSpec{pd()}})
	head := func() []byte {
		f, err := os.Open(file)
		require.NoError(t, err)
		defer f.Close()
		b := make([]byte, 1<<20)
		_, err = io.ReadFull(f, b)
		require.NoError(t, err)
		return b
	}
	require.NotEqual(t, make([]byte, 1<<20), head(), "the lvstore's metadata is there")
	e.syncOK(&agentpb.DnState{})
	require.Equal(t, make([]byte, 1<<20), head(), "blank again")
	e.syncOK(&agentpb.DnState{Pds: []*agentpb.PdSpec{pd()}})
}

package spdktest

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// refMarshal is marshal's encoding/json path, which the listings took
// before their one-pass encoders.
func refMarshal(t testing.TB, v any) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	require.NoError(t, enc.Encode(v))
	return bytes.TrimRight(b.Bytes(), "\n")
}

func oddBdevs(s string) []bdevJSON {
	u32, b, i32 := uint32(8), true, int32(1)
	return []bdevJSON{
		{},
		{Name: s, Aliases: []string{s, "a<b>&c"}, ProductName: s, BlockSize: 4096, NumBlocks: 1 << 40, UUID: s,
			MDSize: &u32, MDInterleave: &b, DIFType: &i32, DIFIsHeadOfMD: &b, DIFChecks: &difChecks{Reftag: true, Guard: true},
			Limits: rateLimits{1, 2, 3, 18446744073709551615}, Claimed: true, ClaimType: s, Zoned: true, IOTypes: ioNVMe,
			MemoryDomains: []memoryDomain{{ID: s, Type: -2}, acceleratorDomain}, DriverSpecific: obj{{s, s}, {"n", 1}}},
		{Name: "x", Aliases: []string{}, DriverSpecific: struct{}{}},
		{Name: "y", DriverSpecific: nil, MemoryDomains: []memoryDomain{}},
		{Name: "z", DriverSpecific: map[string]any{"k": []int{1}}},
	}
}

func oddLvols(s string) []lvolJSON {
	return []lvolJSON{{}, {Alias: s + "/" + s, UUID: s, Name: s, Thin: true, IsSnapshot: true, IsClone: true,
		IsEsnapClone: true, IsDegraded: true, Lvs: lvsRef{Name: s, UUID: s}}}
}

// TestListingJSONAsEncodingJSON: bdev_get_bdevs' and bdev_lvol_get_lvols'
// answers are the bytes encoding/json wrote for them, for the fake's own
// bdevs of every kind and for odd strings (escapes, HTML, invalid UTF-8).
func TestListingJSONAsEncodingJSON(t *testing.T) {
	// A controller node's kinds of bdev: nvme, raid, passthru, lvol, and
	// a malloc with metadata and DIF.
	const host = "nqn.2016-06.io.vda:fe-1"
	dnA, dnB := NewServer(t), NewServer(t)
	nqnA, portA := diskNode(t, dnA, dialRaw(t, dnA.SockPath()), "a", host)
	nqnB, portB := diskNode(t, dnB, dialRaw(t, dnB.SockPath()), "b", host)
	srv := NewServer(t)
	rc := dialRaw(t, srv.SockPath())
	attach(rc, "va", portA, nqnA, host)
	attach(rc, "vb", portB, nqnB, host)
	controller(t, rc, []string{"van1", "vbn1"}, true)
	rc.ok("bdev_malloc_create", map[string]any{"name": "md", "block_size": 512, "num_blocks": 64, "md_size": 8, "dif_type": 1})
	var bdevs []json.RawMessage
	require.NoError(t, json.Unmarshal(rc.ok("bdev_get_bdevs", nil), &bdevs))
	srv.mu.Lock()
	st := srv.cur.st
	srv.mu.Unlock()
	real, _ := st.getBdevs(nil)
	require.Len(t, real, len(bdevs))
	listed, err := marshal(real)
	require.NoError(t, err)
	require.Equal(t, string(listed), string(rc.ok("bdev_get_bdevs", nil)), "the listing on the wire")
	products := map[string]bool{}
	for _, b := range real {
		products[b.ProductName] = true
	}
	require.Len(t, products, 5, "nvme, raid, passthru, lvol and malloc bdevs: %v", products)

	for _, s := range []string{"", "plain", `q"uo\te`, "<html>&amp;", "tab\there\n", "\x00\x1f\x7f", "é中文", "\xff\xfe", "\u2028\u2029"} {
		for _, list := range [][]bdevJSON{nil, {}, real, oddBdevs(s)} {
			got, err := marshal(list)
			require.NoError(t, err)
			require.Equal(t, string(refMarshal(t, list)), string(got), "%q", s)
		}
		for _, list := range [][]lvolJSON{nil, {}, oddLvols(s)} {
			got, err := marshal(list)
			require.NoError(t, err)
			require.Equal(t, string(refMarshal(t, list)), string(got), "%q", s)
		}
	}
}

func FuzzListingJSONAsEncodingJSON(f *testing.F) {
	for _, s := range []string{"", "a", `"\`, "<>&", "\xff", "\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := marshal(oddBdevs(s))
		require.NoError(t, err)
		require.Equal(t, string(refMarshal(t, oddBdevs(s))), string(got))
		got, err = marshal(oddLvols(s))
		require.NoError(t, err)
		require.Equal(t, string(refMarshal(t, oddLvols(s))), string(got))
	})
}

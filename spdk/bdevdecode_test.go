package spdk

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func decodeBdevs(b []byte) ([]Bdev, bool) { return decodeList(b, (*fastParser).bdev) }

// recordedResults returns the results of method in the recordings of real SPDK v24.01.
func recordedResults(tb testing.TB, method string) [][]byte {
	files, err := filepath.Glob(filepath.Join("testdata", "transcripts", "*.jsonl"))
	require.NoError(tb, err)
	var out [][]byte
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(tb, err)
		for _, line := range splitLines(data) {
			var rec struct {
				Request struct {
					Method string `json:"method"`
				} `json:"request"`
				Response struct {
					Result json.RawMessage `json:"result"`
				} `json:"response"`
			}
			if json.Unmarshal(line, &rec) == nil && rec.Request.Method == method && rec.Response.Result != nil {
				out = append(out, rec.Response.Result)
			}
		}
	}
	require.NotEmpty(tb, out, "the recordings hold %s replies", method)
	return out
}

func splitLines(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		i := 0
		for i < len(b) && b[i] != '\n' {
			i++
		}
		out = append(out, b[:i])
		if i < len(b) {
			i++
		}
		b = b[i:]
	}
	return out
}

var bdevSeeds = []string{
	`[]`, ` [ ] `, `null`, `[{}]`, `[null]`, `{}`, `[{}] x`, `[{},]`, `[{"name":"a",}]`,
	`[{"name":"Malloc0","aliases":["a8e3c1b2-0000-4000-8000-000000000001"],"product_name":"Malloc disk","block_size":512,"num_blocks":65536,"uuid":"a8e3c1b2-0000-4000-8000-000000000001","assigned_rate_limits":{"rw_ios_per_sec":0,"rw_mbytes_per_sec":0,"r_mbytes_per_sec":0,"w_mbytes_per_sec":0},"claimed":true,"claim_type":"exclusive_write","zoned":false,"supported_io_types":{"read":true,"write":true},"memory_domains":[{"dma_device_id":"SPDK_ACCEL_DMA_DEVICE","dma_device_type":2}],"driver_specific":{}}]`,
	`[{"name":"aio0","driver_specific":{"aio":{"filename":"/tmp/x","block_size_override":false,"readonly":true}}}]`,
	`[{"name":"p","driver_specific":{"passthru":{"name":"p","base_bdev_name":"b"}}}]`,
	`[{"name":"l","driver_specific":{"lvol":{"lvol_store_uuid":"u","base_bdev":"b","thin_provision":true,"num_allocated_clusters":3,"snapshot":true,"clone":false,"esnap_clone":false,"clones":["c1","c2"]}}}]`,
	`[{"name":"c","driver_specific":{"lvol":{"base_snapshot":"s","clone":true,"clones":[]}}}]`,
	`[{"name":"r","driver_specific":{"raid":{"uuid":"u","strip_size_kb":64,"state":"online","raid_level":"raid0","superblock":false,"num_base_bdevs":2,"num_base_bdevs_discovered":2,"num_base_bdevs_operational":2,"base_bdevs_list":[{"name":"a","uuid":"x","is_configured":true,"data_offset":0,"data_size":24576},{"name":null,"uuid":"00000000-0000-0000-0000-000000000000","is_configured":false,"data_offset":0,"data_size":0}]}}}]`,
	`[{"name":"n","driver_specific":{"nvme":[{"pci_address":"0000:81:00.0","trid":{"trtype":"PCIe","traddr":"0000:81:00.0"},"ctrlr_data":{"cntlid":0,"vendor_id":"0x1b36","model_number":"QEMU NVMe Ctrl","serial_number":"1","firmware_revision":"8.0.0","oacs":{"security":0,"format":1,"firmware":0,"ns_manage":1},"multi_ctrlr":false,"ana_reporting":false},"vs":{"nvme_version":"1.4"},"ns_data":{"id":1,"can_share":false,"ana_state":"optimized"}}],"mp_policy":"active_passive"}}]`,
	// What encoding/json decides: unknown modules, escapes, nulls, odd numbers, duplicates, case.
	`[{"name":"s","driver_specific":{"split":{"base_bdev":"b"},"lvol":{"base_bdev":"x"}}}]`,
	`[{"name":"s","driver_specific":{"LVOL":{"base_bdev":"x"}}}]`, `[{"NAME":"x"}]`, `[{"nAme":"x","name":"y"}]`,
	`[{"name":"a","name":"b"}]`, `[{"name":"\u0041"}]`, `[{"n\u0061me":"a"}]`, `[{"name":"é"}]`, "[{\"name\":\"\xff\"}]",
	`[{"name":null}]`, `[{"aliases":null}]`, `[{"block_size":1.0}]`, `[{"block_size":-1}]`, `[{"block_size":1e3}]`,
	`[{"block_size":4294967296}]`, `[{"block_size":4294967295}]`, `[{"num_blocks":18446744073709551615}]`,
	`[{"num_blocks":18446744073709551616}]`, `[{"block_size":"512"}]`, `[{"claimed":"true"}]`, `[{"claimed":nul}]`,
	`[{"supported_io_types":{"read":true,"read":false}}]`, `[{"supported_io_types":{}}]`, `[{"supported_io_types":null}]`,
	`[{"driver_specific":null}]`, `[{"driver_specific":{"lvol":null}}]`, `[{"driver_specific":{"nvme":[{"ctrlr_data":{"cntlid":65536}}]}}]`,
	`[{"driver_specific":{"nvme":[{"ctrlr_data":{"oacs":{"format":-1}}}]}}]`, `[{"driver_specific":[]}]`,
	`[{"driver_specific":{"lvol":{},"lvol":{"clone":true}}}]`, `[{"x":[1,{"y":"\"]}"},-0.5e+3,true,null]},{"x":01}]`,
	`[{"x":"\ud800"},{"y":"\x"}]`, `[{"x":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}]`,
	` [ { "name" : "a" , "aliases" : [ "x" , "y" ] , "block_size" : 512 , "driver_specific" : { "passthru" : { "name" : "p" } } } ] `,
	"[{\"name\":\"a\"\n,\t\"zoned\"\r:false}]", `[{"name":"a"} {"name":"b"}]`, `[{"name":"a"}`, `[{"name":"a}]`,
}

// The one-pass decode yields what encoding/json yields, errors included (an input it does not
// take goes to encoding/json), and whatever it takes is valid for encoding/json.
func FuzzDecodeBdevs(f *testing.F) {
	for _, s := range bdevSeeds {
		f.Add([]byte(s))
	}
	for _, r := range recordedResults(f, "bdev_get_bdevs") {
		f.Add(r)
	}
	f.Add(listingBdevs(3))
	f.Fuzz(func(t *testing.T, b []byte) {
		checkDecodeList(t, b, (*fastParser).bdev)
		checkBrief(t, b)
	})
}

// checkBrief holds the brief decode (BdevGetBdevsBrief) to the full one on b: the same
// bdevs without SupportedIOTypes and DriverSpecific.NVMe, taken whenever the full decode
// is (skipping checks as much as decoding does), and never taking what is not JSON.
func checkBrief(t *testing.T, b []byte) {
	full, fullOK := decodeBdevs(b)
	brief, briefOK := decodeList(b, (*fastParser).bdevBrief)
	if fullOK {
		require.True(t, briefOK, "%s", b)
		for i := range full {
			full[i].SupportedIOTypes, full[i].DriverSpecific.NVMe = nil, nil
		}
		require.Equal(t, full, brief, "%s", b)
	}
	if briefOK {
		require.True(t, json.Valid(b), "taken but not valid: %s", b)
	}
}

// checkDecodeList holds the one-pass decode of a listing to encoding/json on b.
func checkDecodeList[T any](t *testing.T, b []byte, elem func(*fastParser, *T) bool) {
	var got []T
	gotErr := decodeResult(b, fastList[T]{&got, elem})
	var want []T
	wantErr := json.Unmarshal(b, &want)
	require.Equal(t, wantErr, gotErr, "%s", b)
	require.Equal(t, want, got, "%s", b)
	if taken, ok := decodeList(b, elem); ok {
		require.NoError(t, wantErr, "taken but not valid: %s", b)
		require.Equal(t, want, taken, "%s", b)
	}
}

func TestDecodeBdevsSeeds(t *testing.T) {
	for _, s := range bdevSeeds {
		checkDecodeList(t, []byte(s), (*fastParser).bdev)
	}
	for _, s := range bdevSeeds[9:16] { // the shapes SPDK writes take the one-pass decode
		_, ok := decodeBdevs([]byte(s))
		require.True(t, ok, s)
	}
	_, ok := decodeBdevs(listingBdevs(3))
	require.True(t, ok)
}

// Every bdev_get_bdevs reply of real SPDK v24.01 (the recordings) takes the one-pass decode.
func TestDecodeBdevsTakesSPDKReplies(t *testing.T) {
	for _, r := range recordedResults(t, "bdev_get_bdevs") {
		_, ok := decodeBdevs(r)
		require.True(t, ok, "%s", r)
		checkDecodeList(t, r, (*fastParser).bdev)
		checkBrief(t, r)
	}
}

// The brief decode leaves out exactly the two members, and keeps everything else the
// agents read (names, aliases, sizes, claims, rate limits, the lvol, raid and aio parts).
func TestDecodeBdevsBrief(t *testing.T) {
	for _, s := range bdevSeeds {
		checkBrief(t, []byte(s))
	}
	reply := decodeBenchBdevs()
	checkBrief(t, reply)
	brief, ok := decodeList(reply, (*fastParser).bdevBrief)
	require.True(t, ok)
	var nvme, lvol int
	for _, b := range brief {
		require.Nil(t, b.SupportedIOTypes)
		require.Nil(t, b.DriverSpecific.NVMe)
		if b.ProductName == ProductNVMe {
			nvme++
			require.NotEmpty(t, b.DriverSpecific.MPPolicy, b.Name)
		}
		if b.DriverSpecific.Lvol != nil {
			lvol++
		}
	}
	require.Positive(t, nvme)
	require.Positive(t, lvol)
}

// listingDNBdevs is bdev_get_bdevs of a disk node: pds malloc and aio physical disks, each
// with an lvstore of lvols virtual disks, shaped like SPDK v24.01's answers.
func listingDNBdevs(pds, lvols int) []byte {
	return listing(pds*(1+lvols), func(b *bytes.Buffer, i int) {
		pd, lv := i/(1+lvols), i%(1+lvols)
		u := uuidOf(i, 20)
		switch {
		case lv > 0:
			fmt.Fprintf(b, `{"name":%q,"aliases":["vda-001-%s/vd-%d"],"product_name":"Logical Volume","block_size":4096,"num_blocks":24576,"uuid":%q,%s,"claimed":false,"zoned":false,%s,"memory_domains":[{"dma_device_id":"SPDK_ACCEL_DMA_DEVICE","dma_device_type":2}],"driver_specific":{"lvol":{"lvol_store_uuid":%q,"base_bdev":"pd-%d","thin_provision":true,"num_allocated_clusters":0,"snapshot":false,"clone":false,"esnap_clone":false}}}`,
				u, hex32(pd, 21), lv, u, rateLimits, supportedIO, uuidOf(pd, 22), pd)
		case pd%2 == 0:
			fmt.Fprintf(b, `{"name":"pd-%d","aliases":[%q],"product_name":"Malloc disk","block_size":4096,"num_blocks":262144,"uuid":%q,%s,"claimed":true,"claim_type":"exclusive_write","zoned":false,%s,"memory_domains":[{"dma_device_id":"SPDK_ACCEL_DMA_DEVICE","dma_device_type":2}],"driver_specific":{}}`,
				pd, u, u, rateLimits, supportedIO)
		default:
			fmt.Fprintf(b, `{"name":"pd-%d","aliases":[],"product_name":"AIO disk","block_size":4096,"num_blocks":262144,"uuid":%q,%s,"claimed":true,"claim_type":"exclusive_write","zoned":false,%s,"driver_specific":{"aio":{"filename":"/var/lib/vda/pd-%d.img","block_size_override":true,"readonly":false}}}`,
				pd, u, rateLimits, supportedIO, pd)
		}
	})
}

// decodeBenchBdevs is 1,000 bdevs: a controller node's 125 arrays (750 bdevs: NVMe legs, raid0,
// passthrus, lvol) and a disk node's 50 malloc and aio disks with 200 lvols.
func decodeBenchBdevs() []byte {
	cn, dn := listingBdevs(125), listingDNBdevs(50, 4)
	return append(append(cn[:len(cn)-1:len(cn)-1], ','), dn[1:]...)
}

// BenchmarkDecodeBdevs decodes 1,000 bdevs of the shapes a controller node and a disk node
// list, one pass against encoding/json.
func BenchmarkDecodeBdevs(b *testing.B) {
	reply := decodeBenchBdevs()
	if bs, ok := decodeBdevs(reply); !ok || len(bs) != 1000 {
		b.Fatalf("not taken (%v) or not 1,000 bdevs (%d)", ok, len(bs))
	}
	b.Run("brief", func(b *testing.B) {
		b.SetBytes(int64(len(reply)))
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := decodeList(reply, (*fastParser).bdevBrief); !ok {
				b.Fatal("not taken")
			}
		}
	})
	b.Run("onepass", func(b *testing.B) {
		b.SetBytes(int64(len(reply)))
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := decodeBdevs(reply); !ok {
				b.Fatal("not taken")
			}
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.SetBytes(int64(len(reply)))
		b.ReportAllocs()
		for b.Loop() {
			var bs []Bdev
			if err := json.Unmarshal(reply, &bs); err != nil {
				b.Fatal(err)
			}
		}
	})
}

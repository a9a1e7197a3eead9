package spdk

import (
	"bytes"
	"context"
	"fmt"
	"testing"
)

// listingArrays is the number of disk arrays of the controller node whose listings the decode
// benchmarks answer with: per array two NVMe legs (bdevs and controllers), a raid0, two
// passthrus, a lvstore's lvol and an exporter subsystem, shaped like SPDK v24.01's answers
// (elements taken from the recordings in /work/shared/spdk/transcripts).
const listingArrays = 500

func hex32(i, salt int) string {
	return fmt.Sprintf("%016x%016x", uint64(i)*0x9e3779b97f4a7c15, uint64(i+salt))
}

func uuidOf(i, salt int) string {
	h := hex32(i, salt)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

const supportedIO = `"supported_io_types":{"read":true,"write":true,"unmap":true,"write_zeroes":true,"flush":true,"reset":true,"compare":false,"compare_and_write":false,"abort":false,"nvme_admin":false,"nvme_io":false}`
const rateLimits = `"assigned_rate_limits":{"rw_ios_per_sec":0,"rw_mbytes_per_sec":0,"r_mbytes_per_sec":0,"w_mbytes_per_sec":0}`

// listingBdevs is bdev_get_bdevs of a controller node with n arrays.
func listingBdevs(n int) []byte {
	var b bytes.Buffer
	b.WriteByte('[')
	sep := func() {
		if b.Len() > 1 {
			b.WriteByte(',')
		}
	}
	for i := 0; i < n; i++ {
		da := hex32(i, 1)
		raid := uuidOf(i, 2)
		legs := [2]string{}
		for l := 0; l < 2; l++ {
			legs[l] = fmt.Sprintf("vda:003-%sn1", hex32(i*2+l, 3))
			sep()
			fmt.Fprintf(&b, `{"name":%q,"aliases":[%q],"product_name":"NVMe disk","block_size":4096,"num_blocks":24576,"uuid":%q,%s,"claimed":true,"claim_type":"exclusive_write","zoned":false,%s,"driver_specific":{"nvme":[{"trid":{"trtype":"TCP","adrfam":"IPv4","traddr":"127.0.0.1","trsvcid":"4420","subnqn":"nqn.2016-06.io.vda:be-%s"},"ctrlr_data":{"cntlid":1,"vendor_id":"0x8086","model_number":"VDA_CONTROLLER","serial_number":"70b05eab596141a7f84c","firmware_revision":"24.01","subnqn":"nqn.2016-06.io.vda:be-%s","oacs":{"security":0,"format":0,"firmware":0,"ns_manage":0},"multi_ctrlr":true,"ana_reporting":false},"vs":{"nvme_version":"1.3"},"ns_data":{"id":1,"can_share":true}}],"mp_policy":"active_passive"}}`,
				legs[l], uuidOf(i*2+l, 4), uuidOf(i*2+l, 4), rateLimits, supportedIO, hex32(i*2+l, 3), hex32(i*2+l, 3))
		}
		sep()
		fmt.Fprintf(&b, `{"name":"vda-100-%s","aliases":[%q],"product_name":"Raid Volume","block_size":4096,"num_blocks":49152,"uuid":%q,%s,"claimed":true,"claim_type":"exclusive_write","zoned":false,%s,"driver_specific":{"raid":{"uuid":%q,"strip_size_kb":64,"state":"online","raid_level":"raid0","superblock":false,"num_base_bdevs":2,"num_base_bdevs_discovered":2,"num_base_bdevs_operational":2,"base_bdevs_list":[{"name":%q,"uuid":%q,"is_configured":true,"data_offset":0,"data_size":24576},{"name":%q,"uuid":%q,"is_configured":true,"data_offset":0,"data_size":24576}]}}}`,
			da, raid, raid, rateLimits, supportedIO, raid, legs[0], uuidOf(i*2, 4), legs[1], uuidOf(i*2+1, 4))
		for p := 0; p < 2; p++ {
			sep()
			fmt.Fprintf(&b, `{"name":"vda-%03d-%s","aliases":[%q],"product_name":"passthru","block_size":4096,"num_blocks":49152,"uuid":%q,%s,"claimed":true,"claim_type":"exclusive_write","zoned":false,%s,"driver_specific":{"passthru":{"name":"vda-%03d-%s","base_bdev_name":"vda-100-%s"}}}`,
				4+p, da, uuidOf(i, 5+p), uuidOf(i, 5+p), rateLimits, supportedIO, 4+p, da, da)
		}
		sep()
		lv := uuidOf(i, 7)
		fmt.Fprintf(&b, `{"name":%q,"aliases":["vda-001-%s/%s"],"product_name":"Logical Volume","block_size":4096,"num_blocks":24576,"uuid":%q,%s,"claimed":false,"zoned":false,%s,"memory_domains":[{"dma_device_id":"SPDK_ACCEL_DMA_DEVICE","dma_device_type":2}],"driver_specific":{"lvol":{"lvol_store_uuid":%q,"base_bdev":"vda-005-%s","thin_provision":false,"snapshot":false,"clone":false,"esnap_clone":false}}}`,
			lv, da, da, lv, rateLimits, supportedIO, uuidOf(i, 8), da)
	}
	b.WriteByte(']')
	return b.Bytes()
}

func listingSubsystems(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`[{"nqn":"nqn.2014-08.org.nvmexpress.discovery","subtype":"Discovery","listen_addresses":[],"allow_any_host":true,"hosts":[]}`)
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `,{"nqn":"nqn.2016-06.io.vda:exp-%s","subtype":"NVMe","listen_addresses":[{"trtype":"TCP","adrfam":"IPv4","traddr":"10.0.0.7","trsvcid":"4430"}],"allow_any_host":false,"hosts":[{"nqn":"nqn.2016-06.io.vda:host-%s"}],"serial_number":"%s","model_number":"VDA_EXPORTER","max_namespaces":32,"min_cntlid":1,"max_cntlid":65519,"namespaces":[{"nsid":1,"bdev_name":%q,"name":%q,"nguid":"%s","uuid":%q,"anagrpid":1}]}`,
			hex32(i, 9), hex32(i, 10), hex32(i, 11)[:20], uuidOf(i, 7), uuidOf(i, 7), hex32(i, 12), uuidOf(i, 7))
	}
	b.WriteByte(']')
	return b.Bytes()
}

// listing is a JSON array of n entries, each written by entry.
func listing(n int, entry func(b *bytes.Buffer, i int)) []byte {
	var b bytes.Buffer
	b.WriteByte('[')
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		entry(&b, i)
	}
	b.WriteByte(']')
	return b.Bytes()
}

func listingControllers(n int) []byte {
	return listing(2*n, func(b *bytes.Buffer, i int) {
		fmt.Fprintf(b, `{"name":"vda:003-%s","ctrlrs":[{"state":"enabled","trid":{"trtype":"TCP","adrfam":"IPv4","traddr":"127.0.0.1","trsvcid":"4420","subnqn":"nqn.2016-06.io.vda:be-%s"},"cntlid":1,"host":{"nqn":"nqn.2016-06.io.vda:fe-77a34538bbb02ca53b6e7a76002f2aaf","addr":"","svcid":""}}]}`,
			hex32(i, 3), hex32(i, 3))
	})
}

func listingRaids(n int) []byte {
	return listing(n, func(b *bytes.Buffer, i int) {
		fmt.Fprintf(b, `{"name":"vda-100-%s","uuid":%q,"strip_size_kb":64,"state":"online","raid_level":"raid0","superblock":false,"num_base_bdevs":2,"num_base_bdevs_discovered":2,"num_base_bdevs_operational":2,"base_bdevs_list":[{"name":"vda:003-%sn1","uuid":%q,"is_configured":true,"data_offset":0,"data_size":24576},{"name":"vda:003-%sn1","uuid":%q,"is_configured":true,"data_offset":0,"data_size":24576}]}`,
			hex32(i, 1), uuidOf(i, 2), hex32(i*2, 3), uuidOf(i*2, 4), hex32(i*2+1, 3), uuidOf(i*2+1, 4))
	})
}

func listingLvols(n int) []byte {
	return listing(n, func(b *bytes.Buffer, i int) {
		fmt.Fprintf(b, `{"alias":"vda-001-%s/%s","uuid":%q,"name":%q,"is_thin_provisioned":false,"is_snapshot":false,"is_clone":false,"is_esnap_clone":false,"is_degraded":false,"lvs":{"name":"vda-001-%s","uuid":%q}}`,
			hex32(i, 1), hex32(i, 1), uuidOf(i, 7), hex32(i, 1), hex32(i, 1), uuidOf(i, 8))
	})
}

// BenchmarkDecodeListing measures the client's whole read and decode path for one listing
// call of a controller node with listingArrays arrays: the reply is pre-encoded, so the time
// is the client's (framing, id matching, decoding into the typed result) plus one round trip
// on a unix socket. allocs/op includes the in-process server's few.
func BenchmarkDecodeListing(b *testing.B) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		body []byte
		call func(c *Client) error
	}{
		{"bdev_get_bdevs", listingBdevs(listingArrays), func(c *Client) error {
			_, err := c.BdevGetBdevs(ctx, BdevGetBdevsParams{})
			return err
		}},
		{"nvmf_get_subsystems", listingSubsystems(listingArrays), func(c *Client) error {
			_, err := c.NvmfGetSubsystems(ctx, NvmfGetSubsystemsParams{})
			return err
		}},
		{"bdev_nvme_get_controllers", listingControllers(listingArrays), func(c *Client) error {
			_, err := c.BdevNvmeGetControllers(ctx, BdevNvmeGetControllersParams{})
			return err
		}},
		{"bdev_raid_get_bdevs", listingRaids(listingArrays), func(c *Client) error {
			_, err := c.BdevRaidGetBdevs(ctx, BdevRaidGetBdevsParams{Category: "all"})
			return err
		}},
		{"bdev_lvol_get_lvols", listingLvols(listingArrays), func(c *Client) error {
			_, err := c.BdevLvolGetLvols(ctx, BdevLvolGetLvolsParams{})
			return err
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			body := tc.body
			s := newTestServer(b, func(r *serverReq) { r.replyRawResult(body) })
			c := dialTest(b, s)
			if err := tc.call(c); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if err := tc.call(c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

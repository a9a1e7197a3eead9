package main

import (
	"context"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	pb "github.com/vda-io/vda/api/portalpb"
	"github.com/vda-io/vda/internal/portalcli"
)

// daQoSFlags are the --qos-* flags of da modify, each one QosMsg field.
var daQoSFlags = []struct {
	name, usage string
	field       func(q *pb.QosMsg) *uint64
}{
	{"qos-rw-iops", "read+write IOPS limit, a multiple of 1000 (0: none)", func(q *pb.QosMsg) *uint64 { return &q.RwIosPerSec }},
	{"qos-rw-mbps", "read+write bandwidth limit in MiB/s (0: none)", func(q *pb.QosMsg) *uint64 { return &q.RwMbytesPerSec }},
	{"qos-r-mbps", "read bandwidth limit in MiB/s (0: none)", func(q *pb.QosMsg) *uint64 { return &q.RMbytesPerSec }},
	{"qos-w-mbps", "write bandwidth limit in MiB/s (0: none)", func(q *pb.QosMsg) *uint64 { return &q.WMbytesPerSec }},
}

// daModifyCmd is da modify. The QoS flags given change those limits and
// keep the others: the command reads the DA's limits first (a concurrent
// QoS change between the read and the modify is overwritten).
func (c *cli) daModifyCmd() *cobra.Command {
	var name string
	return portalcli.Leaf("modify", "Change a disk array: description, grow its volume online, QoS limits",
		host+" da modify --da-name da0 --da-size 67108864 --qos-rw-iops 20000 --qos-w-mbps 100",
		func(f *pflag.FlagSet) {
			f.StringVar(&name, "da-name", "", "disk array name")
			f.String("description", "", "free text")
			f.Uint64("da-size", 0, "grow the volume to this many bytes (a multiple of the cluster size, at most what the array holds; never shrinks)")
			for _, q := range daQoSFlags {
				f.Uint64(q.name, 0, q.usage)
			}
			c.waitFlag(f, "the disk array is healthy (with --da-size: and its primary grew the volume)")
		}, []string{"da-name"},
		func(cmd *cobra.Command) error {
			r := &pb.ModifyDaRequest{DaName: name, Description: optString(cmd, "description")}
			if cmd.Flags().Changed("da-size") {
				v, _ := cmd.Flags().GetUint64("da-size")
				r.DaSize = &v
			}
			qos := false
			for _, q := range daQoSFlags {
				qos = qos || cmd.Flags().Changed(q.name)
			}
			w := c.waitDA(name, false)
			if r.DaSize != nil {
				w = c.waitDASize(name, *r.DaSize)
			}
			return callWait(c, cmd, w, func(ctx context.Context, p pb.PortalClient) (*pb.DaReply, error) {
				if qos {
					cur, err := p.GetDa(ctx, &pb.GetDaRequest{DaName: name})
					if err != nil {
						return nil, err
					}
					r.Qos = &pb.QosMsg{}
					if q := cur.GetDaMsg().GetQos(); q != nil {
						r.Qos = &pb.QosMsg{RwIosPerSec: q.RwIosPerSec, RwMbytesPerSec: q.RwMbytesPerSec,
							RMbytesPerSec: q.RMbytesPerSec, WMbytesPerSec: q.WMbytesPerSec}
					}
					for _, q := range daQoSFlags {
						if cmd.Flags().Changed(q.name) {
							*q.field(r.Qos), _ = cmd.Flags().GetUint64(q.name)
						}
					}
				}
				return p.ModifyDa(ctx, r)
			})
		})
}

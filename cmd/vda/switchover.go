package main

import (
	"context"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	pb "github.com/vda-io/vda/api/portalpb"
	"github.com/vda-io/vda/internal/portalcli"
)

// daSwitchoverCmd is "vda da switchover": a planned move of the primary.
func (c *cli) daSwitchoverCmd() *cobra.Command {
	var r pb.SwitchoverDaRequest
	cmd := portalcli.Leaf("switchover", "Move a disk array's primary to another of its controllers",
		host+" da switchover --da-name da0 --cntlr-idx 1",
		func(f *pflag.FlagSet) {
			f.StringVar(&r.DaName, "da-name", "", "disk array name")
			f.Uint32Var(&r.CntlrIdx, "cntlr-idx", 0, "index of the controller to promote (see da get)")
			c.waitFlag(f, "the disk array is healthy on its new primary")
		}, []string{"da-name", "cntlr-idx"},
		func(cmd *cobra.Command) error {
			return callWait(c, cmd, c.waitDA(r.DaName, false), func(ctx context.Context, p pb.PortalClient) (*pb.DaReply, error) { return p.SwitchoverDa(ctx, &r) })
		})
	cmd.Long = "Switchover commits the new primary and a higher epoch. The monitor then fences the\n" +
		"virtual disks (their disk nodes admit only the new primary), promotes it and re-points\n" +
		"every other controller. A controller on an offline or failed controller node is refused."
	return cmd
}

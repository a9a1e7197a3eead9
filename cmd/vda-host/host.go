package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	pb "github.com/vda-io/vda/api/portalpb"
	"github.com/vda-io/vda/internal/portalcli"
	"github.com/vda-io/vda/internal/strictjson"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/spdk/spdktest/fabric"
)

// hostFlags select an exported subsystem and how to reach it: either
// --nqn/--host-nqn/--path given directly, or --da-name/--exp-name looked up
// through the portal (exp get), which gives the NQN, the initiator NQN and
// a path to every controller's CN.
type hostFlags struct {
	nqn, hostNQN, da, exp string
	paths                 []string
	nsid                  uint32
	ioTimeout             time.Duration
}

func (h *hostFlags) register(f *pflag.FlagSet) {
	f.StringVar(&h.da, "da-name", "", "disk array whose exporter to use (looked up through the portal)")
	f.StringVar(&h.exp, "exp-name", "", "exporter to use, with --da-name")
	f.StringVar(&h.nqn, "nqn", "", "subsystem NQN (instead of --da-name/--exp-name)")
	f.StringVar(&h.hostNQN, "host-nqn", "", "host NQN to connect as (default: the exporter's initiator NQN)")
	f.StringSliceVar(&h.paths, "path", nil, "traddr:trsvcid of a controller path; repeat for multipath (default: every controller of the exporter)")
	f.Uint32Var(&h.nsid, "nsid", 1, "namespace ID")
	f.DurationVar(&h.ioTimeout, "io-timeout", 2*time.Minute, "how long one I/O may wait for a working path")
}

// resolve fills in what --da-name/--exp-name imply.
func (h *hostFlags) resolve(c *cli, cmd *cobra.Command) error {
	if h.da != "" || h.exp != "" {
		if h.da == "" || h.exp == "" {
			return fmt.Errorf("%w: --da-name and --exp-name go together", portalcli.ErrUsage)
		}
		cl, err := c.portal.Client()
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), c.portal.Timeout)
		defer cancel()
		r, err := cl.GetExp(ctx, &pb.GetExpRequest{DaName: h.da, ExpName: h.exp})
		if err != nil {
			return err
		}
		if h.nqn == "" {
			h.nqn = r.GetExpMsg().GetExpNqn()
		}
		if h.hostNQN == "" {
			h.hostNQN = r.GetExpMsg().GetInitiatorNqn()
		}
		if len(h.paths) == 0 {
			for _, es := range r.GetExpMsg().GetEsMsgList() {
				tid, err := nvmeof.ParseListenerConf(es.GetCnListenerConf())
				if err != nil {
					return fmt.Errorf("controller %d: %w", es.GetCntlrIdx(), err)
				}
				h.paths = append(h.paths, net.JoinHostPort(tid.TrAddr, tid.TrSvcID))
			}
		}
	}
	switch {
	case h.nqn == "":
		return fmt.Errorf("%w: give --nqn or --da-name and --exp-name", portalcli.ErrUsage)
	case h.hostNQN == "":
		return fmt.Errorf("%w: give --host-nqn", portalcli.ErrUsage)
	case len(h.paths) == 0:
		return fmt.Errorf("%w: give at least one --path", portalcli.ErrUsage)
	}
	return nil
}

// open connects a multipath host as the flags say.
func (h *hostFlags) open(c *cli, cmd *cobra.Command) (*fabric.Multipath, error) {
	if err := h.resolve(c, cmd); err != nil {
		return nil, err
	}
	var paths []fabric.TransportID
	for _, p := range h.paths {
		addr, port, err := net.SplitHostPort(p)
		if err != nil {
			return nil, fmt.Errorf("%w: --path %q: %w", portalcli.ErrUsage, p, err)
		}
		fam := "IPv4"
		if ip := net.ParseIP(addr); ip != nil && ip.To4() == nil {
			fam = "IPv6"
		}
		paths = append(paths, fabric.TransportID{TrType: "TCP", AdrFam: fam, TrAddr: addr, TrSvcID: port})
	}
	m, err := fabric.NewMultipath(paths, h.nqn, h.hostNQN, fabric.DefaultMultipathOptions())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", portalcli.ErrUsage, err)
	}
	return m, nil
}

// ioContext bounds one host I/O (or a whole pass) by --io-timeout.
func (h *hostFlags) ioContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), h.ioTimeout)
}

// fillPattern fills p, which starts at byte off (both multiples of 4096),
// with seed's pattern: every 4 KiB block from its own generator, so any
// block-aligned range can be checked on its own.
func fillPattern(p []byte, seed uint64, off int64) {
	for i := 0; i < len(p); i += 4096 {
		r := rand.New(rand.NewPCG(seed, uint64(off+int64(i))/4096))
		for j := i; j < i+4096 && j+8 <= len(p); j += 8 {
			binary.LittleEndian.PutUint64(p[j:], r.Uint64())
		}
	}
}

// writeCmd is "write" (verify=false) or "verify".
func (c *cli) writeCmd(verify bool) *cobra.Command {
	var h hostFlags
	var off, length int64
	var seed uint64
	use, short := "write", "Write a seeded pattern through an exporter"
	if verify {
		use, short = "verify", "Read back and check the pattern that write wrote"
	}
	return portalcli.Leaf(use, short, example+" "+use+" --da-name da0 --exp-name exp0 --offset 0 --length 1048576 --seed 7",
		func(f *pflag.FlagSet) {
			h.register(f)
			f.Int64Var(&off, "offset", 0, "byte offset (a multiple of 4096)")
			f.Int64Var(&length, "length", 1<<20, "bytes (a multiple of 4096)")
			f.Uint64Var(&seed, "seed", 1, "pattern seed")
		}, nil,
		func(cmd *cobra.Command) error {
			if off < 0 || length <= 0 || off%4096 != 0 || length%4096 != 0 || length > 1<<30 {
				return fmt.Errorf("%w: --offset and --length must be multiples of 4096, length 4096..1GiB", portalcli.ErrUsage)
			}
			m, err := h.open(c, cmd)
			if err != nil {
				return err
			}
			defer m.Close()
			ctx, cancel := h.ioContext()
			defer cancel()
			want := make([]byte, length)
			fillPattern(want, seed, off)
			start := time.Now()
			if !verify {
				if err := m.WriteAt(ctx, h.nsid, want, off); err != nil {
					return portalcli.Failed{Err: fmt.Errorf("write: %w", err)}
				}
			} else {
				got := make([]byte, length)
				if err := m.ReadAt(ctx, h.nsid, got, off); err != nil {
					return portalcli.Failed{Err: fmt.Errorf("read: %w", err)}
				}
				if !bytes.Equal(got, want) {
					return portalcli.Failed{Err: fmt.Errorf("verify: the %d bytes at %d differ from seed %d's pattern", length, off, seed)}
				}
			}
			return portalcli.WriteJSON(c.out, map[string]any{"op": use, "nqn": h.nqn, "offset": off, "length": length, "seed": seed,
				"elapsed_ms": time.Since(start).Milliseconds(), "paths": pathStates(m)})
		})
}

func (c *cli) runCmd() *cobra.Command {
	var h hostFlags
	var blocks uint64
	var duration time.Duration
	var count uint64
	var resultFile string
	return portalcli.Leaf("run", "Write numbered blocks until stopped; print what was acknowledged",
		example+" run --da-name da0 --exp-name exp0 --duration 30s --result /tmp/run.json",
		func(f *pflag.FlagSet) {
			h.register(f)
			f.Uint64Var(&blocks, "blocks", 1024, "ring size in 4 KiB blocks")
			f.DurationVar(&duration, "duration", 0, "stop after this long (0: at SIGINT/SIGTERM)")
			f.Uint64Var(&count, "count", 0, "stop after this many acknowledged writes (0: no limit)")
			f.StringVar(&resultFile, "result", "", "also write the result JSON to this file")
		}, nil,
		func(cmd *cobra.Command) error {
			m, err := h.open(c, cmd)
			if err != nil {
				return err
			}
			defer m.Close()
			// Progress on stderr, at most once a second: a long run
			// (or one waiting out a failover) is not silent.
			var lastReport time.Time
			start := time.Now()
			w := fabric.SeqWorkload{NSID: h.nsid, BlockSize: 4096, Blocks: blocks, Duration: duration, Count: count,
				Stop: cmd.Context().Done(), OnAck: func(n uint64) {
					if now := time.Now(); now.Sub(lastReport) >= time.Second {
						lastReport = now
						fmt.Fprintf(cmd.ErrOrStderr(), "{\"acked\": %d, \"elapsed_ms\": %d}\n", n, now.Sub(start).Milliseconds())
					}
				}}
			ctx, cancel := h.ioContext()
			defer cancel()
			res, runErr := fabric.RunSeq(ctx, m, w)
			if err := saveResult(resultFile, res); err != nil {
				return err
			}
			if err := portalcli.WriteJSON(c.out, res); err != nil {
				return err
			}
			if runErr != nil {
				return portalcli.Failed{Err: runErr}
			}
			return nil
		})
}

func (c *cli) checkCmd() *cobra.Command {
	var h hostFlags
	var resultFile string
	return portalcli.Leaf("check", "Check that every write that run acknowledged reads back",
		example+" check --da-name da0 --exp-name exp0 --result /tmp/run.json",
		func(f *pflag.FlagSet) {
			h.register(f)
			f.StringVar(&resultFile, "result", "", "the result JSON run wrote")
		}, []string{"result"},
		func(cmd *cobra.Command) error {
			raw, err := os.ReadFile(resultFile)
			if err != nil {
				return fmt.Errorf("%w: %w", portalcli.ErrUsage, err)
			}
			var res fabric.SeqResult
			if err := strictjson.Decode(raw, &res); err != nil {
				return fmt.Errorf("%w: %s: %w", portalcli.ErrUsage, resultFile, err)
			}
			m, err := h.open(c, cmd)
			if err != nil {
				return err
			}
			defer m.Close()
			ctx, cancel := h.ioContext()
			defer cancel()
			if err := fabric.VerifySeq(ctx, m, res); err != nil {
				return portalcli.Failed{Err: err}
			}
			return portalcli.WriteJSON(c.out, map[string]any{"op": "check", "acked": res.Acked, "blocks": res.Blocks, "ok": true,
				"paths": pathStates(m)})
		})
}

func (c *cli) pathsCmd() *cobra.Command {
	var h hostFlags
	return portalcli.Leaf("paths", "Connect to every path and show its ANA state",
		example+" paths --da-name da0 --exp-name exp0",
		h.register, nil,
		func(cmd *cobra.Command) error {
			m, err := h.open(c, cmd)
			if err != nil {
				return err
			}
			defer m.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), c.portal.Timeout)
			defer cancel()
			connErr := m.Connect(ctx)
			out := map[string]any{"nqn": h.nqn, "host_nqn": h.hostNQN, "paths": pathStates(m)}
			if connErr != nil {
				out["error"] = connErr.Error()
			}
			return portalcli.WriteJSON(c.out, out)
		})
}

func pathStates(m *fabric.Multipath) []map[string]any {
	var out []map[string]any
	for _, p := range m.Paths() {
		out = append(out, map[string]any{"address": net.JoinHostPort(p.Addr.TrAddr, p.Addr.TrSvcID),
			"connected": p.Connected, "ana_state": p.ANAState})
	}
	return out
}

func saveResult(path string, res fabric.SeqResult) error {
	if path == "" {
		return nil
	}
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

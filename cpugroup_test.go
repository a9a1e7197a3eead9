package vda_test

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The cgroup v1 hierarchies a cpuGroup makes its groups in: the cpu
// controller (the CFS quota, and its throttling counts) and cpuacct (the
// CPU the group used). They may be one hierarchy mounted as both.
const (
	cgroupCPURoot  = "/sys/fs/cgroup/cpu"
	cgroupAcctRoot = "/sys/fs/cgroup/cpuacct"
	cfsPeriodUs    = 100000
)

// cpuGroup is a cgroup v1 group with a CFS CPU quota, made for a
// benchmark's process: everything it runs is held to the quota (the
// kernel throttles it for the rest of each 100 ms period once it used its
// share), as on a machine or container of that many cores.
type cpuGroup struct {
	cpu, acct string // the group's directories (equal if co-mounted)
}

// cgroupsUsable says why cpuGroups cannot be made here, or nil.
func cgroupsUsable() error {
	for _, f := range []string{filepath.Join(cgroupCPURoot, "cpu.cfs_quota_us"), filepath.Join(cgroupAcctRoot, "cpuacct.usage")} {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("no cgroup v1 cpu and cpuacct controllers mounted at %s and %s: %w", cgroupCPURoot, cgroupAcctRoot, err)
		}
	}
	if os.Geteuid() != 0 {
		return errors.New("making cgroups needs root")
	}
	return nil
}

// newCPUGroup makes the group name with a quota of cores CPUs (0: no
// quota, the group only counts).
func newCPUGroup(name string, cores float64) (*cpuGroup, error) {
	cpuRoot, err := filepath.EvalSymlinks(cgroupCPURoot)
	if err != nil {
		return nil, err
	}
	acctRoot, err := filepath.EvalSymlinks(cgroupAcctRoot)
	if err != nil {
		return nil, err
	}
	g := &cpuGroup{cpu: filepath.Join(cpuRoot, name), acct: filepath.Join(acctRoot, name)}
	if err := os.Mkdir(g.cpu, 0o755); err != nil {
		return nil, err
	}
	if g.acct != g.cpu {
		if err := os.Mkdir(g.acct, 0o755); err != nil {
			_ = os.Remove(g.cpu)
			return nil, err
		}
	}
	quota := -1
	if cores > 0 {
		quota = int(cores * cfsPeriodUs)
	}
	if err := g.write("cpu.cfs_period_us", cfsPeriodUs); err == nil {
		err = g.write("cpu.cfs_quota_us", quota)
	}
	if err != nil {
		return nil, errors.Join(err, g.remove())
	}
	return g, nil
}

func (g *cpuGroup) write(file string, v int) error {
	return os.WriteFile(filepath.Join(g.cpu, file), []byte(strconv.Itoa(v)), 0o644)
}

// add moves the process pid, with all its threads, into the group; the
// threads it starts later are born in it.
func (g *cpuGroup) add(pid int) error {
	for _, dir := range g.dirs() {
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func (g *cpuGroup) dirs() []string {
	if g.acct == g.cpu {
		return []string{g.cpu}
	}
	return []string{g.cpu, g.acct}
}

// cpuSample is what a group used up to a moment.
type cpuSample struct {
	used      time.Duration // CPU time of every task in the group
	periods   int64         // CFS periods in which the group ran
	throttled int64         // of those, the ones in which it hit its quota
}

// sample reads the group's counters.
func (g *cpuGroup) sample() (cpuSample, error) {
	var s cpuSample
	b, err := os.ReadFile(filepath.Join(g.acct, "cpuacct.usage"))
	if err != nil {
		return s, err
	}
	ns, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return s, err
	}
	s.used = time.Duration(ns)
	f, err := os.Open(filepath.Join(g.cpu, "cpu.stat"))
	if err != nil {
		return s, err
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		n, _ := strconv.ParseInt(v, 10, 64)
		switch k {
		case "nr_periods":
			s.periods = n
		case "nr_throttled":
			s.throttled = n
		}
	}
	return s, sc.Err()
}

// remove deletes the group, which must have no process left.
func (g *cpuGroup) remove() error {
	var errs []error
	for _, dir := range g.dirs() {
		if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

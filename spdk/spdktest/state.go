package spdktest

import (
	"encoding/json"
	"sync"
)

// state is the volatile state of one fake SPDK process. Handlers run with mu
// held unless registered unlocked.
type state struct {
	in  *instance
	mu  sync.Mutex
	cfg Config

	initialized bool
	dying       bool          // crash was called: the instance is going away
	initDone    chan struct{} // closed by framework_start_init
	autoExamine bool
	nvmeOptions nvmeOptions
	// hostNQN is the default host NQN of this process, from its random
	// host ID, as SPDK's nvme_get_default_hostnqn.
	hostNQN string

	// waiting holds, by name, the channel closed when a bdev of that
	// name, alias or uuid is registered (bdev_get_bdevs with a timeout).
	// One channel for every registration woke every waiter of a node on
	// each new bdev: a promotion of 1,000 arrays has up to cnParallel
	// lvol waits in flight while thousands of bdevs register.
	waiting map[string]chan struct{}

	bdevs        []*bdev          // registration order
	byName       map[string]*bdev // name, every alias and the uuid
	mallocSeq    int
	examined     map[string]bool // bdev_examine names, examined or pending
	pendingExams []*examJob
	examDone     chan struct{} // closed and replaced when pendingExam drops to 0

	lvstores   []*lvstore // creation or load order
	lvsByName  map[string]*lvstore
	lvsByUUID  map[string]*lvstore
	lvsPending map[string]bool // names of lvstores being created
	passthrus  map[string]*passthruCfg
	raids      []*raid
	transports []*transport
	subsystems map[string]*subsystem
	// subsysListLen and bdevListLen size the next nvmf_get_subsystems and
	// bdev_get_bdevs listings' buffers.
	subsysListLen, bdevListLen int
	// maxSubsystems is what nvmf_set_max_subsystems set, 0 for SPDK's
	// default (subsystemLimit).
	maxSubsystems uint32
	ctrlrs        []*nvmeCtrlr // attach order
	// ctrlrByName indexes ctrlrs by name.
	ctrlrByName map[string]*nvmeCtrlr
	// ctrlrsBySubNQN lists, by subsystem NQN, the controllers that have
	// had a path of it: owner's candidates (pruned as owner meets them).
	ctrlrsBySubNQN map[string][]*nvmeCtrlr
	fab            fabricTarget
}

func newState(in *instance, waitForRPC bool) *state {
	s := &state{
		in:             in,
		cfg:            in.t.cfg,
		initialized:    !waitForRPC,
		initDone:       make(chan struct{}),
		autoExamine:    true,
		hostNQN:        "nqn.2014-08.org.nvmexpress:uuid:" + newUUID(),
		waiting:        map[string]chan struct{}{},
		byName:         map[string]*bdev{},
		examined:       map[string]bool{},
		examDone:       make(chan struct{}),
		passthrus:      map[string]*passthruCfg{},
		subsystems:     newSubsystems(),
		ctrlrByName:    map[string]*nvmeCtrlr{},
		ctrlrsBySubNQN: map[string][]*nvmeCtrlr{},
		lvsByName:      map[string]*lvstore{},
		lvsByUUID:      map[string]*lvstore{},
		lvsPending:     map[string]bool{},
	}
	close(s.examDone)
	if !waitForRPC {
		close(s.initDone)
	}
	s.fab = newFabric(s)
	return s
}

// shutdown stops background work and closes every device and socket the
// state holds. It runs once, when the instance stops.
func (s *state) shutdown() {
	s.mu.Lock()
	exams := s.pendingExams
	s.pendingExams = nil
	ctrlrs := s.ctrlrs
	s.ctrlrs = nil
	clear(s.ctrlrByName)
	clear(s.ctrlrsBySubNQN)
	bdevs := s.bdevs
	s.mu.Unlock()
	for _, j := range exams {
		j.timer.Stop()
	}
	for _, c := range ctrlrs {
		c.closeAll()
	}
	s.fab.Close()
	for _, b := range bdevs {
		b.close()
	}
}

// crash makes the instance die as real SPDK does on the same sequence
// (see Target.Crashes). It returns at once: the instance stops in the
// background, like a process that aborts while the caller's request is
// still being handled. Called with s.mu held.
func (s *state) crash(reason string) {
	if s.dying {
		return
	}
	s.dying = true
	// Recorded now, not in the background stop: a caller that saw the
	// connection drop finds the reason in Crashes (t.mu is a leaf lock).
	s.in.t.noteCrash(reason)
	// Not in s.in.wg: stopping the instance waits for that group.
	go s.in.t.crashed(s.in)
}

// isDying reports whether crash was called.
func (s *state) isDying() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dying
}

func init() {
	register("spdk_get_version", phaseBoth, getVersion)
	register("rpc_get_methods", phaseBoth, rpcGetMethods)
	register("framework_start_init", phaseStartup, frameworkStartInit)
	registerUnlocked("framework_wait_init", phaseBoth, frameworkWaitInit)
	register("bdev_set_options", phaseStartup, bdevSetOptions)
	register("nvmf_set_config", phaseStartup, nvmfSetConfig)
	register("nvmf_set_max_subsystems", phaseStartup, nvmfSetMaxSubsystems)
	register("sock_impl_set_options", phaseStartup, acceptAnyObject)
	register("iobuf_set_options", phaseStartup, acceptAnyObject)
	register("accel_set_options", phaseStartup, acceptAnyObject)
	register("framework_set_scheduler", phaseBoth, acceptAnyObject)
	registerUnlocked("spdk_kill_instance", phaseBoth, killInstance)
}

type versionFields struct {
	Major  int    `json:"major"`
	Minor  int    `json:"minor"`
	Patch  int    `json:"patch"`
	Suffix string `json:"suffix"`
	Commit string `json:"commit"`
}

type versionResult struct {
	Version string        `json:"version"`
	Fields  versionFields `json:"fields"`
}

func getVersion(_ *state, params json.RawMessage) (any, *Error) {
	if err := noParams("spdk_get_version", params); err != nil {
		return nil, err
	}
	return versionResult{
		Version: "SPDK v24.01 git sha1 0786843e99",
		Fields:  versionFields{Major: 24, Minor: 1, Patch: 0, Commit: "0786843e99"},
	}, nil
}

func rpcGetMethods(s *state, params json.RawMessage) (any, *Error) {
	var p struct {
		Current        bool `json:"current"`
		IncludeAliases bool `json:"include_aliases"`
	}
	if err := decodeParams(params, &p); err != nil {
		return nil, err
	}
	if !p.Current {
		return allMethods, nil
	}
	if !s.initialized {
		return startupMethods, nil
	}
	out := make([]string, 0, len(allMethods))
	for _, m := range allMethods {
		if h, ok := handlers[m]; ok && h.phase&phaseRuntime == 0 {
			continue
		}
		out = append(out, m)
	}
	return out, nil
}

func frameworkStartInit(s *state, params json.RawMessage) (any, *Error) {
	if err := noParams("framework_start_init", params); err != nil {
		return nil, err
	}
	// The dispatcher refuses a second call (the method is startup-only),
	// but the handler must not rely on it: closing initDone twice panics.
	if s.initialized {
		return nil, rpcErr(-1, msgBeforeInit)
	}
	s.initialized = true
	close(s.initDone)
	return true, nil
}

// frameworkWaitInit answers once framework_start_init has run
// (asynchronously before).
func frameworkWaitInit(s *state, params json.RawMessage) (any, *Error) {
	if err := noParams("framework_wait_init", params); err != nil {
		return nil, err
	}
	wait := func() (any, *Error) {
		select {
		case <-s.initDone:
			return true, nil
		case <-s.in.done:
			return nil, rpcErr(-1, msgAfterInit)
		}
	}
	select {
	case <-s.initDone:
		return true, nil
	case <-s.in.done:
		return wait()
	default:
	}
	return async(wait), nil
}

func bdevSetOptions(s *state, params json.RawMessage) (any, *Error) {
	var p struct {
		PoolSize       *uint32 `json:"bdev_io_pool_size"`
		CacheSize      *uint32 `json:"bdev_io_cache_size"`
		AutoExamine    *bool   `json:"bdev_auto_examine"`
		SmallCacheSize *uint32 `json:"iobuf_small_cache_size"`
		LargeCacheSize *uint32 `json:"iobuf_large_cache_size"`
	}
	if err := decodeParams(params, &p); err != nil {
		return nil, err
	}
	if p.AutoExamine != nil {
		s.autoExamine = *p.AutoExamine
	}
	return true, nil
}

func nvmfSetConfig(_ *state, params json.RawMessage) (any, *Error) {
	var p struct {
		DiscoveryFilter  string `json:"discovery_filter"`
		AdminCmdPassthru *struct {
			IdentifyCtrlr bool `json:"identify_ctrlr"`
		} `json:"admin_cmd_passthru"`
		PollGroupsMask string `json:"poll_groups_mask"`
		DhchapDigests  []any  `json:"dhchap_digests"`
		DhchapDhgroups []any  `json:"dhchap_dhgroups"`
	}
	if err := decodeParams(params, &p); err != nil {
		return nil, err
	}
	return true, nil
}

// nvmfSetMaxSubsystems is SPDK's rpc_nvmf_set_max_subsystems: the member
// is optional, 0 leaves the default, and once a limit is set another call
// fails (so 0 may be set any number of times before it).
func nvmfSetMaxSubsystems(s *state, params json.RawMessage) (any, *Error) {
	var p struct {
		Max uint32 `json:"max_subsystems"`
	}
	if s.maxSubsystems != 0 {
		return nil, rpcErr(codeInternalError, "Must not call more than once")
	}
	if err := decodeParams(params, &p); err != nil {
		return nil, err
	}
	s.maxSubsystems = p.Max
	return true, nil
}

// subsystemLimit is how many subsystems the target holds, its discovery
// subsystem included: nvmf_set_max_subsystems's value, or SPDK's default
// (SPDK_NVMF_DEFAULT_MAX_SUBSYSTEMS).
func (s *state) subsystemLimit() int {
	if s.maxSubsystems == 0 {
		return 1024
	}
	return int(s.maxSubsystems)
}

// acceptAnyObject stands in for option setters whose options the fake does
// not model: any object is accepted.
func acceptAnyObject(_ *state, params json.RawMessage) (any, *Error) {
	if params != nil && firstByte(params) != '{' {
		return nil, errDecode
	}
	return true, nil
}

var killSignals = map[string]bool{"SIGINT": true, "SIGTERM": true, "SIGQUIT": true, "SIGHUP": true, "SIGKILL": true}

// killInstance replies true, then stops the instance once the reply is out.
func killInstance(s *state, params json.RawMessage) (any, *Error) {
	var p struct {
		Sig string `json:"sig_name"`
	}
	if err := decodeParams(params, &p, "sig_name"); err != nil {
		return nil, err
	}
	if !killSignals[p.Sig] {
		return nil, errInvalParams
	}
	return afterReply{result: true, fn: func() { s.in.t.exit(s.in) }}, nil
}

package spdktest

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/vda-io/vda/spdk/spdktest/blockdev"
	"github.com/vda-io/vda/spdk/spdktest/fabric"
)

// DefaultNVMeBlockSize is the LBA size of an NVMeDevice that does not set one.
const DefaultNVMeBlockSize = 4096

// NVMeDevice is a local NVMe SSD on the fake target's PCIe bus.
// bdev_nvme_attach_controller with trtype "PCIe" and this TrAddr attaches
// it, and its one namespace becomes the bdev "<name>n1" holding real bytes.
//
// Like hardware, a device outlives the spdk_tgt process that uses it: its
// bytes survive Crash and Restart of the Target, and with Path they also
// survive the Go process, since they are in the file (as aio bdevs do).
type NVMeDevice struct {
	// TrAddr is the PCI address, e.g. "0000:01:00.0" (the domain may be
	// left out: "01:00.0"). Required; one device per address.
	TrAddr string
	// Path, when set, keeps the namespace's bytes in this file. A missing
	// file is created (sparse) with SizeBytes; an existing file keeps its
	// size, and SizeBytes must then be zero or that size.
	Path string
	// SizeBytes is the namespace capacity, a multiple of BlockSize.
	// Required without Path.
	SizeBytes uint64
	// BlockSize is the LBA size, a multiple of 512; zero means
	// DefaultNVMeBlockSize.
	BlockSize uint32
	// SerialNumber and ModelNumber are what identify reports; empty means
	// derived from TrAddr.
	SerialNumber string
	ModelNumber  string
}

// localNVMe is a configured device with its open data path.
type localNVMe struct {
	cfg    NVMeDevice // TrAddr canonical
	dev    blockdev.Device
	uuid   string // namespace UUID, stable per address
	subnqn string
	close  func() error
}

// ParsePCIAddr parses a PCI address as SPDK's spdk_pci_addr_parse does
// ("DDDD:BB:DD.F" or "BB:DD.F", hexadecimal) and returns its canonical
// form "dddd:bb:dd.f".
func ParsePCIAddr(s string) (string, error) {
	parts := strings.Split(s, ":")
	if len(parts) == 2 {
		parts = append([]string{"0"}, parts...)
	}
	if len(parts) != 3 {
		return "", fmt.Errorf("%w: pci address %q: want [domain:]bus:device.function", ErrConfig, s)
	}
	devFn := strings.Split(parts[2], ".")
	if len(devFn) != 2 {
		return "", fmt.Errorf("%w: pci address %q: want [domain:]bus:device.function", ErrConfig, s)
	}
	limits := []uint64{0xffffffff, 0xff, 0x1f, 7}
	var v [4]uint64
	for i, f := range []string{parts[0], parts[1], devFn[0], devFn[1]} {
		n, err := strconv.ParseUint(f, 16, 32)
		if err != nil || f == "" || n > limits[i] {
			return "", fmt.Errorf("%w: pci address %q: field %q out of range", ErrConfig, s, f)
		}
		v[i] = n
	}
	return fmt.Sprintf("%04x:%02x:%02x.%x", v[0], v[1], v[2], v[3]), nil
}

// ParseNVMeDevice parses the command-line form of an NVMeDevice:
// "ADDR,file=PATH[,size=SIZE][,block-size=N]" or "ADDR,size=SIZE[,...]",
// where SIZE is bytes or a number with a KiB, MiB, GiB or TiB suffix, and
// "serial=" and "model=" set the identify strings.
func ParseNVMeDevice(s string) (NVMeDevice, error) {
	fields := strings.Split(s, ",")
	d := NVMeDevice{TrAddr: fields[0]}
	for _, f := range fields[1:] {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return d, fmt.Errorf("%w: nvme device %q: %q is not key=value", ErrConfig, s, f)
		}
		var err error
		switch k {
		case "file":
			d.Path = v
		case "size":
			d.SizeBytes, err = parseSize(v)
		case "block-size":
			var n uint64
			n, err = strconv.ParseUint(v, 10, 32)
			d.BlockSize = uint32(n)
		case "serial":
			d.SerialNumber = v
		case "model":
			d.ModelNumber = v
		default:
			err = errors.New("unknown key")
		}
		if err != nil {
			return d, fmt.Errorf("%w: nvme device %q: %s: %v", ErrConfig, s, k, err)
		}
	}
	return d, nil
}

func parseSize(s string) (uint64, error) {
	mult := uint64(1)
	for i, suf := range []string{"KiB", "MiB", "GiB", "TiB"} {
		if strings.HasSuffix(s, suf) {
			mult = 1 << (10 * (i + 1))
			s = strings.TrimSuffix(s, suf)
			break
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, err
	}
	if n > ^uint64(0)/mult {
		return 0, errors.New("too large")
	}
	return n * mult, nil
}

// openNVMeDevices validates the configured devices and opens their data.
func openNVMeDevices(list []NVMeDevice) (map[string]*localNVMe, error) {
	out := map[string]*localNVMe{}
	fail := func(err error) (map[string]*localNVMe, error) {
		closeNVMeDevices(out)
		return nil, err
	}
	for _, d := range list {
		addr, err := ParsePCIAddr(d.TrAddr)
		if err != nil {
			return fail(err)
		}
		if out[addr] != nil {
			return fail(fmt.Errorf("%w: nvme device %s configured twice", ErrConfig, addr))
		}
		d.TrAddr = addr
		if d.BlockSize == 0 {
			d.BlockSize = DefaultNVMeBlockSize
		}
		if d.BlockSize%512 != 0 {
			return fail(fmt.Errorf("%w: nvme device %s: block size %d is not a multiple of 512", ErrConfig, addr, d.BlockSize))
		}
		ln, err := openNVMe(d)
		if err != nil {
			return fail(err)
		}
		out[addr] = ln
	}
	return out, nil
}

func openNVMe(d NVMeDevice) (*localNVMe, error) {
	bs := uint64(d.BlockSize)
	if d.SizeBytes%bs != 0 {
		return nil, fmt.Errorf("%w: nvme device %s: size %d is not a multiple of block size %d", ErrConfig, d.TrAddr, d.SizeBytes, bs)
	}
	sum := sha256.Sum256([]byte("spdktest-nvme:" + d.TrAddr))
	sum[6] = sum[6]&0x0f | 0x40
	sum[8] = sum[8]&0x3f | 0x80
	ln := &localNVMe{cfg: d, uuid: formatUUID(sum[:16]), close: func() error { return nil }}
	if ln.cfg.SerialNumber == "" {
		ln.cfg.SerialNumber = fmt.Sprintf("FAKE%X", sum[16:22])
	}
	if ln.cfg.ModelNumber == "" {
		ln.cfg.ModelNumber = "spdktest NVMe SSD"
	}
	ln.subnqn = "nqn.2014-08.org.nvmexpress:uuid:" + ln.uuid
	if d.Path == "" {
		if d.SizeBytes == 0 {
			return nil, fmt.Errorf("%w: nvme device %s: needs a size or a file", ErrConfig, d.TrAddr)
		}
		ln.dev = blockdev.NewMemory(d.BlockSize, d.SizeBytes/bs)
		return ln, nil
	}
	var f *blockdev.File
	st, err := os.Stat(d.Path)
	switch {
	case errors.Is(err, os.ErrNotExist) && d.SizeBytes > 0:
		f, err = blockdev.CreateFile(d.Path, d.BlockSize, int64(d.SizeBytes))
	case err != nil:
		return nil, fmt.Errorf("%w: nvme device %s: %w", ErrConfig, d.TrAddr, err)
	case d.SizeBytes != 0 && uint64(st.Size()) != d.SizeBytes:
		return nil, fmt.Errorf("%w: nvme device %s: %s has %d bytes, not %d", ErrConfig, d.TrAddr, d.Path, st.Size(), d.SizeBytes)
	default:
		f, err = blockdev.OpenFile(d.Path, d.BlockSize)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: nvme device %s: %w", ErrConfig, d.TrAddr, err)
	}
	if f.NumBlocks() == 0 {
		_ = f.Close()
		return nil, fmt.Errorf("%w: nvme device %s: %s is smaller than one block", ErrConfig, d.TrAddr, d.Path)
	}
	ln.dev, ln.close = f, f.Close
	return ln, nil
}

func closeNVMeDevices(m map[string]*localNVMe) {
	for _, d := range m {
		_ = d.close()
	}
}

// attachPCIe is bdev_nvme_attach_controller for trtype PCIe, in the order
// SPDK's rpc_bdev_nvme_attach_controller and bdev_nvme_create check things
// (caller holds s.mu).
func (s *state) attachPCIe(p *attachParams) (any, *Error) {
	addr, err := ParsePCIAddr(p.TrAddr)
	if err != nil {
		// spdk_nvme_connect_async finds no device: "No controller was
		// found with provided trid".
		return nil, errNoDevice
	}
	if s.owner(pathKey{trid: fabric.TransportID{TrType: "PCIe", TrAddr: addr}}) != nil {
		return nil, errExists
	}
	dev := s.in.t.nvme[addr]
	if dev == nil {
		return nil, errNoDevice
	}
	if s.ctrlr(p.Name) != nil {
		// A second device under one name: its namespace is not the one the
		// controller already has, so populating it fails.
		return nil, errInvalParams
	}
	info := fabric.ControllerInfo{
		CntlID: 0, SerialNumber: dev.cfg.SerialNumber, ModelNumber: dev.cfg.ModelNumber, SubNQN: dev.subnqn,
		Namespaces: []fabric.NamespaceInfo{{NSID: 1, UUID: dev.uuid, BlockSize: dev.cfg.BlockSize, NumBlocks: dev.dev.NumBlocks()}},
	}
	path := &nvmePath{pathID: pathID{trid: fabric.TransportID{TrType: "PCIe", TrAddr: addr}}, hostnqn: p.HostNQN,
		info: info, state: "enabled", local: dev}
	c := &nvmeCtrlr{name: p.Name, paths: []*nvmePath{path}, bdevs: map[uint32]*bdev{}, stop: make(chan struct{})}
	b := &bdev{
		name: p.Name + "n1", uuid: dev.uuid, aliases: []string{dev.uuid}, product: "NVMe disk",
		blockSize: dev.cfg.BlockSize, numBlocks: dev.dev.NumBlocks(), io: ioNVMe, dev: dev.dev,
	}
	b.driver = func() any { return nvmeDriver(c, 1) }
	b.driverJSON = nvmeDriverJSON{c, 1}
	if rerr := s.registerBdev(b); rerr != nil {
		// SPDK attaches the controller but cannot register the bdev (see
		// the alias clash in methods.md): the result is an empty list.
		s.in.log.Warn("nvme bdev name clash", "bdev", b.name, "uuid", b.uuid)
		s.addCtrlr(c)
		return []string{}, nil
	}
	c.bdevs[1] = b
	s.addCtrlr(c)
	return []string{b.name}, nil
}

// sameNameChecks are rpc_bdev_nvme_attach_controller's rules for an attach
// under the name of an existing controller c, checked against its first
// controller's active path: multipath disabled, the same network path
// again, a different subsystem or host NQN, or PI options are refused.
func sameNameChecks(c *nvmeCtrlr, p *attachParams, trid fabric.TransportID) *Error {
	if p.multipath == "disable" {
		return rpcErr(-114, "A controller named "+p.Name+" already exists and multipath is disabled\n")
	}
	first := c.paths[0]
	if first.trid.TrAddr == trid.TrAddr && first.trid.TrSvcID == trid.TrSvcID &&
		first.hostaddr == p.HostAddr && first.hostsvcid == p.HostSvcID {
		return rpcErr(-114, "A controller named "+p.Name+" already exists with the specified network path\n")
	}
	if p.SubNQN != first.subnqn {
		return rpcErr(-22, "A controller named "+p.Name+" already exists, but uses a different subnqn ("+first.subnqn+")\n")
	}
	if p.HostNQN != first.hostnqn {
		return rpcErr(-22, "A controller named "+p.Name+" already exists, but uses a different hostnqn ("+first.hostnqn+")\n")
	}
	if p.PrchkReftag || p.PrchkGuard {
		return rpcErr(-22, "A controller named "+p.Name+" already exists. To add a path, do not specify PI options.\n")
	}
	return nil
}

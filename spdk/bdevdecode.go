package spdk

// The one-pass decode of bdev_get_bdevs (see fastParser): every type of a Bdev and its
// DriverSpecific. A driver_specific object with modules DriverSpecific does not decode goes,
// checked, to DriverSpecific.UnmarshalJSON, as encoding/json would hand it.

var bdevNames = []string{"name", "aliases", "product_name", "block_size", "num_blocks", "uuid",
	"assigned_rate_limits", "claimed", "claim_type", "zoned", "supported_io_types", "driver_specific"}

func (p *fastParser) bdev(d *Bdev) bool {
	return p.object(bdevNames, func(k int) (ok bool) {
		switch k {
		case 0:
			d.Name, ok = p.str()
		case 1:
			ok = p.strings(&d.Aliases)
		case 2:
			d.ProductName, ok = p.str()
		case 3:
			d.BlockSize, ok = p.uint32()
		case 4:
			d.NumBlocks, ok = p.uint64()
		case 5:
			d.UUID, ok = p.str()
		case 6:
			ok = p.rateLimits(&d.AssignedRateLimits)
		case 7:
			d.Claimed, ok = p.boolean()
		case 8:
			d.ClaimType, ok = p.str()
		case 9:
			d.Zoned, ok = p.boolean()
		case 10:
			if p.brief {
				return p.skip()
			}
			ok = stringMap(p, &d.SupportedIOTypes, p.boolean)
		default:
			ok = p.driverSpecific(&d.DriverSpecific)
		}
		return ok
	})
}

// bdevBrief is bdev without supported_io_types and the NVMe paths (BdevGetBdevsBrief): it
// skips them, checked as JSON, and leaves them nil.
func (p *fastParser) bdevBrief(d *Bdev) bool {
	p.brief = true
	return p.bdev(d)
}

var rateLimitNames = []string{"rw_ios_per_sec", "rw_mbytes_per_sec", "r_mbytes_per_sec", "w_mbytes_per_sec"}

func (p *fastParser) rateLimits(r *RateLimits) bool {
	return p.object(rateLimitNames, func(k int) (ok bool) {
		dst := [...]*uint64{&r.RWIOsPerSec, &r.RWMBytesPerSec, &r.RMBytesPerSec, &r.WMBytesPerSec}[k]
		*dst, ok = p.uint64()
		return ok
	})
}

// driverSpecific decodes the known modules itself; an object with anything else (another
// module for Other) goes, checked, to DriverSpecific.UnmarshalJSON.
func (p *fastParser) driverSpecific(d *DriverSpecific) bool {
	start := skipSpace(p.b, p.i)
	var fast DriverSpecific
	if p.knownModules(&fast) {
		*d = fast
		return true
	}
	p.i = start
	if !p.skip() {
		return false
	}
	var slow DriverSpecific
	if slow.UnmarshalJSON(p.b[start:p.i]) != nil {
		return false
	}
	if p.brief {
		slow.NVMe = nil
	}
	*d = slow
	return true
}

// knownModules reads an object whose members are all in driverSpecificKeys.
func (p *fastParser) knownModules(d *DriverSpecific) bool {
	return p.members(driverSpecificKeys, func(k int, again bool) (ok bool) {
		if k < 0 || again {
			return false // Other's members: UnmarshalJSON decodes them
		}
		switch driverSpecificKeys[k] {
		case "lvol", "raid", "passthru", "aio":
			if p.null() {
				return true // encoding/json leaves the pointer nil
			}
			return p.module(k, d)
		case "nvme":
			if p.brief {
				return p.skip()
			}
			return array(p, &d.NVMe, p.nvmeNSInfo)
		default:
			d.MPPolicy, ok = p.str()
			return ok
		}
	})
}

// module reads the object of module driverSpecificKeys[k] into a new value of d.
func (p *fastParser) module(k int, d *DriverSpecific) (ok bool) {
	switch driverSpecificKeys[k] {
	case "lvol":
		d.Lvol = new(LvolInfo)
		ok = p.lvolInfo(d.Lvol)
	case "raid":
		d.Raid = new(RaidBdev)
		ok = p.raidBdev(d.Raid)
	case "passthru":
		d.Passthru = new(PassthruInfo)
		ok = p.object(passthruNames, func(k int) (ok bool) {
			*[...]*string{&d.Passthru.Name, &d.Passthru.BaseBdevName}[k], ok = p.str()
			return ok
		})
	default:
		d.AIO = new(AIOInfo)
		ok = p.aioInfo(d.AIO)
	}
	return ok
}

var (
	passthruNames = []string{"name", "base_bdev_name"}
	aioNames      = []string{"filename", "block_size_override", "readonly"}
	lvolInfoNames = []string{"lvol_store_uuid", "base_bdev", "thin_provision", "num_allocated_clusters",
		"snapshot", "clone", "esnap_clone", "clones", "base_snapshot"}
)

func (p *fastParser) aioInfo(a *AIOInfo) bool {
	return p.object(aioNames, func(k int) (ok bool) {
		switch k {
		case 0:
			a.Filename, ok = p.str()
		case 1:
			a.BlockSizeOverride, ok = p.boolean()
		default:
			a.Readonly, ok = p.boolean()
		}
		return ok
	})
}

func (p *fastParser) lvolInfo(l *LvolInfo) bool {
	return p.object(lvolInfoNames, func(k int) (ok bool) {
		switch k {
		case 0:
			l.LvolStoreUUID, ok = p.str()
		case 1:
			l.BaseBdev, ok = p.str()
		case 2:
			l.ThinProvision, ok = p.boolean()
		case 3:
			l.NumAllocatedClusters, ok = p.uint64()
		case 4:
			l.Snapshot, ok = p.boolean()
		case 5:
			l.Clone, ok = p.boolean()
		case 6:
			l.EsnapClone, ok = p.boolean()
		case 7:
			ok = p.strings(&l.Clones)
		default:
			l.BaseSnapshot, ok = p.str()
		}
		return ok
	})
}

var (
	raidNames = []string{"name", "uuid", "strip_size_kb", "state", "raid_level", "superblock",
		"num_base_bdevs", "num_base_bdevs_discovered", "num_base_bdevs_operational", "base_bdevs_list"}
	raidBaseNames = []string{"name", "uuid", "is_configured", "data_offset", "data_size"}
)

func (p *fastParser) raidBdev(r *RaidBdev) bool {
	return p.object(raidNames, func(k int) (ok bool) {
		switch k {
		case 0:
			r.Name, ok = p.str()
		case 1:
			r.UUID, ok = p.str()
		case 2:
			r.StripSizeKB, ok = p.uint32()
		case 3:
			r.State, ok = p.str()
		case 4:
			r.RaidLevel, ok = p.str()
		case 5:
			r.Superblock, ok = p.boolean()
		case 6:
			r.NumBaseBdevs, ok = p.uint32()
		case 7:
			r.NumBaseBdevsDiscovered, ok = p.uint32()
		case 8:
			r.NumBaseBdevsOperational, ok = p.uint32()
		default:
			ok = array(p, &r.BaseBdevsList, p.raidBaseBdev)
		}
		return ok
	})
}

func (p *fastParser) raidBaseBdev(b *RaidBaseBdev) bool {
	return p.object(raidBaseNames, func(k int) (ok bool) {
		switch k {
		case 0:
			b.Name, ok = p.str()
		case 1:
			b.UUID, ok = p.str()
		case 2:
			b.IsConfigured, ok = p.boolean()
		case 3:
			b.DataOffset, ok = p.uint64()
		default:
			b.DataSize, ok = p.uint64()
		}
		return ok
	})
}

var (
	nvmeNSNames    = []string{"pci_address", "trid", "ctrlr_data", "vs", "ns_data"}
	ctrlrDataNames = []string{"cntlid", "vendor_id", "model_number", "serial_number", "firmware_revision",
		"subnqn", "oacs", "multi_ctrlr", "ana_reporting"}
	nvmeVSNames = []string{"nvme_version"}
	nsDataNames = []string{"id", "can_share", "ana_state"}
)

func (p *fastParser) nvmeNSInfo(n *NVMeNSInfo) bool {
	return p.object(nvmeNSNames, func(k int) (ok bool) {
		switch k {
		case 0:
			n.PCIAddress, ok = p.str()
		case 1:
			ok = p.transportID(&n.TRID)
		case 2:
			ok = p.ctrlrData(&n.CtrlrData)
		case 3:
			ok = p.object(nvmeVSNames, func(int) (ok bool) {
				n.VS.NVMeVersion, ok = p.str()
				return ok
			})
		default:
			ok = p.object(nsDataNames, func(k int) (ok bool) {
				switch k {
				case 0:
					n.NSData.ID, ok = p.uint32()
				case 1:
					n.NSData.CanShare, ok = p.boolean()
				default:
					n.NSData.ANAState, ok = p.str()
				}
				return ok
			})
		}
		return ok
	})
}

func (p *fastParser) ctrlrData(c *NVMeCtrlrData) bool {
	return p.object(ctrlrDataNames, func(k int) (ok bool) {
		switch k {
		case 0:
			c.CntlID, ok = p.uint16()
		case 1:
			c.VendorID, ok = p.str()
		case 2:
			c.ModelNumber, ok = p.str()
		case 3:
			c.SerialNumber, ok = p.str()
		case 4:
			c.FirmwareRevision, ok = p.str()
		case 5:
			c.SubNQN, ok = p.str()
		case 6:
			ok = stringMap(p, &c.OACS, func() (uint, bool) {
				v, ok := p.uint(uintBits)
				return uint(v), ok
			})
		case 7:
			c.MultiCtrlr, ok = p.boolean()
		default:
			c.ANAReporting, ok = p.boolean()
		}
		return ok
	})
}

var transportIDNames = []string{"trtype", "adrfam", "traddr", "trsvcid", "subnqn"}

// transportID reads a TransportID (the address of a listener, the trid of a path).
func (p *fastParser) transportID(a *TransportID) bool {
	return p.object(transportIDNames, func(k int) (ok bool) {
		dst := [...]*string{&a.TRType, &a.AdrFam, &a.TRAddr, &a.TRSvcID, &a.SubNQN}[k]
		*dst, ok = p.str()
		return ok
	})
}

package spdk

// The one-pass decodes of nvmf_get_subsystems and bdev_nvme_get_controllers (see
// fastParser), the other listings every node sync reads.

var (
	subsystemNames = []string{"nqn", "subtype", "listen_addresses", "allow_any_host", "hosts",
		"serial_number", "model_number", "max_namespaces", "min_cntlid", "max_cntlid", "namespaces"}
	listenAddrNames = []string{"transport", "trtype", "adrfam", "traddr", "trsvcid"}
	hostNames       = []string{"nqn"}
	namespaceNames  = []string{"nsid", "bdev_name", "name", "nguid", "eui64", "uuid", "anagrpid"}
)

func (p *fastParser) subsystem(s *Subsystem) bool {
	return p.object(subsystemNames, func(k int) (ok bool) {
		switch k {
		case 0:
			s.NQN, ok = p.str()
		case 1:
			s.Subtype, ok = p.str()
		case 2:
			ok = array(p, &s.ListenAddresses, p.listenAddr)
		case 3:
			s.AllowAnyHost, ok = p.boolean()
		case 4:
			ok = array(p, &s.Hosts, func(h *SubsystemHost) bool {
				return p.object(hostNames, func(int) (ok bool) {
					h.NQN, ok = p.str()
					return ok
				})
			})
		case 5:
			s.SerialNumber, ok = p.str()
		case 6:
			s.ModelNumber, ok = p.str()
		case 7:
			s.MaxNamespaces, ok = p.uint32()
		case 8:
			s.MinCntlID, ok = p.uint16()
		case 9:
			s.MaxCntlID, ok = p.uint16()
		default:
			ok = array(p, &s.Namespaces, p.namespace)
		}
		return ok
	})
}

func (p *fastParser) listenAddr(a *SubsystemListenAddr) bool {
	return p.object(listenAddrNames, func(k int) (ok bool) {
		dst := [...]*string{&a.Transport, &a.TRType, &a.AdrFam, &a.TRAddr, &a.TRSvcID}[k]
		*dst, ok = p.str()
		return ok
	})
}

func (p *fastParser) namespace(n *SubsystemNamespace) bool {
	return p.object(namespaceNames, func(k int) (ok bool) {
		switch k {
		case 0:
			n.NSID, ok = p.uint32()
		case 1:
			n.BdevName, ok = p.str()
		case 2:
			n.Name, ok = p.str()
		case 3:
			n.NGUID, ok = p.str()
		case 4:
			n.EUI64, ok = p.str()
		case 5:
			n.UUID, ok = p.str()
		default:
			n.ANAGrpID, ok = p.uint32()
		}
		return ok
	})
}

var (
	controllerNames = []string{"name", "ctrlrs"}
	ctrlrNames      = []string{"state", "trid", "cntlid", "host"}
	ctrlrHostNames  = []string{"nqn", "addr", "svcid"}
)

func (p *fastParser) nvmeController(c *NvmeController) bool {
	return p.object(controllerNames, func(k int) (ok bool) {
		if k == 0 {
			c.Name, ok = p.str()
		} else {
			ok = array(p, &c.Ctrlrs, p.nvmeCtrlr)
		}
		return ok
	})
}

func (p *fastParser) nvmeCtrlr(c *NvmeCtrlr) bool {
	return p.object(ctrlrNames, func(k int) (ok bool) {
		switch k {
		case 0:
			c.State, ok = p.str()
		case 1:
			ok = p.transportID(&c.TRID)
		case 2:
			c.CntlID, ok = p.uint16()
		default:
			ok = p.object(ctrlrHostNames, func(k int) (ok bool) {
				*[...]*string{&c.Host.NQN, &c.Host.Addr, &c.Host.SvcID}[k], ok = p.str()
				return ok
			})
		}
		return ok
	})
}

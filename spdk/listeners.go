package spdk

// The one-pass decode of nvmf_subsystem_get_listeners (see fastParser): how an exporter's
// ANA state is read (the agent's rechecks, anyone waiting for a path to become optimized).

var (
	listenerNames = []string{"address", "ana_state", "ana_states"}
	anaStateNames = []string{"ana_group", "ana_state"}
)

func (p *fastParser) listener(l *Listener) bool {
	return p.object(listenerNames, func(k int) (ok bool) {
		switch k {
		case 0:
			ok = p.transportID(&l.Address)
		case 1:
			l.ANAState, ok = p.str()
		default:
			ok = p.anaStates(&l.ANAStates)
		}
		return ok
	})
}

func (p *fastParser) anaStates(out *[]ListenerANAState) bool {
	return array(p, out, p.anaState)
}

func (p *fastParser) anaState(s *ListenerANAState) bool {
	return p.object(anaStateNames, func(k int) (ok bool) {
		if k == 0 {
			s.ANAGroup, ok = p.uint32()
		} else {
			s.ANAState, ok = p.str()
		}
		return ok
	})
}

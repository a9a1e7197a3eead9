package agentpb

// DAEpochs returns the epoch of every disk array the request names: the
// VDs' on a disk node, the controllers' on a controller node.
func (x *SyncRequest) DAEpochs() map[string]int64 {
	out := map[string]int64{}
	for _, pd := range x.GetDn().GetPds() {
		for _, vd := range pd.GetVds() {
			out[vd.GetDaId()] = vd.GetEpoch()
		}
	}
	for _, c := range x.GetCn().GetCntlrs() {
		out[c.GetDa().GetId()] = c.GetEpoch()
	}
	return out
}

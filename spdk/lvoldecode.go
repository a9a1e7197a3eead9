package spdk

// The one-pass decodes of bdev_lvol_get_lvols and bdev_lvol_get_lvstores (see fastParser),
// which a disk node's sync lists beside its bdevs.

var (
	lvolNames = []string{"alias", "uuid", "name", "is_thin_provisioned", "is_snapshot", "is_clone",
		"is_esnap_clone", "is_degraded", "lvs"}
	lvolLvsNames = []string{"name", "uuid"}
	lvstoreNames = []string{"uuid", "name", "base_bdev", "total_data_clusters", "free_clusters",
		"block_size", "cluster_size"}
)

func (p *fastParser) lvol(l *Lvol) bool {
	return p.object(lvolNames, func(k int) (ok bool) {
		switch k {
		case 0:
			l.Alias, ok = p.str()
		case 1:
			l.UUID, ok = p.str()
		case 2:
			l.Name, ok = p.str()
		case 3:
			l.IsThinProvisioned, ok = p.boolean()
		case 4:
			l.IsSnapshot, ok = p.boolean()
		case 5:
			l.IsClone, ok = p.boolean()
		case 6:
			l.IsEsnapClone, ok = p.boolean()
		case 7:
			l.IsDegraded, ok = p.boolean()
		default:
			ok = p.object(lvolLvsNames, func(k int) (ok bool) {
				*[...]*string{&l.Lvs.Name, &l.Lvs.UUID}[k], ok = p.str()
				return ok
			})
		}
		return ok
	})
}

func (p *fastParser) lvstore(s *Lvstore) bool {
	return p.object(lvstoreNames, func(k int) (ok bool) {
		switch k {
		case 0:
			s.UUID, ok = p.str()
		case 1:
			s.Name, ok = p.str()
		case 2:
			s.BaseBdev, ok = p.str()
		case 3:
			s.TotalDataClusters, ok = p.uint64()
		case 4:
			s.FreeClusters, ok = p.uint64()
		case 5:
			s.BlockSize, ok = p.uint32()
		default:
			s.ClusterSize, ok = p.uint64()
		}
		return ok
	})
}

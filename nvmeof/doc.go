// Package nvmeof holds the NVMe-oF vocabulary of VDA: NQNs, transport IDs
// (listener configurations), ANA states, and the deterministic names of every
// SPDK object and NQN the agents create. It imports only the standard
// library.
//
// # Names
//
// Every name is a function of stable IDs (32 lower-case hex digits, see
// NewID), except the exporter NQN, which keeps the tutorial's user-visible
// form. Every name carries an owner prefix (NamePrefix or NQNPrefix) so an
// agent can tell its objects from anyone else's (IsOwnedBdev, IsOwnedNQN,
// ...), and ParseName inverts every name function, so no two inputs share a
// name. Lvol and lvstore names stay within SPDK's 63 characters.
//
//	object                          node          format
//	PD bdev (malloc, aio)           DN            vda-pd-<pdID>
//	PD NVMe controller (PCIe)       DN            vda-pdnvme-<pdID>  (bdev vda-pdnvme-<pdID>n1)
//	PD lvstore                      DN            vda-pdlvs-<pdID>
//	VD lvol                         DN            vda-vd-<vdID>  (alias vda-pdlvs-<pdID>/vda-vd-<vdID>)
//	VD subsystem NQN                DN            nqn.2016-06.io.spdk:vda-vd-<vdID>
//	controller host NQN             CN            nqn.2016-06.io.spdk:vda-cntlr-<cntlrID>
//	VD NVMe controller              CN primary    vda-vdnvme-<vdID>  (bdev vda-vdnvme-<vdID>n1)
//	raid0                           CN primary    vda-raid-<daID>
//	DA lvstore                      CN primary    vda-dalvs-<daID>
//	DA volume lvol                  CN primary    vda-da-<daID>  (alias vda-dalvs-<daID>/vda-da-<daID>)
//	export NVMe controller          CN secondary  vda-expnvme-<expID>  (bdev vda-expnvme-<expID>n1)
//	exporter subsystem NQN          CN            nqn.2016-06.io.spdk:vda-exp-<da>-<exp>  ('-' in a name doubled)
//	serial number                   DN, CN        first 20 hex digits of SHA-256(subsystem NQN)
//	model number                    DN, CN        VDA_CONTROLLER
//	namespace UUID                  DN, CN        UUIDv5(SHA-1) of the subsystem NQN
//	min_cntlid-max_cntlid           CN            1-1000 for controller index 0, 1001-2000 for 1, ...
//
// # Validation
//
// ParseNQN checks the NVMe base specification's three NQN forms and SPDK's
// reverse-domain rules, ParseHostNQN additionally keeps users out of VDA's
// reserved NQN prefix, ParseListenerConf a node's listener JSON,
// ParseANAState SPDK's ANA state spellings, ValidateID stable IDs and
// ValidateResourceName user-chosen DA, exporter, PD, DN and CN names. Errors
// wrap the sentinels ErrInvalidNQN, ErrInvalidTransportID,
// ErrInvalidANAState, ErrInvalidID, ErrInvalidName, ErrNameTooLong and
// ErrControllerIndex.
package nvmeof

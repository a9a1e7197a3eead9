package nvmetcp

import "encoding/binary"

// Opcodes of the commands this host sends.
const (
	opcFabrics     = 0x7f
	opcGetLogPage  = 0x02 // admin
	opcIdentify    = 0x06 // admin
	opcSetFeatures = 0x09 // admin
	opcAER         = 0x0c // admin: Asynchronous Event Request
	opcKeepAlive   = 0x18 // admin
	opcWrite       = 0x01 // NVM
	opcRead        = 0x02 // NVM
)

// Fabrics command types (byte 4 of a fabrics SQE).
const (
	fctPropertySet = 0x00
	fctConnect     = 0x01
	fctPropertyGet = 0x04
)

// Controller properties (register offsets).
const (
	propCAP  = 0x00
	propVS   = 0x08
	propCC   = 0x14
	propCSTS = 0x1c
)

// Identify CNS values.
const (
	cnsNamespace      = 0x00
	cnsController     = 0x01
	cnsActiveNSList   = 0x02
	cnsNSDescriptors  = 0x03
	logANA            = 0x0c
	featAsyncEventCfg = 0x0b
	aecANAChange      = 1 << 11 // Asynchronous Event Configuration: ANA change notices
	aecNSAttrChange   = 1 << 8  // Asynchronous Event Configuration: namespace attribute notices (a resize)
	logChangedNSList  = 0x04
)

// SGL descriptor types (byte 15 of the descriptor: type << 4 | subtype).
const (
	sglInCapsule = 0x01 // data block, offset subtype: data follows the SQE in the capsule
	sglTransport = 0x5a // transport SGL data block: data moves in H2CData/C2HData PDUs
	psdtSGL      = 0x40 // SQE flags: PSDT 01, SGLs for data
)

// Data transfer directions of a command.
const (
	dirNone = iota
	dirRead // controller to host
	dirWrite
)

// command is a 64-byte submission queue entry.
type command [sqeLen]byte

func (c *command) opcode() uint8            { return c[0] }
func (c *command) setCID(cid uint16)        { binary.LittleEndian.PutUint16(c[2:], cid) }
func (c *command) setNSID(nsid uint32)      { binary.LittleEndian.PutUint32(c[4:], nsid) }
func (c *command) cdw(i int, v uint32)      { binary.LittleEndian.PutUint32(c[i*4:], v) }
func (c *command) putU16(off int, v uint16) { binary.LittleEndian.PutUint16(c[off:], v) }

// setSGL fills data pointer SGL1 (bytes 24-39) for a transfer of n bytes.
func (c *command) setSGL(typ uint8, n uint32) {
	clear(c[24:40])
	binary.LittleEndian.PutUint32(c[32:], n)
	c[39] = typ
}

func newCommand(opc uint8) *command {
	c := new(command)
	c[0], c[1] = opc, psdtSGL
	return c
}

func fabricsCommand(fct uint8) *command {
	c := newCommand(opcFabrics)
	c[4] = fct
	return c
}

// connectCommand is a Fabrics Connect for queue qid of sqsize entries (0's
// based), with keep-alive timeout kato milliseconds (admin queue only).
func connectCommand(qid, sqsize uint16, kato uint32) *command {
	c := fabricsCommand(fctConnect)
	c.putU16(40, 0) // RECFMT 0
	c.putU16(42, qid)
	c.putU16(44, sqsize)
	c[46] = 0 // CATTR
	binary.LittleEndian.PutUint32(c[48:], kato)
	return c
}

// connectData is the 1024-byte Connect data: host ID, controller ID
// (0xffff on the admin queue: any), subsystem NQN at 256, host NQN at 512.
func connectData(hostID [16]byte, cntlid uint16, subNQN, hostNQN string) []byte {
	b := make([]byte, 1024)
	copy(b, hostID[:])
	binary.LittleEndian.PutUint16(b[16:], cntlid)
	copy(b[256:512], subNQN)
	copy(b[512:768], hostNQN)
	return b
}

// propertyGet reads an 8-byte (size8) or 4-byte property at ofst.
func propertyGet(ofst uint32, size8 bool) *command {
	c := fabricsCommand(fctPropertyGet)
	if size8 {
		c[40] = 1
	}
	binary.LittleEndian.PutUint32(c[44:], ofst)
	return c
}

// propertySet writes a 4-byte property.
func propertySet(ofst, v uint32) *command {
	c := fabricsCommand(fctPropertySet)
	binary.LittleEndian.PutUint32(c[44:], ofst)
	binary.LittleEndian.PutUint64(c[48:], uint64(v))
	return c
}

func identifyCommand(cns uint8, nsid uint32) *command {
	c := newCommand(opcIdentify)
	c.setNSID(nsid)
	c.cdw(10, uint32(cns))
	return c
}

// getLogPageCommand reads n bytes (a multiple of 4) of log lid from offset
// off; rae false lets the controller re-arm the event that announced it.
func getLogPageCommand(lid uint8, n uint32, off uint64, rae bool) *command {
	c := newCommand(opcGetLogPage)
	c.setNSID(0xffffffff)
	numd := n/4 - 1
	v := uint32(lid) | (numd&0xffff)<<16
	if rae {
		v |= 1 << 15
	}
	c.cdw(10, v)
	c.cdw(11, numd>>16)
	c.cdw(12, uint32(off))
	c.cdw(13, uint32(off>>32))
	return c
}

func setFeaturesCommand(fid uint8, v uint32) *command {
	c := newCommand(opcSetFeatures)
	c.cdw(10, uint32(fid))
	c.cdw(11, v)
	return c
}

// rwCommand reads or writes nlb blocks of nsid from slba.
func rwCommand(opc uint8, nsid uint32, slba uint64, nlb uint32) *command {
	c := newCommand(opc)
	c.setNSID(nsid)
	c.cdw(10, uint32(slba))
	c.cdw(11, uint32(slba>>32))
	c.cdw(12, nlb-1)
	return c
}

// opName names a command for errors; admin and I/O opcodes overlap.
func opName(c *command, admin bool) string {
	if !admin && c.opcode() != opcFabrics {
		switch c.opcode() {
		case opcRead:
			return "read"
		case opcWrite:
			return "write"
		}
		return "I/O command"
	}
	switch c.opcode() {
	case opcFabrics:
		switch c[4] {
		case fctConnect:
			return "connect"
		case fctPropertyGet:
			return "property get"
		case fctPropertySet:
			return "property set"
		}
		return "fabrics command"
	case opcIdentify:
		return "identify"
	case opcGetLogPage:
		return "get log page"
	case opcSetFeatures:
		return "set features"
	case opcAER:
		return "asynchronous event request"
	case opcKeepAlive:
		return "keep alive"
	}
	return "admin command"
}

package nvmetcp

import (
	"encoding/binary"
	"fmt"
)

// NVMe/TCP PDU types (NVMe over TCP transport specification, section 3.6).
const (
	pduICReq       = 0x00
	pduICResp      = 0x01
	pduH2CTermReq  = 0x02
	pduC2HTermReq  = 0x03
	pduCapsuleCmd  = 0x04
	pduCapsuleResp = 0x05
	pduH2CData     = 0x06
	pduC2HData     = 0x07
	pduR2T         = 0x09
)

// Common header flags and the data PDU flags.
const (
	flagHDGST   = 1 << 0 // header digest present
	flagDDGST   = 1 << 1 // data digest present
	flagLast    = 1 << 2 // LAST_PDU: the last data PDU of a transfer
	flagSuccess = 1 << 3 // SUCCESS: C2HData that replaces the response capsule
)

// Fixed header lengths (no digests).
const (
	chLen       = 8   // common header
	icLen       = 128 // ICReq, ICResp
	cmdHdrLen   = 72  // CapsuleCmd: common header + 64-byte SQE
	respLen     = 24  // CapsuleResp: common header + 16-byte CQE
	dataHdrLen  = 24  // H2CData, C2HData
	r2tLen      = 24  // R2T
	termHdrLen  = 24  // H2CTermReq, C2HTermReq
	termMaxLen  = 152 // a TermReq with its error data
	sqeLen      = 64
	cqeLen      = 16
	minMaxH2C   = 4096 // MAXH2CDATA may not be smaller (spec: at least 4 KiB)
	adminICData = 8192 // in-capsule data every controller takes on the admin queue
)

// Fatal error status (FES) of a TermReq.
const (
	fesInvalidHeader = 0x01
	fesSequenceError = 0x02
	fesOutOfRange    = 0x04
	fesLimitExceeded = 0x05
	fesUnsupported   = 0x06
)

func fesName(fes uint16) string {
	switch fes {
	case fesInvalidHeader:
		return "invalid PDU header field"
	case fesSequenceError:
		return "PDU sequence error"
	case 0x03:
		return "header digest error"
	case fesOutOfRange:
		return "data transfer out of range"
	case fesLimitExceeded:
		return "data transfer limit exceeded"
	case fesUnsupported:
		return "unsupported parameter"
	}
	return "unknown fatal error"
}

func pduName(t uint8) string {
	switch t {
	case pduICReq:
		return "ICReq"
	case pduICResp:
		return "ICResp"
	case pduH2CTermReq:
		return "H2CTermReq"
	case pduC2HTermReq:
		return "C2HTermReq"
	case pduCapsuleCmd:
		return "CapsuleCmd"
	case pduCapsuleResp:
		return "CapsuleResp"
	case pduH2CData:
		return "H2CData"
	case pduC2HData:
		return "C2HData"
	case pduR2T:
		return "R2T"
	}
	return fmt.Sprintf("PDU type %#x", t)
}

// header is the 8-byte common header of every PDU.
type header struct {
	typ, flags, hlen, pdo uint8
	plen                  uint32
}

func parseHeader(b []byte) header {
	return header{typ: b[0], flags: b[1], hlen: b[2], pdo: b[3], plen: binary.LittleEndian.Uint32(b[4:])}
}

func (h header) put(b []byte) {
	b[0], b[1], b[2], b[3] = h.typ, h.flags, h.hlen, h.pdo
	binary.LittleEndian.PutUint32(b[4:], h.plen)
}

// dataOffset returns where the data of a host-to-controller PDU with an
// hlen-byte header starts, given the controller's CPDA (data alignment in
// dwords, 0's based).
func dataOffset(hlen int, cpda uint8) int {
	if cpda == 0 {
		return hlen
	}
	align := (int(cpda) + 1) * 4
	return (hlen + align - 1) / align * align
}

// icReq encodes an ICReq: PFV 0, HPDA 0 (no alignment), no digests, and
// MAXR2T 0 (one outstanding R2T per command).
func icReq() []byte {
	b := make([]byte, icLen)
	header{typ: pduICReq, hlen: icLen, plen: icLen}.put(b)
	return b
}

// icResp is a parsed ICResp.
type icResp struct {
	pfv        uint16
	cpda       uint8
	digests    uint8
	maxH2CData uint32
}

func parseICResp(b []byte) icResp {
	return icResp{pfv: binary.LittleEndian.Uint16(b[8:]), cpda: b[10], digests: b[11],
		maxH2CData: binary.LittleEndian.Uint32(b[12:])}
}

// capsuleHeader encodes the CapsuleCmd header for sqe carrying n bytes of
// in-capsule data (0: none); pad is how many zero bytes go between the
// header and the data.
func capsuleHeader(sqe *command, n int, cpda uint8) (hdr []byte, pad int) {
	pdo := 0
	plen := cmdHdrLen
	if n > 0 {
		pdo = dataOffset(cmdHdrLen, cpda)
		plen = pdo + n
	}
	b := make([]byte, cmdHdrLen)
	header{typ: pduCapsuleCmd, hlen: cmdHdrLen, pdo: uint8(pdo), plen: uint32(plen)}.put(b)
	copy(b[chLen:], sqe[:])
	if pdo > cmdHdrLen {
		pad = pdo - cmdHdrLen
	}
	return b, pad
}

// h2cHeader encodes an H2CData header (with its alignment padding) for n
// bytes at offset datao of command cid's transfer ttag.
func h2cHeader(b []byte, cid, ttag uint16, datao, n uint32, last bool, cpda uint8) []byte {
	pdo := dataOffset(dataHdrLen, cpda)
	b = b[:pdo]
	clear(b)
	var flags uint8
	if last {
		flags = flagLast
	}
	header{typ: pduH2CData, flags: flags, hlen: dataHdrLen, pdo: uint8(pdo), plen: uint32(pdo) + n}.put(b)
	binary.LittleEndian.PutUint16(b[8:], cid)
	binary.LittleEndian.PutUint16(b[10:], ttag)
	binary.LittleEndian.PutUint32(b[12:], datao)
	binary.LittleEndian.PutUint32(b[16:], n)
	return b
}

// termReq encodes an H2CTermReq with fatal error status fes and field
// offset fei, followed by the offending header (at most 128 bytes).
func termReq(fes uint16, fei uint32, offending []byte) []byte {
	offending = offending[:min(len(offending), termMaxLen-termHdrLen)]
	b := make([]byte, termHdrLen+len(offending))
	header{typ: pduH2CTermReq, hlen: termHdrLen, pdo: 0, plen: uint32(len(b))}.put(b)
	binary.LittleEndian.PutUint16(b[8:], fes)
	binary.LittleEndian.PutUint32(b[10:], fei)
	copy(b[termHdrLen:], offending)
	return b
}

// completion is a completion queue entry (CQE).
type completion struct {
	dw0, dw1   uint32
	sqhd, sqid uint16
	cid        uint16
	status     uint16 // bit 0 phase tag, bits 1-15 status field
}

func parseCompletion(b []byte) completion {
	return completion{
		dw0:    binary.LittleEndian.Uint32(b[0:]),
		dw1:    binary.LittleEndian.Uint32(b[4:]),
		sqhd:   binary.LittleEndian.Uint16(b[8:]),
		sqid:   binary.LittleEndian.Uint16(b[10:]),
		cid:    binary.LittleEndian.Uint16(b[12:]),
		status: binary.LittleEndian.Uint16(b[14:]),
	}
}

// statusError returns the completion's status as an error, or nil when the
// command succeeded.
func (c completion) statusError(op string) error {
	sf := c.status >> 1
	sc, sct := uint8(sf), uint8(sf>>8)&0x7
	if sc == 0 && sct == 0 {
		return nil
	}
	return &StatusError{SCT: sct, SC: sc, CRD: uint8(sf>>11) & 0x3, More: sf&(1<<13) != 0,
		DNR: sf&(1<<14) != 0, Op: op}
}

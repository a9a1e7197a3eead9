// Package fabric is the fake SPDK's NVMe-oF: a small binary protocol of
// its own over real TCP that carries connect (subsystem NQN + host NQN,
// admitted or refused with a reason), identify, ANA state changes and
// tagged block reads and writes, so that a fake host really reaches a fake
// target's namespaces and really loses them when the target dies, drops
// the host, or stops listening.
//
// The target side (Target) asks the control plane through an Admit
// callback whether a host may connect and what it serves; the host side
// (Dial, Conn) is used both by the fake's bdev_nvme_attach_controller and
// by tests acting as initiators. Conn.Done closes when the path is lost:
// the TCP connection closed or a keep-alive went unanswered.
//
// Frames are a fixed 32-byte header (body length, opcode, status, tag,
// namespace id, offset) and a body of at most MaxBody bytes. Many requests
// may be in flight on one connection; replies carry the request's tag.
package fabric

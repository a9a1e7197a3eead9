// Package nvmetcp is an NVMe over Fabrics host (initiator) for the TCP
// transport, in pure Go: it reads and writes the namespaces of a remote
// NVMe subsystem (for instance one exported by SPDK's nvmf target) from
// inside the process, without the kernel's nvme-tcp module.
//
// # One controller
//
// Connect opens the admin queue and one I/O queue, each its own TCP
// connection, and brings the controller up the way Linux does: ICReq/ICResp
// (PDU format 0, no digests), Fabrics Connect, Property Get CAP and VS,
// Property Set CC.EN, wait for CSTS.RDY, Identify Controller, the active
// namespaces (Identify Namespace and its identification descriptors, for
// the UUID) and, when the controller reports ANA, the ANA log page; an
// Asynchronous Event Request keeps the ANA states and the namespaces' sizes
// current. Keep Alive commands go out every KATO/2.
//
// Controller.ReadAt and WriteAt take byte offsets and lengths in whole
// blocks, split requests larger than the controller's largest transfer
// (MDTS), send writes that fit the in-capsule data size (IOCCSZ) inside the
// command capsule and larger ones as H2CData PDUs when the target asks
// (R2T, at most MAXH2CDATA bytes each), and receive reads as C2HData PDUs
// (with or without the SUCCESS flag that replaces the response capsule).
// Many commands may be in flight at once.
//
// # Errors
//
// A status from the target is a *StatusError (SCT, SC, DNR, More). A
// connection that fails, a protocol violation by the target, a command
// that gets no response within Options.CommandTimeout, or a failed keep
// alive fail the whole Controller: every command in flight returns an error
// that wraps ErrTransport, never a status. IsPathError (SCT 3: ANA
// inaccessible, persistent loss, transition, pathing errors),
// IsTransportError and IsCommandError classify errors; ErrInvalid marks a
// request that was refused before anything was sent.
//
// # Several paths
//
// Multipath reaches one subsystem through several controllers, like Linux
// native NVMe multipath: I/O goes to an ANA-optimized path, paths are
// (re)connected on demand with backoff, and an I/O that fails on one path
// is retried on the next until it succeeds or its context ends.
//
// # Limits
//
// No TLS, no authentication (DH-HMAC-CHAP), no header or data digests, one
// I/O queue per controller, namespaces without metadata only, and no
// discovery service client: give the subsystem's addresses directly.
package nvmetcp

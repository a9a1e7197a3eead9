// Package reserve holds TCP ports for listeners that come and go: the
// NVMe-oF listeners of a fake spdk_tgt (spdk/spdktest) that an agent adds,
// removes and adds again, and that a crash takes down; or the gRPC port of a
// test agent that is stopped and started again under the same address.
//
// Picking a port by listening on :0, reading the port and closing the
// socket leaves the port free until the real listener binds it, and any
// other process may take it meanwhile. A Port instead keeps the port bound
// from TCP until Close, so the address can be handed out (registered in a
// store, put in an agent's Config) before anything serves on it:
//
//	p, err := reserve.TCP("127.0.0.1", 0) // any free port, held from now on
//	ln, err := p.Listen()                 // serve on it
//	_ = ln.Close()                        // connections are refused again
//	ln, err = p.Listen()                  // and served again
//
// While no listener is open, connections to the port are refused, as they
// are by a process that died, and no other socket can bind it. On Linux a
// Port is a socket bound to the address that never listens; it takes
// SO_REUSEPORT once bound, and each Listen opens a listening socket with
// SO_REUSEPORT beside it, so the port stays held across any number of
// listeners. Nothing binds beside it but sockets with SO_REUSEPORT of the
// same user, which Go's net.Listen never sets (nor does another Port, whose
// socket is bound before it takes the option). A port asked for by number
// that still has connections of an earlier listener in TIME_WAIT (the
// program that reserves it restarted) is bound with SO_REUSEADDR, as that
// listener's successor would be: while none of its listeners is open,
// another socket with SO_REUSEADDR could then bind beside it. On other
// systems a Port remembers the port and Listen binds it again each time,
// so another process can take it while no listener is open.
package reserve

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
// Port is a socket bound to the address but never listening, and each
// Listen opens a listening socket beside it (both with SO_REUSEPORT, which
// Go's net.Listen never sets, so other programs still get "address already
// in use"); the port stays held across any number of listeners. (A port
// asked for by number that still has connections of an earlier ordinary
// listener in TIME_WAIT is held with SO_REUSEADDR too, as that listener's
// successor would bind it: then, while none of its listeners is open,
// another socket with SO_REUSEADDR could bind beside it.) On other
// systems a Port remembers the port and Listen binds it again each time,
// so another process can take it while no listener is open.
package reserve

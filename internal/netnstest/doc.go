// Package netnstest builds small private networks of Linux network
// namespaces for multi-host tests: every host gets its own namespace with
// one interface on a bridge that lives in a namespace of its own, so a test
// can use any addresses (the seed tutorial's 192.168.0.x) without touching
// the machine's own network, and several runs never collide.
//
// It needs root and iproute2's ip; Available says why not when it cannot
// work, so tests skip with that reason.
package netnstest

// Package bufpool recycles byte buffers whose sizes vary from use to use
// (a fabric read's reply, a write's body, an lvstore's metadata units), so
// that a fresh buffer's page faults and GC work are not paid on every use.
package bufpool

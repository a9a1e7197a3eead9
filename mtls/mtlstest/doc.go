// Package mtlstest makes what tests of VDA's mutual TLS need: a throwaway
// certificate authority with server and client certificates.
package mtlstest

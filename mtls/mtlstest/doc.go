// Package mtlstest makes what tests of VDA's mutual TLS need: a throwaway
// certificate authority that issues role certificates
// (vda://<role>/<name>) for the loopback addresses.
package mtlstest

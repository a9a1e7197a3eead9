// Package portaltest makes what tests of portal clients need: a throwaway
// certificate authority with server and client certificates for mutual TLS.
// The certificates come from mtls/mtlstest, which agents and monitors share.
package portaltest

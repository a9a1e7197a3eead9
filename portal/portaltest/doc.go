// Package portaltest makes what tests of portal clients need: a throwaway
// certificate authority with a portal's server certificate and an
// operator's (admin role) client certificate for mutual TLS. The
// certificates come from mtls/mtlstest, which agents and monitors share.
package portaltest

// Package mtls builds the mutual TLS, with roles, that VDA's gRPC servers
// and clients (portal, monitor, agents, CLI) share: every side presents a
// certificate signed by one CA, and every certificate names exactly one
// identity as a URI SAN vda://<role>/<name>:
//
//	vda://admin/alice                the CLI of an operator
//	vda://portal/portal-1            a portal (server certificate)
//	vda://monitor/monitor-1          a monitor
//	vda://agent/192.168.0.14:9720    the agent of node 192.168.0.14:9720
//
// Server certificates also carry the IP and DNS SANs they serve on; agent
// names are the node's name as registered, so a monitor dialing node X
// checks that the certificate names X (ExpectPeer) and an address that
// reaches another node's agent fails the handshake.
//
// A Config names three PEM files. All empty means plaintext (Enabled is
// false); otherwise all three are required:
//
//	cfg := mtls.Files("/etc/vda/tls", mtls.RoleAgent) // ca.crt, agent.crt, agent.key
//	server, err := cfg.ServerTLS() // requires and verifies client certificates
//	client, err := cfg.ClientTLS() // presents the certificate, verifies the server
//
// Servers enforce who may call what with a Policy (full method name ->
// roles) through UnaryServerInterceptor and StreamServerInterceptor:
// callers without an identity get Unauthenticated, other roles
// PermissionDenied. CA issues certificates (ECDSA P-256; `vda certs` is its
// command line), Discover finds a role's files in a directory ($VDA_TLS_DIR,
// /etc/vda/tls by default).
//
// Errors wrap ErrConfig, ErrIdentity, ErrExists or ErrNoCertificates.
// Package mtlstest issues throwaway role certificates for tests.
package mtls

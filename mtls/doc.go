// Package mtls builds the mutual TLS that VDA's gRPC servers and clients
// (portal, monitor, agents, CLI) share: every side presents a certificate,
// and every side verifies the other's against one CA.
//
// A Config names three PEM files. All empty means plaintext (Enabled is
// false); otherwise all three are required:
//
//	cfg := mtls.Config{CertFile: "agent.pem", KeyFile: "agent.key", CAFile: "ca.pem"}
//	server, err := cfg.ServerTLS() // requires and verifies client certificates
//	client, err := cfg.ClientTLS() // presents the certificate, verifies the server
//
// Errors wrap ErrConfig. Package mtlstest writes a throwaway CA with server
// and client certificates for tests.
package mtls

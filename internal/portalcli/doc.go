// Package portalcli is what the VDA command-line clients (vda and
// vda-host) share: the flags that reach the portal and the client they
// make (Conn), cobra helpers for command groups and leaves, and one mapping
// of an invocation's error to the exit status (Execute): 0 on success, 1
// when the request or operation failed (a gRPC status, or an error wrapped
// in Failed), 2 for a bad command line (everything else, ErrUsage among
// it).
package portalcli

// Package portal serves the vda.Cluster API over gRPC (api/portalpb).
//
// A Server is stateless: run as many as needed against one store. Every
// RPC passes through a recovery interceptor (a panic becomes
// codes.Internal and is logged) and a logging interceptor, and every error
// leaves through Status, the one place that maps VDA and store errors to
// gRPC status codes.
//
// New refuses a Config with neither TLS nor Insecure. With Config.TLS
// (mutual TLS with roles, package mtls) the server's certificate names
// vda://portal/<name>, and clients must present a certificate of the same
// CA whose role Policy allows: operators (admin) and monitors may read and
// change the cluster, only operators may unbind nodes, portals and agents
// may call nothing (Unauthenticated without an identity, PermissionDenied
// for another role). ClientTLS builds the client side.
//
// A refused request fails with InvalidArgument (a malformed field, or a
// request that is not valid protobuf), NotFound, AlreadyExists (a create
// whose name exists with another spec; the same spec again returns the
// object), FailedPrecondition or ResourceExhausted, and changes nothing.
// Aborted (a store conflict that kept recurring) and Unavailable (the
// store is closed) are worth a retry; Internal is a bug. FuzzPortal holds
// the server to this.
package portal

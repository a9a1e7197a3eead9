// Package portal serves the vda.Cluster API over gRPC (api/portalpb).
//
// A Server is stateless: run as many as needed against one store. Every
// RPC passes through a recovery interceptor (a panic becomes
// codes.Internal and is logged) and a logging interceptor, and every error
// leaves through Status, the one place that maps VDA and store errors to
// gRPC status codes. With Config.TLS set, clients must present a
// certificate signed by the configured CA (mutual TLS); ClientTLS builds
// the matching client side.
//
// A refused request fails with InvalidArgument (a malformed field, or a
// request that is not valid protobuf), NotFound, AlreadyExists (a create
// whose name exists with another spec; the same spec again returns the
// object), FailedPrecondition or ResourceExhausted, and changes nothing.
// Aborted (a store conflict that kept recurring) and Unavailable (the
// store is closed) are worth a retry; Internal is a bug. FuzzPortal holds
// the server to this.
package portal

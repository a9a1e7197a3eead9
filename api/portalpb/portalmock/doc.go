// Package portalmock holds a gomock (go.uber.org/mock) double of the
// portal's gRPC client (portalpb.PortalClient), for embedders' unit tests
// of code that drives VDA through the portal.
//
// Regenerate with go generate ./api/portalpb/portalmock (TestGeneratedCode
// checks that the committed file is current).
package portalmock

//go:generate go tool mockgen -write_package_comment=false -package portalmock -destination client.go -typed github.com/vda-io/vda/api/portalpb PortalClient

// Package portalpb holds the portal's gRPC API (portal.proto, package
// vda.portal.v1) and the code protoc generates from it. Regenerate with
// `go generate ./api/portalpb`: it needs protoc (Debian's protobuf-compiler);
// the plugins are built at the versions go.mod pins (internal/generated).
// It also regenerates the Cinder driver's Python messages
// (contrib/cinder/vda_cinder/portal_pb2.py).
package portalpb

//go:generate go run ../../internal/generated/protogen portal.proto
//go:generate protoc --python_out=../../contrib/cinder/vda_cinder portal.proto

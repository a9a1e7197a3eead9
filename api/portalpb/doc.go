// Package portalpb holds the portal's gRPC API (portal.proto, package
// vda.portal.v1) and the code protoc generates from it. Regenerate with
// `go generate ./api/portalpb` (needs protoc, protoc-gen-go and
// protoc-gen-go-grpc on PATH).
package portalpb

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative portal.proto

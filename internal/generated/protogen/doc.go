// Command protogen regenerates the gRPC code of one .proto file in the
// current directory with protoc and the plugin versions go.mod pins:
//
//	//go:generate go run ../../internal/generated/protogen portal.proto
package main

// Package generated regenerates the project's generated code (the gRPC
// code protoc makes from api/*/*.proto, the gomock doubles) and its tests
// check that what is committed is what the generators make now, so a
// change to a .proto file or a mocked interface cannot land without its
// generated code.
//
// The generators' versions are pinned as tools in go.mod (protoc-gen-go,
// protoc-gen-go-grpc, mockgen); protoc itself is Debian's protobuf-compiler
// (scripts/test installs it; the tests skip without it unless
// VDA_REQUIRE_GENERATE=1).
package generated

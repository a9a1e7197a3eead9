// Package agentpb holds the node agent's gRPC API (agent.proto, package
// vda.agent.v1) and the code protoc generates from it. Regenerate with
// `go generate ./api/agentpb`: it needs protoc (Debian's protobuf-compiler);
// the plugins are built at the versions go.mod pins (internal/generated).
package agentpb

//go:generate go run ../../internal/generated/protogen agent.proto

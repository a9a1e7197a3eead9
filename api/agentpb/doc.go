// Package agentpb holds the node agent's gRPC API (agent.proto, package
// vda.agent.v1) and the code protoc generates from it. Regenerate with
// `go generate ./api/agentpb` (needs protoc, protoc-gen-go and
// protoc-gen-go-grpc on PATH).
package agentpb

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative agent.proto

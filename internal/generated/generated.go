package generated

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
)

// EnvRequire, set to 1, makes a missing protoc fail the tests instead of
// skipping them.
const EnvRequire = "VDA_REQUIRE_GENERATE"

// Plugins builds protoc-gen-go and protoc-gen-go-grpc, at the versions
// go.mod pins, into dir.
func Plugins(ctx context.Context, dir string) error {
	for name, pkg := range map[string]string{
		"protoc-gen-go":      "google.golang.org/protobuf/cmd/protoc-gen-go",
		"protoc-gen-go-grpc": "google.golang.org/grpc/cmd/protoc-gen-go-grpc",
	} {
		if err := run(ctx, "", "go", "build", "-o", filepath.Join(dir, name), pkg); err != nil {
			return err
		}
	}
	return nil
}

// Protos runs protoc on proto (a file in protoDir) with the plugins in
// binDir and writes the generated files to outDir, as `go generate` does
// into protoDir.
func Protos(ctx context.Context, binDir, protoDir, proto, outDir string) error {
	return run(ctx, protoDir, "protoc",
		"--plugin=protoc-gen-go="+filepath.Join(binDir, "protoc-gen-go"),
		"--plugin=protoc-gen-go-grpc="+filepath.Join(binDir, "protoc-gen-go-grpc"),
		"--go_out="+outDir, "--go_opt=paths=source_relative",
		"--go-grpc_out="+outDir, "--go-grpc_opt=paths=source_relative", proto)
}

func run(ctx context.Context, dir, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %v: %w\n%s", name, args, err, out.String())
	}
	return nil
}

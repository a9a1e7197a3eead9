package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	var stderr bytes.Buffer
	if code := run([]string{"--version"}, &stderr); code != 0 {
		t.Fatalf("--version: exit %d: %s", code, stderr.String())
	}
	if !strings.HasPrefix(stderr.String(), "vda-fakespdk github.com/vda-io/vda ") {
		t.Fatalf("--version printed %q", stderr.String())
	}
}

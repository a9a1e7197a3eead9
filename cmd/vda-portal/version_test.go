package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestVersion(t *testing.T) {
	var stderr bytes.Buffer
	require.Equal(t, 0, run(context.Background(), []string{"--version"}, &stderr, nil))
	require.True(t, strings.HasPrefix(stderr.String(), "vda-portal github.com/vda-io/vda "), stderr.String())
}

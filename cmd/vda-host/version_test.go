package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestVersion(t *testing.T) {
	var out, errOut bytes.Buffer
	require.Equal(t, 0, run(context.Background(), []string{"--version"}, &out, &errOut), errOut.String())
	require.True(t, strings.HasPrefix(out.String(), "vda-host github.com/vda-io/vda "), out.String())
}

package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestExampleRuns(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), t.TempDir(), &out))
	require.Contains(t, out.String(), "exported nqn.2016-06.io.spdk:vda-exp-da0-exp0 on 2 controllers")
	require.Contains(t, out.String(), "is the primary after")
	require.Contains(t, out.String(), "acknowledged writes read back")
	t.Log(out.String())
}

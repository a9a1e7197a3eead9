package main

import (
	"bytes"
	"context"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestExampleRuns(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), &out))
	t.Log(out.String())
	m := regexp.MustCompile(`da0 is served by its primary controller on (cn[01])\n(cn[01]) killed: da0's primary is on (cn[01]) after`).
		FindStringSubmatch(out.String())
	require.NotNil(t, m, out.String())
	require.Equal(t, m[1], m[2], "the primary's node was killed")
	require.NotEqual(t, m[1], m[3], "the primary moved")
}

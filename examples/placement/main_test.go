package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/alloc"
)

func TestExampleRuns(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), &out))
	require.Contains(t, out.String(), "2 of 4 disks are still empty", out.String())
	t.Log(out.String())
}

func TestPackRefuses(t *testing.T) {
	_, err := pack{}.Place(alloc.Request{VDs: 2, VDSizeBytes: 10, Controllers: 1},
		[]alloc.Disk{{ID: "a", FreeBytes: 100}, {ID: "b", FreeBytes: 5}}, []alloc.Node{{ID: "n"}})
	require.ErrorIs(t, err, alloc.ErrExhausted)
}

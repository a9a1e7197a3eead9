package logwatch

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestWriterFindsTheMetricsAddress(t *testing.T) {
	for _, line := range []string{
		"2026-12-07T06:00:00Z [INFO]  serving metrics: addr=127.0.0.1:4242\n",
		`{"@level":"info","@message":"serving metrics","@timestamp":"x","addr":"127.0.0.1:4242"}` + "\n",
	} {
		w := New()
		_, _ = w.Write([]byte("starting\n"))
		require.Empty(t, w.Addr)
		_, _ = w.Write([]byte(line))
		_, _ = w.Write([]byte(line)) // once only: Addr has room for one
		require.Equal(t, "127.0.0.1:4242", <-w.Addr)
		require.Empty(t, w.Addr)
		require.Equal(t, "starting\n"+line+line, w.String())
	}
}

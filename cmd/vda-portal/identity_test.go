package main

import (
	"bytes"
	"context"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/internal/cmdrun"
	"github.com/vda-io/vda/store"
	_ "github.com/vda-io/vda/store/allstores"
)

// The portal writes the store's identity at its first start, keeps it
// across restarts, and refuses a store of another cluster.
func TestStoreIdentity(t *testing.T) {
	dir := t.TempDir()
	uri := (&url.URL{Scheme: "embedded", Path: filepath.Join(dir, "etcd")}).String()
	want := "00112233445566778899aabbccddeeff"
	_, stop := startPortal(t, "--port", "0", "--db-uri", uri, "--cluster-id", want, "--log-level", "error", "--insecure")
	require.Zero(t, stop())
	_, stop = startPortal(t, "--port", "0", "--db-uri", uri, "--log-level", "error", "--insecure")
	require.Zero(t, stop(), "no --cluster-id: any cluster")

	var stderr bytes.Buffer
	other := "ffeeddccbbaa99887766554433221100"
	require.Equal(t, 1, run(context.Background(), []string{"--port", "0", "--db-uri", uri, "--cluster-id", other, "--insecure"}, &stderr, nil))
	require.Contains(t, stderr.String(), "the store belongs to cluster "+want+", not "+other)
	stderr.Reset()
	require.Equal(t, 2, run(context.Background(), []string{"--db-uri", uri, "--cluster-id", "x", "--insecure"}, &stderr, nil))
	require.Contains(t, stderr.String(), "--cluster-id")

	st, err := store.Open(context.Background(), uri)
	require.NoError(t, err)
	defer func() { _ = st.Close() }()
	id, err := vda.ReadIdentity(context.Background(), st)
	require.NoError(t, err)
	require.Equal(t, vda.StoreIdentity{ClusterID: want, LayoutVersion: vda.LayoutVersion}, id)
}

// Without --db-uri the embedded store's socket is where vda-monitor looks.
func TestDefaultStoreSocket(t *testing.T) {
	dir := t.TempDir()
	cfg, err := parse([]string{"--data-dir", dir, "--insecure"}, &bytes.Buffer{})
	require.NoError(t, err)
	u, err := url.Parse(cfg.dbURI)
	require.NoError(t, err)
	sock, err := cmdrun.LocalStoreSocket(dir)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(u.Path, "etcd.sock"), sock, "etcdembed's default socket in the portal's store directory")
	require.ErrorContains(t, cmdrun.CheckLocalStore(dir), "no vda-portal store")
	_, stop := startPortal(t, "--port", "0", "--data-dir", dir, "--log-level", "error", "--insecure")
	require.NoError(t, cmdrun.CheckLocalStore(dir), "served while the portal runs")
	require.Zero(t, stop())
}

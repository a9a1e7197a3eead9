package cmdrun

import (
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/store/etcdembed"
	"github.com/vda-io/vda/store/etcdstore"
)

func TestLocalStore(t *testing.T) {
	dir := t.TempDir()
	emb, err := EmbeddedStoreURI(dir)
	require.NoError(t, err)
	want, err := etcdembed.URI(filepath.Join(dir, "etcd"))
	require.NoError(t, err)
	require.Equal(t, want, emb, "the URI etcdembed makes")
	u, err := url.Parse(emb)
	require.NoError(t, err)
	cfg, _, err := etcdembed.URLConfig(u)
	require.NoError(t, err)

	sock, err := LocalStoreSocket(dir)
	require.NoError(t, err)
	uri, err := LocalStoreURI(dir)
	require.NoError(t, err)
	u, err = url.Parse(uri)
	require.NoError(t, err)
	cc, prefix, err := etcdstore.ClientConfig(u)
	require.NoError(t, err)
	require.Equal(t, []string{"unix://" + sock}, cc.Endpoints)
	require.Empty(t, prefix, "the whole keyspace, as the portal's embedded:// store")
	require.Empty(t, cfg.Socket, "embedded:// uses etcdembed's default socket ...")
	require.Equal(t, filepath.Join(dir, "etcd", "etcd.sock"), sock, "... which is <dir>/etcd.sock")

	require.ErrorContains(t, CheckLocalStore(dir), "no vda-portal store on this machine at "+sock)
	require.NoError(t, os.MkdirAll(filepath.Dir(sock), 0o700))
	require.NoError(t, os.WriteFile(sock, nil, 0o600))
	require.ErrorContains(t, CheckLocalStore(dir), "not a socket")
	require.NoError(t, os.Remove(sock))
	lis, err := net.Listen("unix", sock)
	require.NoError(t, err)
	defer func() { _ = lis.Close() }()
	require.NoError(t, CheckLocalStore(dir))
}

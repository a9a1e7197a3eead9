package etcdembed

import (
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestURIMakesRelativeDirsAbsolute(t *testing.T) {
	wd, err := os.Getwd()
	require.NoError(t, err)
	uri, err := URI(".vda-dev/etcd")
	require.NoError(t, err)
	u, err := url.Parse(uri)
	require.NoError(t, err)
	require.Equal(t, "embedded", u.Scheme)
	require.Equal(t, filepath.Join(wd, ".vda-dev/etcd"), u.Path)
	cfg, _, err := URLConfig(u)
	require.NoError(t, err, "the opener accepts what EmbeddedURI makes")
	require.Equal(t, filepath.Join(wd, ".vda-dev/etcd"), cfg.Dir)
}

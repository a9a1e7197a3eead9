package vda

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestKeys(t *testing.T) {
	require.Equal(t, "/vda/dn/192.168.0.14:9720", KeyDN("192.168.0.14:9720"))
	require.Equal(t, "/vda/pd/192.168.0.14:9720/pd0", KeyPD("192.168.0.14:9720", "pd0"))
	require.Equal(t, "/vda/cn/192.168.0.16:9820", KeyCN("192.168.0.16:9820"))
	require.Equal(t, "/vda/da/da0", KeyDA("da0"))
	require.Equal(t, "/vda/exp/da0/exp0", KeyExp("da0", "exp0"))
	require.Equal(t, "/vda/status/exp/da0/exp0", KeyStatus(KeyExp("da0", "exp0")))
	require.Equal(t, "/vda/status/pd/", KeyStatus(PrefixPD))
	require.Equal(t, "/vda/status/x", KeyStatus("/x"))
	require.Equal(t, "/vda/status/", KeyStatus(""))
}

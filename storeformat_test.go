package vda_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/store"
)

// Records written by earlier versions decode into the typed API: a node's
// listener_conf is the CLI's JSON as a string (one stored before listeners
// were normalised, too), a PD's conf an object. What this version writes
// keeps that encoding, so older readers (a portal or monitor not yet
// upgraded) decode it as before.
func TestOldStoredRecordsDecode(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	old := map[string]string{
		vda.KeyDN("192.168.0.14:9720"): `{"id":"0123456789abcdef0123456789abcdef","name":"192.168.0.14:9720",` +
			`"listener_conf":"{\"trtype\":\"tcp\",\"traddr\":\"192.168.0.14\",\"adrfam\":\"ipv4\",\"trsvcid\":\"4420\"}",` +
			`"location":"rack1","pd_count":1}`,
		// Not normalised: upper case, no adrfam.
		vda.KeyDN("dn-old"): `{"id":"1123456789abcdef0123456789abcdef","name":"dn-old",` +
			`"listener_conf":"{\"trtype\":\"TCP\",\"traddr\":\"192.168.0.15\",\"trsvcid\":\"4420\"}"}`,
		vda.KeyPD("192.168.0.14:9720", "pd0"): `{"id":"2123456789abcdef0123456789abcdef","name":"pd0",` +
			`"dn_name":"192.168.0.14:9720","dn_id":"0123456789abcdef0123456789abcdef","conf":{"type":"malloc","size":134217728}}`,
		vda.KeyCN("192.168.0.16:9820"): `{"id":"3123456789abcdef0123456789abcdef","name":"192.168.0.16:9820",` +
			`"listener_conf":"{\"trtype\":\"tcp\",\"traddr\":\"192.168.0.16\",\"adrfam\":\"ipv4\",\"trsvcid\":\"4430\"}"}`,
	}
	require.NoError(t, store.Update(ctx, s, func(tx *store.Tx) error {
		for k, v := range old {
			tx.Put(k, []byte(v))
		}
		return nil
	}))
	c := newCluster(t, s)

	dn, err := c.GetDiskNode(ctx, "192.168.0.14:9720")
	require.NoError(t, err)
	require.Equal(t, listener("192.168.0.14", "4420"), dn.Listener)
	require.Equal(t, "rack1", dn.Location)
	dn, err = c.GetDiskNode(ctx, "dn-old")
	require.NoError(t, err)
	require.Equal(t, listener("192.168.0.15", "4420"), dn.Listener, "normalised on the way in")
	pd, err := c.GetPhysicalDisk(ctx, "192.168.0.14:9720", "pd0")
	require.NoError(t, err)
	require.Equal(t, vda.PDConf{Type: vda.PDMalloc, SizeBytes: 128 << 20}, pd.Conf)

	// A listener is claimed by its claim key alone (written with every node
	// since listeners are checked for uniqueness): records written before
	// that are not scanned for, which would make a node create read every
	// node. A claimed listener is refused in any spelling.
	_, err = c.CreateControllerNode(ctx, vda.NodeSpec{Name: "cn-a", Listener: listener("192.168.0.20", "4420")})
	require.NoError(t, err)
	_, err = c.CreateDiskNode(ctx, vda.NodeSpec{Name: "dn-b", Listener: nvmeof.TransportID{TrType: "TCP", TrAddr: "192.168.0.20", TrSvcID: "4420"}})
	require.ErrorIs(t, err, vda.ErrAlreadyExists)
	require.ErrorContains(t, err, `controller node "cn-a"`)

	// An exporter shows its controller's listener.
	_, err = c.CreateDiskArray(ctx, vda.DiskArraySpec{Name: "da0", CntlrCount: 1, SizeBytes: 16 << 20,
		Conf: vda.DAConf{StripeCount: 1, StripeSizeKB: 64}})
	require.NoError(t, err)
	_, err = c.CreateExporter(ctx, vda.ExporterSpec{DAName: "da0", Name: "exp0", InitiatorNQN: "nqn.2016-06.io.spdk:host0"})
	require.NoError(t, err)
	exp, err := c.GetExporter(ctx, "da0", "exp0")
	require.NoError(t, err)
	require.Equal(t, listener("192.168.0.16", "4430"), exp.Ports[0].CNListener)

	// Rewritten, the node's listener is still the canonical JSON string.
	desc := "upgraded"
	_, err = c.ModifyDiskNode(ctx, "dn-old", vda.NodeUpdate{Description: &desc})
	require.NoError(t, err)
	kv, err := s.Get(ctx, vda.KeyDN("dn-old"))
	require.NoError(t, err)
	var raw struct {
		ListenerConf string `json:"listener_conf"`
		Description  string `json:"description"`
	}
	require.NoError(t, json.Unmarshal(kv.Value, &raw))
	require.Equal(t, `{"trtype":"tcp","traddr":"192.168.0.15","adrfam":"ipv4","trsvcid":"4420"}`, raw.ListenerConf)
	require.Equal(t, "upgraded", raw.Description)
}

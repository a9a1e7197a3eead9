package spdktest

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/spdk/spdktest/fabric"
)

// json is a subsystem as nvmf_get_subsystems listed it through obj before
// appendJSON: the reference appendJSON is held to.
func (ss *subsystem) json() obj {
	subtype := "NVMe"
	if ss.discovery {
		subtype = "Discovery"
	}
	addrs := []obj{}
	for _, l := range ss.listeners {
		addrs = append(addrs, listenAddrJSON(l.trid, true))
	}
	hosts := []obj{}
	for _, h := range ss.hosts {
		hosts = append(hosts, obj{{"nqn", h}})
	}
	o := obj{{"nqn", ss.nqn}, {"subtype", subtype}, {"listen_addresses", addrs},
		{"allow_any_host", ss.allowAny}, {"hosts", hosts}}
	if ss.discovery {
		return o
	}
	o = append(o, kv{"serial_number", ss.serial}, kv{"model_number", ss.model},
		kv{"max_namespaces", ss.maxNS}, kv{"min_cntlid", ss.minCntlid}, kv{"max_cntlid", ss.maxCntlid})
	nss := []obj{}
	for _, ns := range ss.namespaces {
		n := obj{{"nsid", ns.nsid}, {"bdev_name", ns.b.name}, {"name", ns.b.name}, {"nguid", ns.nguid}}
		if ns.eui64 != "" {
			n = append(n, kv{"eui64", ns.eui64})
		}
		n = append(n, kv{"uuid", ns.uuid})
		if ss.anaReporting {
			n = append(n, kv{"anagrpid", ns.anagrpid})
		}
		nss = append(nss, n)
	}
	return append(o, kv{"namespaces", nss})
}

// TestSubsystemJSONAsObj: nvmf_get_subsystems' elements are the bytes
// obj's encoder wrote for them (itself held to encoding/json by
// TestObjJSONAsEncodingJSON): for the subsystems a disk node and a
// controller node make (hosts, listeners, namespaces with and without ANA
// groups, the discovery subsystem) and for odd strings.
func TestSubsystemJSONAsObj(t *testing.T) {
	const host = "nqn.2016-06.io.vda:fe-1"
	srv := NewServer(t)
	rc := dialRaw(t, srv.SockPath())
	nqn, port := diskNode(t, srv, rc, "a", host)
	rc.ok("nvmf_subsystem_add_host", map[string]any{"nqn": nqn, "host": "nqn.2016-06.io.vda:fe-2"})
	rc.ok("bdev_malloc_create", map[string]any{"name": "m1", "block_size": 512, "num_blocks": 64})
	rc.ok("bdev_malloc_create", map[string]any{"name": "m2", "block_size": 512, "num_blocks": 64})
	const exp = "nqn.2016-06.io.vda:exp-1"
	rc.ok("nvmf_create_subsystem", map[string]any{"nqn": exp, "ana_reporting": true, "min_cntlid": 7, "max_cntlid": 300, "max_namespaces": 4})
	rc.ok("nvmf_subsystem_add_ns", map[string]any{"nqn": exp, "namespace": map[string]any{"bdev_name": "m1", "eui64": "0102030405060708"}})
	rc.ok("nvmf_subsystem_add_ns", map[string]any{"nqn": exp, "namespace": map[string]any{"bdev_name": "m2", "anagrpid": 2}})
	rc.ok("nvmf_subsystem_add_listener", map[string]any{"nqn": exp, "listen_address": map[string]any{"trtype": "tcp", "traddr": "127.0.0.1", "trsvcid": port}})
	rc.ok("nvmf_create_subsystem", map[string]any{"nqn": "nqn.2016-06.io.vda:empty", "allow_any_host": true})

	srv.mu.Lock()
	st := srv.cur.st
	srv.mu.Unlock()
	st.mu.Lock()
	var subs []*subsystem
	for _, ss := range st.subsystems {
		subs = append(subs, ss)
	}
	st.mu.Unlock()
	require.Len(t, subs, 4)

	for _, s := range []string{"", "plain", `q"uo\te`, "<html>&amp;", "tab\there\n", "\x00\x1f\x7f", "é中文", "\xff\xfe", "\u2028\u2029"} {
		subs = append(subs, &subsystem{nqn: s, serial: s, model: s, hosts: []string{s, "h"},
			listeners:  []*listener{{trid: fabric.TransportID{TrType: s, AdrFam: s, TrAddr: s, TrSvcID: s}}, {}},
			namespaces: []*namespace{{nsid: 1, b: &bdev{name: s}, nguid: s, uuid: s, eui64: s}, {b: &bdev{}}},
			maxNS:      4294967295, minCntlid: 65535, maxCntlid: 1, anaReporting: s == "plain", allowAny: s == ""},
			&subsystem{nqn: s, discovery: true, hosts: []string{s}})
	}
	for _, ss := range subs {
		want, err := appendValue(nil, ss.json())
		require.NoError(t, err)
		require.True(t, json.Valid(want))
		require.Equal(t, string(want), string(ss.appendJSON(nil)), "%q", ss.nqn)
	}

	// The listing, and one subsystem by NQN, as the wire carries them.
	var all, one []json.RawMessage
	listing := rc.ok("nvmf_get_subsystems", nil)
	require.NoError(t, json.Unmarshal(listing, &all))
	require.Len(t, all, 4)
	require.NoError(t, json.Unmarshal(rc.ok("nvmf_get_subsystems", map[string]any{"nqn": exp}), &one))
	require.Len(t, one, 1)
	st.mu.Lock()
	want, err := appendValue(nil, st.subsystems[exp].json())
	st.mu.Unlock()
	require.NoError(t, err)
	require.Equal(t, string(want), string(one[0]))
	require.Contains(t, string(listing), string(want))
}

// TestRawResultReply: a reply around a rawResult, its head written into
// the room before the result or (an id too long for it) copied, is the
// reply encodeReply writes for the same bytes through encoding/json.
func TestRawResultReply(t *testing.T) {
	const result = `[{"nqn":"nqn.2016-06.io.spdk:cnode1","hosts":[]}]`
	for _, id := range []json.RawMessage{nil, json.RawMessage(`7`), json.RawMessage(`"abc"`), json.RawMessage(` 5 `),
		json.RawMessage(`12345678901234567890123456789012`), json.RawMessage(`123456789012345678901234567890123`)} {
		want, err := encodeReply(id, json.RawMessage(result), nil)
		require.NoError(t, err)
		r := newRawResult(8)
		r.b = append(r.b, result...)
		got, err := encodeReply(id, r, nil)
		require.NoError(t, err)
		require.Equal(t, string(want), string(got), "id %s", id)
	}
}

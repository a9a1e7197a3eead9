package nvmeof

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const tutorialConf = `{"trtype":"tcp","traddr":"192.168.0.14","adrfam":"ipv4","trsvcid":"4420"}`

func TestParseListenerConfTutorial(t *testing.T) {
	id, err := ParseListenerConf(tutorialConf)
	require.NoError(t, err)
	assert.Equal(t, TransportID{TrType: "tcp", AdrFam: "ipv4", TrAddr: "192.168.0.14", TrSvcID: "4420"}, id)
	assert.NoError(t, id.Validate())
	assert.Equal(t, "tcp 192.168.0.14:4420", id.String())
	assert.Equal(t, tutorialConf, id.JSON(), "JSON gives the tutorial's text back")

	again, err := ParseListenerConf(id.JSON())
	require.NoError(t, err)
	assert.Equal(t, id, again)
}

func TestParseListenerConf(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want TransportID
		err  string // substring of the error; "" means valid
	}{
		{"upper case values", `{"trtype":"TCP","traddr":"10.0.0.1","adrfam":"IPv4","trsvcid":"4430"}`,
			TransportID{"tcp", "ipv4", "10.0.0.1", "4430"}, ""},
		{"rdma", `{"trtype":"RdMa","traddr":"10.0.0.1","adrfam":"ipv4","trsvcid":"1"}`,
			TransportID{"rdma", "ipv4", "10.0.0.1", "1"}, ""},
		{"ipv6 canonicalised", `{"trtype":"tcp","traddr":"FD00:0::0001","adrfam":"ipv6","trsvcid":"65535"}`,
			TransportID{"tcp", "ipv6", "fd00::1", "65535"}, ""},
		{"adrfam inferred v4", ` { "trsvcid":"4420", "traddr":"127.0.0.1" , "trtype":"tcp" } `,
			TransportID{"tcp", "ipv4", "127.0.0.1", "4420"}, ""},
		{"adrfam inferred v6", `{"trtype":"tcp","traddr":"::1","trsvcid":"4420"}`,
			TransportID{"tcp", "ipv6", "::1", "4420"}, ""},
		{"mapped v4 under ipv6", `{"trtype":"tcp","traddr":"::ffff:10.0.0.1","adrfam":"ipv6","trsvcid":"4420"}`,
			TransportID{"tcp", "ipv6", "::ffff:10.0.0.1", "4420"}, ""},

		{"empty", ``, TransportID{}, "want a JSON object"},
		{"array", `[]`, TransportID{}, "want a JSON object"},
		{"unterminated", `{"trtype":"tcp"`, TransportID{}, "malformed JSON"},
		{"trailing", tutorialConf + `{}`, TransportID{}, "data after the JSON object"},
		{"unknown key", `{"trtype":"tcp","traddr":"10.0.0.1","trsvcid":"1","transport":"tcp"}`, TransportID{}, `unknown key "transport"`},
		{"key case", `{"TRTYPE":"tcp","traddr":"10.0.0.1","trsvcid":"1"}`, TransportID{}, `unknown key "TRTYPE" (keys are case-sensitive: "trtype")`},
		{"duplicate", `{"trtype":"tcp","trtype":"rdma","traddr":"10.0.0.1","trsvcid":"1"}`, TransportID{}, `"trtype" given twice`},
		{"number port", `{"trtype":"tcp","traddr":"10.0.0.1","trsvcid":4420}`, TransportID{}, `"trsvcid" must be a string`},
		{"object value", `{"trtype":{},"traddr":"10.0.0.1","trsvcid":"1"}`, TransportID{}, `"trtype" must be a string`},
		{"null value", `{"trtype":null,"traddr":"10.0.0.1","trsvcid":"1"}`, TransportID{}, `"trtype" is null`},
		{"missing trtype", `{"traddr":"10.0.0.1","trsvcid":"1"}`, TransportID{}, `missing field "trtype"`},
		{"missing traddr", `{"trtype":"tcp","trsvcid":"1"}`, TransportID{}, `missing field "traddr"`},
		{"missing trsvcid", `{"trtype":"tcp","traddr":"10.0.0.1"}`, TransportID{}, `missing field "trsvcid"`},
		{"bad trtype", `{"trtype":"pcie","traddr":"10.0.0.1","trsvcid":"1"}`, TransportID{}, `trtype "pcie"`},
		{"bad adrfam", `{"trtype":"tcp","traddr":"10.0.0.1","adrfam":"ib","trsvcid":"1"}`, TransportID{}, `adrfam "ib"`},
		{"host name", `{"trtype":"tcp","traddr":"dn0.example","trsvcid":"1"}`, TransportID{}, `traddr "dn0.example"`},
		{"zone", `{"trtype":"tcp","traddr":"fe80::1%eth0","trsvcid":"1"}`, TransportID{}, `traddr "fe80::1%eth0"`},
		{"v6 under ipv4", `{"trtype":"tcp","traddr":"::1","adrfam":"ipv4","trsvcid":"1"}`, TransportID{}, "not an IPv4"},
		{"v4 under ipv6", `{"trtype":"tcp","traddr":"10.0.0.1","adrfam":"ipv6","trsvcid":"1"}`, TransportID{}, "not an IPv6"},
		{"unspecified", `{"trtype":"tcp","traddr":"0.0.0.0","trsvcid":"1"}`, TransportID{}, "unicast"},
		{"multicast", `{"trtype":"tcp","traddr":"ff02::1","trsvcid":"1"}`, TransportID{}, "unicast"},
		{"leading zero octet", `{"trtype":"tcp","traddr":"10.0.0.01","trsvcid":"1"}`, TransportID{}, "traddr"},
		{"port 0", `{"trtype":"tcp","traddr":"10.0.0.1","trsvcid":"0"}`, TransportID{}, `trsvcid "0"`},
		{"port too big", `{"trtype":"tcp","traddr":"10.0.0.1","trsvcid":"65536"}`, TransportID{}, `trsvcid "65536"`},
		{"port leading zero", `{"trtype":"tcp","traddr":"10.0.0.1","trsvcid":"04420"}`, TransportID{}, `trsvcid "04420"`},
		{"port sign", `{"trtype":"tcp","traddr":"10.0.0.1","trsvcid":"+1"}`, TransportID{}, `trsvcid "+1"`},
		{"port empty", `{"trtype":"tcp","traddr":"10.0.0.1","trsvcid":""}`, TransportID{}, `trsvcid ""`},
		{"too long", `{"trtype":"tcp"` + strings.Repeat(" ", 5000) + `}`, TransportID{}, "more than 4096"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseListenerConf(tc.in)
			if tc.err != "" {
				require.ErrorIs(t, err, ErrInvalidTransportID)
				assert.Contains(t, err.Error(), tc.err)
				assert.Equal(t, TransportID{}, got)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			assert.NoError(t, got.Validate())
			back, err := ParseListenerConf(got.JSON())
			require.NoError(t, err)
			assert.Equal(t, got, back, "JSON round-trips")
		})
	}
}

func TestTransportIDValidateWantsNormalised(t *testing.T) {
	for _, id := range []TransportID{
		{"TCP", "ipv4", "10.0.0.1", "4420"},
		{"tcp", "IPv4", "10.0.0.1", "4420"},
		{"tcp", "", "10.0.0.1", "4420"},
		{"tcp", "ipv6", "FD00::1", "4420"},
		{"tcp", "ipv6", "fd00:0::1", "4420"},
		{},
	} {
		assert.ErrorIs(t, id.Validate(), ErrInvalidTransportID, "%+v", id)
	}
	assert.NoError(t, TransportID{"tcp", "ipv6", "fd00::1", "4420"}.Validate())
}

func TestTransportIDString(t *testing.T) {
	assert.Equal(t, "tcp [fd00::1]:4420", TransportID{"tcp", "ipv6", "fd00::1", "4420"}.String())
	assert.Equal(t, "rdma 10.0.0.1:1", TransportID{"rdma", "ipv4", "10.0.0.1", "1"}.String())
	// Invalid values still print something readable.
	assert.Equal(t, "tcp bogus:x", TransportID{"tcp", "", "bogus", "x"}.String())
}

func TestNewTransportIDFromSPDKReport(t *testing.T) {
	// nvmf_get_subsystems reports upper-case values; they compare equal to
	// the node's listener configuration once normalised.
	conf, err := ParseListenerConf(tutorialConf)
	require.NoError(t, err)
	reported, err := NewTransportID("TCP", "IPv4", "192.168.0.14", "4420")
	require.NoError(t, err)
	assert.Equal(t, conf, reported)
}

// As a JSON field a TransportID is the listener configuration as a string
// (how VDA stores it), normalised on the way in; the zero TransportID is "".
func TestTransportIDText(t *testing.T) {
	type node struct {
		Listener TransportID `json:"listener_conf"`
	}
	var n node
	require.NoError(t, json.Unmarshal([]byte(`{"listener_conf":"{\"trtype\":\"TCP\",\"traddr\":\"fd00:0::1\",\"trsvcid\":\"4420\"}"}`), &n))
	require.Equal(t, TransportID{TrType: "tcp", AdrFam: "ipv6", TrAddr: "fd00::1", TrSvcID: "4420"}, n.Listener)
	b, err := json.Marshal(n)
	require.NoError(t, err)
	require.JSONEq(t, `{"listener_conf":"{\"trtype\":\"tcp\",\"traddr\":\"fd00::1\",\"adrfam\":\"ipv6\",\"trsvcid\":\"4420\"}"}`, string(b))

	b, err = json.Marshal(node{})
	require.NoError(t, err)
	require.JSONEq(t, `{"listener_conf":""}`, string(b))
	n = node{Listener: TransportID{TrType: "tcp"}}
	require.NoError(t, json.Unmarshal(b, &n))
	require.Zero(t, n.Listener)

	err = json.Unmarshal([]byte(`{"listener_conf":"{\"trtype\":\"tcp\"}"}`), &n)
	require.ErrorIs(t, err, ErrInvalidTransportID)
	require.ErrorContains(t, err, `missing field "traddr"`)
}

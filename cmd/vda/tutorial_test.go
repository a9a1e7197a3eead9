package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/portal"
	"github.com/vda-io/vda/portal/portaltest"
	"github.com/vda-io/vda/store/memstore"
)

// The control-plane commands of seed 003 (multiple servers deployment),
// exactly as written there.
const tutorial = `
vda_cli --addr-port 192.168.0.11:9520 dn create --dn-name 192.168.0.14:9720 --dn-listener-conf '{"trtype":"tcp","traddr":"192.168.0.14","adrfam":"ipv4","trsvcid":"4420"}' --location 192.168.0.14:9720
vda_cli --addr-port 192.168.0.11:9520 pd create --dn-name 192.168.0.14:9720 --pd-name pd0 --pd-conf '{"type":"malloc","size":134217728}'
vda_cli --addr-port 192.168.0.11:9520 dn create --dn-name 192.168.0.15:9720 --dn-listener-conf '{"trtype":"tcp","traddr":"192.168.0.15","adrfam":"ipv4","trsvcid":"4420"}' --location 192.168.0.15:9720
vda_cli --addr-port 192.168.0.11:9520 pd create --dn-name 192.168.0.15:9720 --pd-name pd0 --pd-conf '{"type":"malloc","size":134217728}'
vda_cli --addr-port 192.168.0.11:9520 cn create --cn-name 192.168.0.16:9820 --cn-listener-conf '{"trtype":"tcp","traddr":"192.168.0.16","adrfam":"ipv4","trsvcid":"4430"}' --location 192.168.0.16:9820
vda_cli --addr-port 192.168.0.11:9520 cn create --cn-name 192.168.0.17:9820 --cn-listener-conf '{"trtype":"tcp","traddr":"192.168.0.17","adrfam":"ipv4","trsvcid":"4430"}' --location 192.168.0.16:9820
vda_cli --addr-port 192.168.0.11:9520 da create --da-name da0 --cntlr-cnt 2 --da-size 33554432 --physical-size 33554432 --da-conf '{"stripe_count":2, "stripe_size_kb":64}'
vda_cli --addr-port 192.168.0.11:9520 exp create --da-name da0 --exp-name exp0 --initiator-nqn nqn.2016-06.io.spdk:host0
vda_cli --addr-port 192.168.0.11:9520 da create --da-name da1 --cntlr-cnt 2 --da-size 67108864 --physical-size 67108864 --da-conf '{"stripe_count":2, "stripe_size_kb":64}'
vda_cli --addr-port 192.168.0.11:9520 exp create --da-name da1 --exp-name exp1 --initiator-nqn nqn.2016-06.io.spdk:host1
`

// The tutorial's "exp get" outputs (reply_info aside, which OK replies no
// longer carry).
var tutorialExpGet = map[string]string{
	"vda_cli --addr-port 192.168.0.11:9520 exp get --da-name da0 --exp-name exp0": `{
       "exp_id": "c4ab9583fd9842ba906fab3f5b536701",
       "exp_name": "exp0",
       "exp_nqn": "nqn.2016-06.io.spdk:vda-exp-da0-exp0",
       "da_name": "da0",
       "initiator_nqn": "nqn.2016-06.io.spdk:host0",
       "snap_name": "",
       "es_msg_list": [
         {
           "es_id": "0e31eecd1efc4fc2aa1054a5e1618c68",
           "cntlr_idx": 0,
           "cn_name": "192.168.0.16:9820",
           "cn_listener_conf": "{\"trtype\":\"tcp\",\"traddr\":\"192.168.0.16\",\"adrfam\":\"ipv4\",\"trsvcid\":\"4430\"}",
           "error": false,
           "error_msg": ""
         },
         {
           "es_id": "8ffd7919cb4140e49dc6baa9aaeb1aa0",
           "cntlr_idx": 1,
           "cn_name": "192.168.0.17:9820",
           "cn_listener_conf": "{\"trtype\":\"tcp\",\"traddr\":\"192.168.0.17\",\"adrfam\":\"ipv4\",\"trsvcid\":\"4430\"}",
           "error": false,
           "error_msg": ""
         }
       ]
     }`,
	"vda_cli --addr-port 192.168.0.11:9520 exp get --da-name da1 --exp-name exp1": `{
       "exp_id": "8aa4668dbd044dec939959dcaf8f902a",
       "exp_name": "exp1",
       "exp_nqn": "nqn.2016-06.io.spdk:vda-exp-da1-exp1",
       "da_name": "da1",
       "initiator_nqn": "nqn.2016-06.io.spdk:host1",
       "snap_name": "",
       "es_msg_list": [
         {
           "es_id": "faf04922b81a41c58c20e9228bfbcb59",
           "cntlr_idx": 0,
           "cn_name": "192.168.0.16:9820",
           "cn_listener_conf": "{\"trtype\":\"tcp\",\"traddr\":\"192.168.0.16\",\"adrfam\":\"ipv4\",\"trsvcid\":\"4430\"}",
           "error": false,
           "error_msg": ""
         },
         {
           "es_id": "572fd850517b4acfa50b8115e6c20781",
           "cntlr_idx": 1,
           "cn_name": "192.168.0.17:9820",
           "cn_listener_conf": "{\"trtype\":\"tcp\",\"traddr\":\"192.168.0.17\",\"adrfam\":\"ipv4\",\"trsvcid\":\"4430\"}",
           "error": false,
           "error_msg": ""
         }
       ]
     }`,
}

// shellWords splits a command line like a shell: single quotes group.
func shellWords(t *testing.T, line string) []string {
	var words []string
	var cur strings.Builder
	inWord, quoted := false, false
	for _, r := range line {
		switch {
		case r == '\'':
			quoted, inWord = !quoted, true
		case r == ' ' && !quoted:
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	require.False(t, quoted, "unbalanced quote in %q", line)
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

// startPortal serves a fresh memstore cluster on 127.0.0.1:0.
func startPortal(t *testing.T, cfg portal.Config) (string, *vda.Cluster) {
	st, err := memstore.New(memstore.DefaultConfig())
	require.NoError(t, err)
	cl, err := vda.New(vda.DefaultConfig(st))
	require.NoError(t, err)
	cfg.Cluster = cl
	srv, err := portal.New(cfg)
	require.NoError(t, err)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
		require.NoError(t, st.Close())
	})
	return lis.Addr().String(), cl
}

// cliArgs turns a tutorial line into our CLI's arguments: the binary name
// goes, and --addr-port points at the test portal.
func cliArgs(t *testing.T, line, addr string) []string {
	words := shellWords(t, line)
	require.Equal(t, []string{"vda_cli", "--addr-port", "192.168.0.11:9520"}, words[:3])
	return append([]string{"--addr-port", addr}, words[3:]...)
}

func runCLI(t *testing.T, args ...string) (string, string, int) {
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), code
}

func TestTutorial(t *testing.T) {
	addr, _ := startPortal(t, portal.Config{})
	for _, line := range strings.Split(strings.TrimSpace(tutorial), "\n") {
		out, errOut, code := runCLI(t, cliArgs(t, line, addr)...)
		require.Zero(t, code, "%s\nstderr: %s", line, errOut)
		require.True(t, json.Valid([]byte(out)), out)
	}
	hex32 := regexp.MustCompile(`^[0-9a-f]{32}$`)
	for line, want := range tutorialExpGet {
		out, errOut, code := runCLI(t, cliArgs(t, line, addr)...)
		require.Zero(t, code, errOut)
		var got struct {
			ExpMsg map[string]any `json:"exp_msg"`
		}
		require.NoError(t, json.Unmarshal([]byte(out), &got))
		var exp map[string]any
		require.NoError(t, json.Unmarshal([]byte(want), &exp))
		_, hasReply := got.ExpMsg["reply_info"]
		require.False(t, hasReply)
		for k, v := range exp {
			if k == "exp_id" {
				require.Regexp(t, hex32, got.ExpMsg[k])
				continue
			}
			if k != "es_msg_list" {
				require.Equal(t, v, got.ExpMsg[k], k)
				continue
			}
			wantES, gotES := v.([]any), got.ExpMsg[k].([]any)
			require.Len(t, gotES, len(wantES))
			for i := range wantES {
				w, g := wantES[i].(map[string]any), gotES[i].(map[string]any)
				require.Regexp(t, hex32, g["es_id"])
				delete(w, "es_id")
				for field, val := range w {
					require.Equal(t, val, g[field], "es_msg_list[%d].%s", i, field)
				}
			}
		}
	}
}

func TestCLIErrors(t *testing.T) {
	addr, _ := startPortal(t, portal.Config{})
	_, errOut, code := runCLI(t, "--addr-port", addr, "da", "get", "--da-name", "nope")
	require.Equal(t, exitError, code)
	require.Contains(t, errOut, "NotFound")
	require.Contains(t, errOut, `disk array "nope"`)

	_, errOut, code = runCLI(t, "--addr-port", addr, "da", "create", "--da-name", "da0", "--da-size", "4097")
	require.Equal(t, exitError, code)
	require.Contains(t, errOut, "InvalidArgument")

	_, errOut, code = runCLI(t, "--addr-port", addr, "da", "create", "--da-name", "da0")
	require.Equal(t, exitUsage, code)
	require.Contains(t, errOut, "da-size")

	_, _, code = runCLI(t, "--addr-port", addr, "dn", "list", "-o", "yaml")
	require.Equal(t, exitUsage, code)

	out, _, code := runCLI(t, "da", "create", "--help")
	require.Zero(t, code)
	require.Contains(t, out, "--physical-size")
	require.Contains(t, out, "Examples:")

	out, _, code = runCLI(t, "completion", "bash")
	require.Zero(t, code)
	require.Contains(t, out, "bash completion")
}

func TestCLITable(t *testing.T) {
	addr, _ := startPortal(t, portal.Config{})
	for _, line := range strings.Split(strings.TrimSpace(tutorial), "\n")[:6] {
		_, errOut, code := runCLI(t, cliArgs(t, line, addr)...)
		require.Zero(t, code, errOut)
	}
	out, errOut, code := runCLI(t, "--addr-port", addr, "-o", "table", "pd", "list", "--limit", "1")
	require.Zero(t, code, errOut)
	require.Contains(t, out, "PD_NAME")
	require.Contains(t, out, "192.168.0.14:9720")
	require.NotContains(t, out, "192.168.0.15:9720")
	require.Contains(t, out, "next page token:")

	out, errOut, code = runCLI(t, "--addr-port", addr, "cn", "modify", "--cn-name", "192.168.0.17:9820", "--offline", "--description", "maintenance")
	require.Zero(t, code, errOut)
	require.Contains(t, out, `"offline": true`)
	require.Contains(t, out, `"description": "maintenance"`)
}

func TestCLIMutualTLS(t *testing.T) {
	server, client, err := portaltest.WriteCerts(t.TempDir())
	require.NoError(t, err)
	addr, _ := startPortal(t, portal.Config{TLS: server})
	tlsArgs := []string{"--addr-port", addr, "--tls-cert", client.CertFile, "--tls-key", client.KeyFile, "--tls-ca", client.CAFile}
	out, errOut, code := runCLI(t, append(tlsArgs, "cluster", "summary")...)
	require.Zero(t, code, errOut)
	require.Contains(t, out, `"dn_cnt": 0`)

	_, errOut, code = runCLI(t, "--addr-port", addr, "--timeout", "5s", "cluster", "summary")
	require.Equal(t, exitError, code, "plaintext is refused")
	require.Contains(t, errOut, "Unavailable")

	_, _, code = runCLI(t, "--addr-port", addr, "--tls-cert", client.CertFile, "cluster", "summary")
	require.Equal(t, exitUsage, code, "incomplete TLS flags")
}

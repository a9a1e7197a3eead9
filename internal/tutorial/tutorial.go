package tutorial

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
)

// Commands are the tutorial's control-plane commands, one per line,
// exactly as written there.
const Commands = `
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

// ExpGet maps the tutorial's "exp get" commands to the outputs it shows
// (reply_info aside, which OK replies no longer carry).
var ExpGet = map[string]string{
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

// Portal is the portal address every tutorial command names.
const Portal = "192.168.0.11:9520"

// Lines returns Commands, one command per element.
func Lines() []string { return strings.Split(strings.TrimSpace(Commands), "\n") }

// Words splits a command line like a POSIX shell does for the tutorial's
// lines: on spaces, with single quotes grouping.
func Words(line string) ([]string, error) {
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
	if quoted {
		return nil, fmt.Errorf("tutorial: unbalanced quote in %q", line)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// Args turns a tutorial line into the vda CLI's arguments: the binary
// name goes, and --addr-port becomes addr (or stays, when addr is "").
func Args(line, addr string) ([]string, error) {
	words, err := Words(line)
	if err != nil {
		return nil, err
	}
	if len(words) < 3 || words[0] != "vda_cli" || words[1] != "--addr-port" || words[2] != Portal {
		return nil, fmt.Errorf("tutorial: %q does not start with vda_cli --addr-port %s", line, Portal)
	}
	if addr == "" {
		addr = Portal
	}
	return append([]string{"--addr-port", addr}, words[3:]...), nil
}

var hex32 = regexp.MustCompile(`^[0-9a-f]{32}$`)

// ErrMismatch is returned by CheckExpGet when an output differs.
var ErrMismatch = errors.New("tutorial: output differs")

// CheckExpGet compares the JSON our CLI printed for an exp get with the
// tutorial's output want: every field the tutorial shows must be there
// with its value, except the random exp_id and es_id, which must be
// 32-hex IDs. Fields the tutorial does not show are allowed.
func CheckExpGet(got []byte, want string) error {
	var g struct {
		ExpMsg map[string]any `json:"exp_msg"`
	}
	if err := json.Unmarshal(got, &g); err != nil {
		return fmt.Errorf("%w: %v: %s", ErrMismatch, err, got)
	}
	var w map[string]any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		return err
	}
	if _, ok := g.ExpMsg["reply_info"]; ok {
		return fmt.Errorf("%w: OK replies carry no reply_info", ErrMismatch)
	}
	for k, v := range w {
		switch k {
		case "exp_id":
			if !isID(g.ExpMsg[k]) {
				return fmt.Errorf("%w: exp_id %v", ErrMismatch, g.ExpMsg[k])
			}
		case "es_msg_list":
			if err := checkES(v, g.ExpMsg[k]); err != nil {
				return err
			}
		default:
			if !reflect.DeepEqual(v, g.ExpMsg[k]) {
				return fmt.Errorf("%w: %s is %v, want %v", ErrMismatch, k, g.ExpMsg[k], v)
			}
		}
	}
	return nil
}

func isID(v any) bool {
	s, ok := v.(string)
	return ok && hex32.MatchString(s)
}

func checkES(want, got any) error {
	w, _ := want.([]any)
	g, ok := got.([]any)
	if !ok || len(g) != len(w) {
		return fmt.Errorf("%w: es_msg_list %v, want %d entries", ErrMismatch, got, len(w))
	}
	for i := range w {
		we, _ := w[i].(map[string]any)
		ge, _ := g[i].(map[string]any)
		for field, val := range we {
			if field == "es_id" {
				if !isID(ge[field]) {
					return fmt.Errorf("%w: es_msg_list[%d].es_id %v", ErrMismatch, i, ge[field])
				}
				continue
			}
			if !reflect.DeepEqual(val, ge[field]) {
				return fmt.Errorf("%w: es_msg_list[%d].%s is %v, want %v", ErrMismatch, i, field, ge[field], val)
			}
		}
	}
	return nil
}

package spdktest

import (
	"bytes"
	"encoding/json"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// JSON-RPC error codes SPDK uses at the protocol level.
const (
	codeParseError     = -32700
	codeInvalidRequest = -32600
	codeMethodNotFound = -32601
	codeInvalidParams  = -32602
	codeInternalError  = -32603
)

// Error is an error reply: {"code":..,"message":..}. Handlers return it and
// Inject can be given one.
type Error struct {
	Code    int
	Message string
}

func (e *Error) Error() string {
	return "spdktest: rpc error " + strconv.Itoa(e.Code) + ": " + e.Message
}

func rpcErr(code int, msg string) *Error { return &Error{Code: code, Message: msg} }

// Errno-style errors as SPDK prints them with spdk_strerror.
var (
	errNoDevice    = rpcErr(-19, "No such device")
	errExists      = rpcErr(-17, "File exists")
	errInval       = rpcErr(-22, "Invalid argument")
	errPerm        = rpcErr(-1, "Operation not permitted")
	errNoEnt       = rpcErr(-2, "No such file or directory")
	errDecode      = rpcErr(codeInternalError, "spdk_json_decode_object failed")
	errInvalParams = rpcErr(codeInvalidParams, "Invalid parameters")
	errInternal    = rpcErr(codeInternalError, "Internal error")
	// errCrashed is returned by a handler that called state.crash: real
	// SPDK dies on the request, so no reply is sent and the connection
	// closes.
	errCrashed = rpcErr(codeInternalError, "target crashed")
)

// request is one decoded JSON-RPC request.
type request struct {
	method string
	params json.RawMessage // nil when absent or null
	id     json.RawMessage // raw id text; nil when absent or null
}

// parseRequest validates one top-level JSON value the way SPDK's
// jsonrpc_server.c does. On a protocol error it returns the error and the id
// to put in the reply (nil means null).
func parseRequest(raw []byte) (*request, json.RawMessage, *Error) {
	invalid := rpcErr(codeInvalidRequest, "Invalid request")
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, nil, invalid
	}
	if req, id, perr, ok := parseRequestFast(raw); ok {
		return req, id, perr
	}
	return parseRequestMap(raw)
}

// parseRequestMap is parseRequest through encoding/json, for raw trimmed
// and starting with '{'.
func parseRequestMap(raw []byte) (*request, json.RawMessage, *Error) {
	invalid := rpcErr(codeInvalidRequest, "Invalid request")
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, nil, invalid
	}
	req := &request{}
	for k, v := range m {
		switch k {
		case "jsonrpc":
			var s string
			if json.Unmarshal(v, &s) != nil || s != "2.0" {
				return nil, nil, invalid
			}
		case "method":
			if json.Unmarshal(v, &req.method) != nil || !isJSONString(v) {
				return nil, nil, invalid
			}
		case "id":
			switch firstByte(v) {
			case 'n':
			case '"', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
				req.id = v
			default:
				return nil, nil, invalid
			}
		case "params":
			if firstByte(v) != 'n' {
				req.params = v
			}
		default:
			return nil, nil, invalid
		}
	}
	if _, ok := m["method"]; !ok {
		return nil, nil, invalid
	}
	if p := firstByte(req.params); p != 0 && p != '{' && p != '[' {
		return nil, req.id, invalid
	}
	return req, req.id, nil
}

// parseRequestFast is parseRequest over objectMembers, for a request that
// is valid JSON (serveConn checks): the same answers without decoding the
// envelope into a map. ok is false when objectMembers cannot read raw, or
// a member is not of the plain form read here (a method or version string
// with escapes or other bytes: encoding/json decodes those); parseRequest
// then decides.
func parseRequestFast(raw []byte) (req *request, id json.RawMessage, perr *Error, ok bool) {
	var buf [8]member
	ms, ok := objectMembers(raw, buf[:0])
	if !ok {
		return nil, nil, nil, false
	}
	invalid := rpcErr(codeInvalidRequest, "Invalid request")
	req = &request{}
	hasMethod := false
	for i, m := range ms {
		if !lastOf(ms, i) { // a map keeps the last of a repeated name
			continue
		}
		v := m.val
		switch string(m.key) {
		case "jsonrpc":
			s, plain := plainJSONString(v)
			if !plain {
				return nil, nil, nil, false
			}
			if s != "2.0" {
				return nil, nil, invalid, true
			}
		case "method":
			if v[0] != '"' {
				return nil, nil, invalid, true
			}
			s, plain := plainJSONString(v)
			if !plain {
				return nil, nil, nil, false
			}
			req.method, hasMethod = s, true
		case "id":
			switch v[0] {
			case 'n':
			case '"', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
				req.id = v
			default:
				return nil, nil, invalid, true
			}
		case "params":
			if v[0] != 'n' {
				req.params = v
			}
		default:
			return nil, nil, invalid, true
		}
	}
	if !hasMethod {
		return nil, nil, invalid, true
	}
	if p := firstByte(req.params); p != 0 && p != '{' && p != '[' {
		return nil, req.id, invalid, true
	}
	return req, req.id, nil, true
}

// plainJSONString returns the JSON string v's text when it is printable
// ASCII without escapes, which is then the text encoding/json decodes.
func plainJSONString(v []byte) (string, bool) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return "", false
	}
	for _, c := range v[1 : len(v)-1] {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return "", false
		}
	}
	return string(v[1 : len(v)-1]), true
}

func firstByte(v json.RawMessage) byte {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return 0
	}
	return v[0]
}

func isJSONString(v json.RawMessage) bool { return firstByte(v) == '"' }

// encodeReply builds SPDK's reply bytes: compact, key order jsonrpc, id,
// result|error, then "\n". A successful reply to a request without id is
// truncated (no closing brace, no newline), as SPDK v24.01 does.
func encodeReply(id json.RawMessage, result any, rerr *Error) ([]byte, error) {
	// The result is encoded in place: encoding it apart and copying it in
	// cost a listing's bytes twice, and the copies' growth.
	b := make([]byte, 0, 64+len(id))
	b = append(b, `{"jsonrpc":"2.0","id":`...)
	if id == nil {
		b = append(b, "null"...)
	} else if plainID(id) {
		b = append(b, id...)
	} else {
		c := bytes.NewBuffer(b)
		if err := json.Compact(c, id); err != nil {
			return nil, err
		}
		b = c.Bytes()
	}
	var err error
	if rerr != nil {
		b = append(b, `,"error":{"code":`...)
		b = strconv.AppendInt(b, int64(rerr.Code), 10)
		b = append(b, `,"message":`...)
		if b, err = appendMarshal(b, rerr.Message); err != nil {
			return nil, err
		}
		return append(b, "}}\n"...), nil
	}
	b = append(b, `,"result":`...)
	if r, ok := result.(rawResult); ok && len(b) <= rawHead {
		// The head goes into the room before the result: no copy.
		start := rawHead - len(b)
		copy(r.b[start:], b)
		b = r.b[start:]
	} else if b, err = appendMarshal(b, result); err != nil {
		return nil, err
	}
	if id == nil {
		return b, nil
	}
	return append(b, "}\n"...), nil
}

// plainID reports whether id is an integer without white space, which
// json.Compact would copy as it is.
func plainID(id json.RawMessage) bool {
	for _, c := range id {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(id) > 0
}

// marshal encodes v compactly without HTML escaping (SPDK writes '<', '>'
// and '&' as is).
func marshal(v any) ([]byte, error) { return appendMarshal(nil, v) }

// appendMarshal appends what marshal returns for v to b; on error it
// returns nil.
func appendMarshal(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case obj: // the same bytes without encoding/json's second pass over them
		return appendValue(b, v)
	case []obj: // the listings (a subsystem or controller is a few hundred bytes)
		return appendValue(slices.Grow(b, 512*len(v)+2), v)
	case []bdevJSON:
		return appendList(slices.Grow(b, 1024*len(v)+2), v)
	case []lvolJSON:
		return appendList(slices.Grow(b, 256*len(v)+2), v)
	case rawResult: // with room for the reply's closing "}\n"
		return append(slices.Grow(b, len(v.bytes())+2), v.bytes()...), nil
	case bool: // most methods' answer: true
		return strconv.AppendBool(b, v), nil
	case string:
		if plainString(v) {
			return appendValue(b, v)
		}
	case []string: // bdev_nvme_attach_controller's bdev names
		if v != nil && !slices.ContainsFunc(v, func(s string) bool { return !plainString(s) }) {
			b = append(slices.Grow(b, 2+len(v)*32), '[')
			for i, s := range v {
				if i > 0 {
					b = append(b, ',')
				}
				b = append(append(append(b, '"'), s...), '"')
			}
			return append(b, ']'), nil
		}
	}
	buf := bytes.NewBuffer(b)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// serveConn answers the requests on one connection until the peer closes
// it, it sends bytes that are not JSON, or the instance stops. Requests run
// in the order they arrive; a method that completes asynchronously in SPDK
// (see async) sends its reply when it is done, and the requests after it
// are answered meanwhile, as SPDK's JSON-RPC server does.
//
// Replies to requests that arrived together go out together: while the
// next request is already read, a reply waits in out, and everything
// waiting is written at once before the connection is read again (or
// before an asynchronous reply, a hang-up or a fault's delay, so the order
// on the wire is the order of completion). SPDK does the same: a reply is
// queued on the connection and its send buffer is flushed by the server's
// poller (jsonrpc_server_conn_send), so requests pipelined by a client are
// answered by few writes, not one each.
func (in *instance) serveConn(c net.Conn) {
	defer c.Close()
	var wmu sync.Mutex // one writer at a time; guards out
	var out []byte     // replies not yet written, in completion order
	flushLocked := func() bool {
		if len(out) == 0 {
			return true
		}
		_, err := c.Write(out)
		out = out[:0]
		return err == nil
	}
	flush := func() bool {
		wmu.Lock()
		defer wmu.Unlock()
		return flushLocked()
	}
	// send writes a's reply after any waiting ones, or, with hold, leaves
	// it waiting.
	send := func(a answer, hold bool) bool {
		wmu.Lock()
		defer wmu.Unlock()
		hold = hold && a.post == nil && !a.hangUp
		switch {
		case len(out) == 0 && !hold && a.reply != nil:
			// Alone: written as it is, not copied into out first (a
			// listing's reply is large, and out kept the largest).
			if _, err := c.Write(a.reply); err != nil {
				return false
			}
		case a.reply != nil:
			out = append(out, a.reply...)
		}
		if hold {
			return true
		}
		if !flushLocked() {
			return false
		}
		if a.post != nil {
			go a.post() // e.g. spdk_kill_instance: stop after the reply is out
		}
		if a.hangUp {
			_ = c.Close()
			return false
		}
		return true
	}
	var buf []byte
	chunk := make([]byte, 64<<10)
	for {
		n, complete := frameValue(buf)
		if !complete {
			if !flush() {
				return
			}
			k, err := c.Read(chunk)
			if k > 0 {
				buf = append(buf, chunk[:k]...)
				continue
			}
			if err != nil {
				return
			}
			continue
		}
		raw := buf[:n]
		if !json.Valid(raw) {
			flush()
			return // unparseable JSON: SPDK closes without a reply
		}
		raw = append([]byte(nil), raw...)
		buf = buf[n:]
		if in.t.faultsArmed() && !flush() {
			return // a fault may delay this request: earlier replies go first
		}
		a := in.handle(raw)
		if a.later != nil {
			in.wg.Add(1) // serveConn holds one: stop has not started waiting
			go func() {
				defer in.wg.Done()
				send(a.later(), false)
			}()
			continue
		}
		_, more := frameValue(buf)
		if !send(a, more) {
			return
		}
	}
}

// frameValue finds the end of the first JSON value in buf, the way SPDK's
// incremental parser does: objects, arrays and strings end at their closing
// byte, bare literals and numbers at the next delimiter. It returns the
// length including leading whitespace and whether the value is complete.
func frameValue(buf []byte) (int, bool) {
	i := 0
	for i < len(buf) && isSpace(buf[i]) {
		i++
	}
	if i == len(buf) {
		return 0, false
	}
	switch buf[i] {
	case '{', '[', '"':
		depth, inStr, esc := 0, false, false
		for j := i; j < len(buf); j++ {
			c := buf[j]
			switch {
			case esc:
				esc = false
			case inStr && c == '\\':
				esc = true
			case c == '"':
				inStr = !inStr
				if !inStr && depth == 0 {
					return j + 1, true
				}
			case inStr:
			case c == '{' || c == '[':
				depth++
			case c == '}' || c == ']':
				depth--
				if depth <= 0 {
					return j + 1, true
				}
			}
		}
		return 0, false
	}
	for j := i; j < len(buf); j++ {
		if isSpace(buf[j]) || strings.IndexByte("{}[],:\"", buf[j]) >= 0 {
			if j == i {
				return j + 1, true // a stray delimiter: invalid, closes the connection
			}
			return j, true
		}
	}
	return 0, false
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// afterReply is a result whose fn runs once the reply has been written.
type afterReply struct {
	result any
	fn     func()
}

// answer is what serveConn does for one request.
type answer struct {
	reply  []byte        // sent now; nil for none
	hangUp bool          // close the connection (after the reply, if any)
	post   func()        // started once the reply is out
	later  func() answer // the method completes asynchronously: its answer comes from later
}

// handle runs one raw request and returns what to send.
func (in *instance) handle(raw json.RawMessage) answer {
	req, id, perr := parseRequest(raw)
	if perr != nil {
		b, _ := encodeReply(id, nil, perr)
		return answer{reply: b}
	}
	in.t.count(req.method)
	f, hasFault := in.t.takeFault(req.method)
	if hasFault {
		if !f.apply(in.done) {
			return answer{hangUp: true}
		}
		if f.Error != nil {
			b, _ := encodeReply(req.id, nil, f.Error)
			return answer{reply: b}
		}
	}
	dropReply := hasFault && f.DropReply
	result, rerr := in.call(req)
	if rerr == errCrashed || in.st.isDying() {
		// The method crashed the process: nothing answers.
		return answer{hangUp: true}
	}
	if rest, ok := result.(async); ok {
		return answer{later: func() answer {
			result, rerr := in.complete(req, rest)
			return encodeAnswer(req, result, rerr, dropReply)
		}}
	}
	return encodeAnswer(req, result, rerr, dropReply)
}

// encodeAnswer encodes the answer to req; with dropReply the method ran but the
// connection closes without its reply.
func encodeAnswer(req *request, result any, rerr *Error, dropReply bool) answer {
	var post func()
	if ar, ok := result.(afterReply); ok {
		result, post = ar.result, ar.fn
	}
	if dropReply {
		return answer{hangUp: true, post: post}
	}
	b, err := encodeReply(req.id, result, rerr)
	if err != nil {
		b, _ = encodeReply(req.id, nil, rpcErr(codeInternalError, err.Error()))
	}
	return answer{reply: b, post: post}
}

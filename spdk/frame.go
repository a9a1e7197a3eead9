package spdk

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// replyReader cuts the byte stream from SPDK into replies. It replaces json.Decoder, which
// scans every reply twice (once to find its end, once more to copy the result into a
// json.RawMessage) before the caller's json.Unmarshal scans it twice again: here the stream is
// scanned once, by a tokenizer that checks the structure of the whole reply (brackets,
// strings, commas and colons; not the spelling of literals and escapes), so that garbage
// breaks the connection at once instead of leaving it waiting for an end that never comes, and
// records where the members of the top-level object begin and end. The small members (id,
// error, jsonrpc, and any other) are then checked strictly by encoding/json; the result is
// copied out once and checked by the caller's json.Unmarshal (json.Valid when the caller
// ignores it), so a result whose tokens are misspelt (the structure being intact) fails that
// one call with ErrBadResponse; a broken structure breaks the connection.
type replyReader struct {
	r   io.Reader
	buf []byte
	end int // buf[:end] holds unread bytes; a reply being scanned starts at buf[0]

	// Scanner state, kept across reads of one reply.
	pos     int    // next byte to scan
	state   uint8  // what the grammar expects next (st*)
	stack   []byte // open containers: '{' or '['
	escaped bool   // in a string, after a backslash
	members []member
}

// member is one name/value pair of the top-level object, as offsets into buf.
type member struct {
	keyStart, keyEnd int // the quoted name
	valStart, valEnd int
}

const (
	stTop          uint8 = iota // before the reply: white space, then '{'
	stValue                     // a value
	stValueOrClose              // after '[': a value or ']'
	stKeyOrClose                // after '{': a name or '}'
	stKey                       // after ',' in an object: a name
	stColon                     // after a name
	stAfter                     // after a value: ',' or the container's close
	stString                    // in a string value
	stKeyString                 // in a name
	stLiteral                   // in a number, true, false or null
)

// readBufSize is the initial size of the read buffer. It grows to the largest reply seen
// and is kept for the next one unless it grew past maxIdleBuf.
const (
	readBufSize = 16 << 10
	maxIdleBuf  = 4 << 20
)

func newReplyReader(r io.Reader) *replyReader {
	return &replyReader{r: r, buf: make([]byte, readBufSize)}
}

var errNotObject = errors.New("reply is not a JSON object")

func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\r' || c == '\t' }

// next returns the next reply. io.EOF means the stream ended cleanly between replies; any
// other error means the stream cannot be trusted any more.
func (rr *replyReader) next() (response, error) {
	rr.pos, rr.state, rr.stack, rr.escaped, rr.members = 0, stTop, rr.stack[:0], false, rr.members[:0]
	for {
		n, done, err := rr.scan()
		if err != nil {
			return response{}, err
		}
		if done {
			resp, err := rr.envelope()
			// Keep the bytes after this reply for the next one.
			rest := copy(rr.buf, rr.buf[n:rr.end])
			rr.end = rest
			if len(rr.buf) > maxIdleBuf && rest <= readBufSize {
				small := make([]byte, readBufSize)
				copy(small, rr.buf[:rest])
				rr.buf = small
			}
			return resp, err
		}
		if rr.end == len(rr.buf) {
			bigger := make([]byte, 2*len(rr.buf))
			copy(bigger, rr.buf[:rr.end])
			rr.buf = bigger
		}
		m, err := rr.r.Read(rr.buf[rr.end:])
		rr.end += m
		if err != nil && m == 0 {
			if errors.Is(err, io.EOF) {
				if rr.state != stTop {
					return response{}, io.ErrUnexpectedEOF
				}
			}
			return response{}, err
		}
	}
}

// scan advances over buf[pos:end]. done reports that one whole reply ends before offset n.
func (rr *replyReader) scan() (n int, done bool, err error) {
	buf := rr.buf[:rr.end]
	i := rr.pos
	defer func() { rr.pos = i }()
	for i < len(buf) {
		c := buf[i]
		switch rr.state {
		case stString, stKeyString:
			// The hot loop: run to the closing quote, in one jump when no backslash comes
			// before it.
			if !rr.escaped {
				rest := buf[i:]
				q := bytes.IndexByte(rest, '"')
				if q < 0 {
					q = len(rest)
				}
				if bytes.IndexByte(rest[:q], '\\') < 0 {
					i += q
				}
			}
			for ; i < len(buf); i++ {
				c = buf[i]
				if rr.escaped {
					rr.escaped = false
					continue
				}
				if c == '\\' {
					rr.escaped = true
					continue
				}
				if c == '"' {
					break
				}
			}
			if i == len(buf) {
				return 0, false, nil
			}
			i++
			if rr.state == stKeyString {
				if len(rr.stack) == 1 {
					rr.members[len(rr.members)-1].keyEnd = i
				}
				rr.state = stColon
			} else {
				rr.state = stAfter
			}
			continue
		case stLiteral:
			if c == ',' || c == ']' || c == '}' || isSpace(c) {
				rr.state = stAfter
				continue // the delimiter is handled in stAfter
			}
			if c == '"' || c == '{' || c == '[' || c == ':' {
				return 0, false, fmt.Errorf("invalid character %q after a literal", c)
			}
			i++
			continue
		}
		if isSpace(c) {
			i++
			continue
		}
		switch rr.state {
		case stTop:
			if c != '{' {
				return 0, false, errNotObject
			}
			rr.stack = append(rr.stack, '{')
			rr.state = stKeyOrClose
		case stValue, stValueOrClose:
			if c == ']' && rr.state == stValueOrClose {
				rr.state = stAfter
				continue // the close is handled in stAfter
			}
			if len(rr.stack) == 1 {
				rr.members[len(rr.members)-1].valStart = i
			}
			switch {
			case c == '{':
				rr.stack = append(rr.stack, '{')
				rr.state = stKeyOrClose
			case c == '[':
				rr.stack = append(rr.stack, '[')
				rr.state = stValueOrClose
			case c == '"':
				rr.state = stString
			case c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z':
				rr.state = stLiteral
			default:
				return 0, false, fmt.Errorf("invalid character %q looking for a value", c)
			}
		case stKeyOrClose, stKey:
			if c == '}' && rr.state == stKeyOrClose {
				rr.state = stAfter
				continue
			}
			if c != '"' {
				return 0, false, fmt.Errorf("invalid character %q looking for an object key", c)
			}
			if len(rr.stack) == 1 {
				rr.members = append(rr.members, member{keyStart: i})
			}
			rr.state = stKeyString
		case stColon:
			if c != ':' {
				return 0, false, fmt.Errorf("invalid character %q after an object key", c)
			}
			rr.state = stValue
		case stAfter:
			top := rr.stack[len(rr.stack)-1]
			switch {
			case c == ',':
				if len(rr.stack) == 1 {
					rr.members[len(rr.members)-1].valEnd = i
				}
				if top == '{' {
					rr.state = stKey
				} else {
					rr.state = stValue
				}
			case c == '}' && top == '{' || c == ']' && top == '[':
				if len(rr.stack) == 1 && len(rr.members) > 0 {
					rr.members[len(rr.members)-1].valEnd = i
				}
				rr.stack = rr.stack[:len(rr.stack)-1]
				if len(rr.stack) == 0 {
					i++
					return i, true, nil
				}
			default:
				return 0, false, fmt.Errorf("invalid character %q after a value", c)
			}
		}
		i++
	}
	return 0, false, nil
}

// envelope decodes the reply just scanned, whose top-level members scan recorded. Names match
// as encoding/json matches them (case-insensitively; the last of duplicates wins); every
// member but the result is checked strictly here.
func (rr *replyReader) envelope() (response, error) {
	var resp response
	var result []byte
	for _, m := range rr.members {
		key := rr.buf[m.keyStart:m.keyEnd]
		val := bytes.TrimRight(rr.buf[m.valStart:m.valEnd], " \t\r\n")
		name, err := memberName(key)
		if err != nil {
			return response{}, err
		}
		switch {
		case equalFold(name, "result"):
			if result != nil && !json.Valid(result) {
				continue // a repeated result: keep the bad one for the caller to refuse
			}
			result = val
			continue
		case equalFold(name, "id"):
			if !json.Valid(val) {
				return response{}, fmt.Errorf("invalid id %.40q", val)
			}
			resp.ID = json.RawMessage(bytes.Clone(val))
		case equalFold(name, "error"):
			// Into the same pointer, as encoding/json decodes a repeated member.
			if err := json.Unmarshal(val, &resp.Error); err != nil {
				return response{}, fmt.Errorf("error member: %w", err)
			}
		default:
			if !json.Valid(val) {
				return response{}, fmt.Errorf("invalid value of member %.40q", key)
			}
		}
	}
	if result != nil {
		resp.Result = json.RawMessage(bytes.Clone(result))
	}
	return resp, nil
}

// memberName returns a member's name from its quoted form.
func memberName(quoted []byte) ([]byte, error) {
	inner := quoted[1 : len(quoted)-1]
	plain := true
	for _, c := range inner {
		if c < 0x20 || c == '\\' || c >= 0x80 {
			plain = false
			break
		}
	}
	if plain {
		return inner, nil
	}
	var s string
	if err := json.Unmarshal(quoted, &s); err != nil {
		return nil, fmt.Errorf("invalid object key %.40q", quoted)
	}
	return []byte(s), nil
}

// equalFold matches a member name the way encoding/json matches field names.
func equalFold(name []byte, field string) bool { return bytes.EqualFold(name, []byte(field)) }

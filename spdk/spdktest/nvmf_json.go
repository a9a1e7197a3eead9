package spdktest

import "strconv"

// rawResult is a result already encoded, in b[rawHead:]: the reply carries
// its bytes as they are. A handler returns one when the state its bytes
// show must be read under the state's lock and encoding it there costs
// less than copying it out first. The first rawHead bytes are room for the
// reply's head, which encodeReply writes there when it fits, so that a
// listing of a megabyte is not copied (and its buffer not made) twice.
type rawResult struct{ b []byte }

// rawHead is the room a rawResult leaves for the reply's head:
// {"jsonrpc":"2.0","id":<id>,"result": with an id of up to 32 bytes.
const rawHead = 64

// newRawResult returns an empty rawResult with room for n bytes of result
// and the reply's end.
func newRawResult(n int) rawResult {
	return rawResult{b: make([]byte, rawHead, rawHead+n+2)}
}

// bytes returns the encoded result.
func (r rawResult) bytes() []byte { return r.b[rawHead:] }

// appendJSON appends ss as nvmf_get_subsystems lists it: the bytes
// appendValue wrote for ss.json(), without building it first. A disk
// node's sync lists every subsystem of the node (one per virtual disk);
// through obj each one cost a tree of slices and interfaces, and its
// integers went through encoding/json. TestSubsystemJSONAsObj holds the
// two to the same bytes.
func (ss *subsystem) appendJSON(b []byte) []byte {
	subtype := "NVMe"
	if ss.discovery {
		subtype = "Discovery"
	}
	b = appendStr(append(b, `{"nqn":`...), ss.nqn)
	b = appendStr(append(b, `,"subtype":`...), subtype)
	b = append(b, `,"listen_addresses":[`...)
	for i, l := range ss.listeners {
		if i > 0 {
			b = append(b, ',')
		}
		t := l.trid
		b = appendStr(append(b, `{"transport":`...), t.TrType)
		b = appendStr(append(b, `,"trtype":`...), t.TrType)
		b = appendStr(append(b, `,"adrfam":`...), t.AdrFam)
		b = appendStr(append(b, `,"traddr":`...), t.TrAddr)
		b = appendStr(append(b, `,"trsvcid":`...), t.TrSvcID)
		b = append(b, '}')
	}
	b = strconv.AppendBool(append(b, `],"allow_any_host":`...), ss.allowAny)
	b = append(b, `,"hosts":[`...)
	for i, h := range ss.hosts {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(appendStr(append(b, `{"nqn":`...), h), '}')
	}
	b = append(b, ']')
	if ss.discovery {
		return append(b, '}')
	}
	b = appendStr(append(b, `,"serial_number":`...), ss.serial)
	b = appendStr(append(b, `,"model_number":`...), ss.model)
	b = strconv.AppendUint(append(b, `,"max_namespaces":`...), uint64(ss.maxNS), 10)
	b = strconv.AppendUint(append(b, `,"min_cntlid":`...), uint64(ss.minCntlid), 10)
	b = strconv.AppendUint(append(b, `,"max_cntlid":`...), uint64(ss.maxCntlid), 10)
	b = append(b, `,"namespaces":[`...)
	for i, ns := range ss.namespaces {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendUint(append(b, `{"nsid":`...), uint64(ns.nsid), 10)
		b = appendStr(append(b, `,"bdev_name":`...), ns.b.name)
		b = appendStr(append(b, `,"name":`...), ns.b.name)
		b = appendStr(append(b, `,"nguid":`...), ns.nguid)
		if ns.eui64 != "" {
			b = appendStr(append(b, `,"eui64":`...), ns.eui64)
		}
		b = appendStr(append(b, `,"uuid":`...), ns.uuid)
		if ss.anaReporting {
			b = strconv.AppendUint(append(b, `,"anagrpid":`...), uint64(ns.anagrpid), 10)
		}
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// appendStr appends s as marshal encodes a string (which cannot fail).
// A plain string is appended here: through appendValue it would be boxed
// into an interface, an allocation per string of every listing.
func appendStr(b []byte, s string) []byte {
	if plainString(s) {
		return appendPlain(b, s)
	}
	out, _ := appendValue(b, s)
	return out
}

// appendPlain appends a string plainString accepts, between quotes.
func appendPlain(b []byte, s string) []byte {
	return append(append(append(b, '"'), s...), '"')
}

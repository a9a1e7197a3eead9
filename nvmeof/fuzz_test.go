package nvmeof

import (
	"encoding/hex"
	"strings"
	"testing"
	"unicode/utf8"
)

// nameInput is one call of a name function: an index into nameFuncs with an
// ID, or (when fn == len(nameFuncs)) ExpNQN of two user names.
type nameInput struct {
	fn      int
	id      string
	da, exp string
}

// fuzzInput maps raw fuzz values to a name function call with a valid ID.
func fuzzInput(k uint8, idBytes []byte, da, exp string) nameInput {
	in := nameInput{fn: int(k) % (len(nameFuncs) + 1)}
	if in.fn == len(nameFuncs) {
		in.da, in.exp = da, exp
		return in
	}
	var b [IDLen / 2]byte
	copy(b[:], idBytes)
	in.id = hex.EncodeToString(b[:])
	return in
}

// render returns the name of in, and what ParseName must give back for it.
func (in nameInput) render() (string, Name, bool) {
	if in.fn == len(nameFuncs) {
		n, err := ExpNQN(in.da, in.exp)
		return string(n), Name{Kind: KindExpNQN, DAName: in.da, ExpName: in.exp}, err == nil
	}
	f := nameFuncs[in.fn]
	return f.make(in.id), Name{Kind: f.kind, ID: in.id, NSID: f.nsid, Epoch: f.epoch}, true
}

// FuzzNamesInjective checks, over all name functions together, that two
// different inputs never share an output, and that ParseName recovers every
// input from its output. The second property is the stronger one: a left
// inverse exists, so the name functions are jointly injective.
func FuzzNamesInjective(f *testing.F) {
	f.Add(uint8(0), []byte("a"), "a-b", "c", uint8(len(nameFuncs)), []byte("a"), "a", "b-c")
	f.Add(uint8(len(nameFuncs)), []byte{}, "da0", "exp0", uint8(len(nameFuncs)), []byte{}, "da0", "exp0")
	f.Add(uint8(4), []byte{1}, "", "", uint8(5), []byte{1}, "", "")
	f.Add(uint8(7), []byte{0xff}, "", "", uint8(8), []byte{0xff}, "", "")
	f.Add(uint8(len(nameFuncs)), []byte{}, "a--b", "c", uint8(len(nameFuncs)), []byte{}, "a-", "-b-c")
	f.Fuzz(func(t *testing.T, k1 uint8, id1 []byte, da1, exp1 string, k2 uint8, id2 []byte, da2, exp2 string) {
		in1, in2 := fuzzInput(k1, id1, da1, exp1), fuzzInput(k2, id2, da2, exp2)
		out1, want1, ok1 := in1.render()
		out2, want2, ok2 := in2.render()
		for _, c := range []struct {
			out  string
			want Name
			ok   bool
		}{{out1, want1, ok1}, {out2, want2, ok2}} {
			if !c.ok {
				continue
			}
			got, ok := ParseName(c.out)
			if !ok || got != c.want {
				t.Fatalf("ParseName(%q) = %+v, %v; want %+v", c.out, got, ok, c.want)
			}
			if got.String() != c.out {
				t.Fatalf("Name.String() = %q, want %q", got.String(), c.out)
			}
		}
		if ok1 && ok2 && out1 == out2 && in1 != in2 {
			t.Fatalf("%+v and %+v both name %q", in1, in2, out1)
		}
	})
}

// FuzzParseName checks that whatever ParseName accepts renders back to the
// same string, so ParseName and the name functions are exact inverses.
func FuzzParseName(f *testing.F) {
	for _, fn := range nameFuncs {
		f.Add(fn.make(idA))
	}
	f.Add("nqn.2016-06.io.spdk:vda-exp-a--b-c")
	f.Add("vda-vdnvme-" + idA + "n4294967295")
	f.Add("vda-pdlvs-" + idA + "/vda-vd-" + idB)
	f.Fuzz(func(t *testing.T, s string) {
		n, ok := ParseName(s)
		if !ok {
			if IsOwnedNQN(NQN(s)) || IsOwnedController(s) || IsOwnedLvstore(s) || IsOwnedLvol(s) {
				t.Fatalf("%q owned but not parsed", s)
			}
			return
		}
		if n.String() != s {
			t.Fatalf("ParseName(%q) = %+v renders as %q", s, n, n.String())
		}
		if IsOwnedNQN(NQN(s)) {
			if _, err := ParseNQN(s); err != nil {
				t.Fatalf("owned NQN %q is invalid: %v", s, err)
			}
		}
	})
}

func FuzzParseNQN(f *testing.F) {
	for _, s := range []string{
		"nqn.2016-06.io.spdk:vda-exp-da0-exp0", string(DiscoveryNQN),
		"nqn.2014-08.org.nvmexpress:uuid:1b4e28ba-2fa1-11d2-883f-0016d3cca427",
		"nqn.2016-13.io.spdk:x", "nqn.2016-06.io-.spdk:x", "nqn.2016-06.:x", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseNQN(s)
		if err != nil {
			if n != "" {
				t.Fatalf("ParseNQN(%q) returned %q with an error", s, n)
			}
			return
		}
		if string(n) != s || len(s) > MaxNQNLen || !utf8.ValidString(s) || !strings.HasPrefix(s, "nqn.") {
			t.Fatalf("ParseNQN accepted %q", s)
		}
		if strings.HasPrefix(s, NQNPrefix+expTag+"-") {
			if da, exp, err := DecodeExpNQN(n); err == nil {
				if again, _ := ExpNQN(da, exp); again != n {
					t.Fatalf("DecodeExpNQN(%q) = %q, %q does not re-encode", s, da, exp)
				}
			}
		}
	})
}

func FuzzDecodeExpNQN(f *testing.F) {
	f.Add("nqn.2016-06.io.spdk:vda-exp-da0-exp0")
	f.Add("nqn.2016-06.io.spdk:vda-exp-a--b-c")
	f.Add("nqn.2016-06.io.spdk:vda-exp-a---b")
	f.Fuzz(func(t *testing.T, s string) {
		da, exp, err := DecodeExpNQN(NQN(s))
		if err != nil {
			return
		}
		n, err := ExpNQN(da, exp)
		if err != nil || string(n) != s {
			t.Fatalf("DecodeExpNQN(%q) = %q, %q; ExpNQN gives %q, %v", s, da, exp, n, err)
		}
		if err := n.Validate(); err != nil {
			t.Fatalf("exporter NQN %q invalid: %v", s, err)
		}
	})
}

func FuzzParseListenerConf(f *testing.F) {
	f.Add(tutorialConf)
	f.Add(`{"trtype":"RDMA","traddr":"fd00::1","trsvcid":"1"}`)
	f.Add(`{"trtype":"tcp","traddr":"10.0.0.1","trsvcid":4420}`)
	f.Add(`{"trtype":"tcp","trtype":"tcp"}`)
	f.Add(`[{"a":1}]`)
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseListenerConf(s)
		if err != nil {
			if id != (TransportID{}) {
				t.Fatalf("ParseListenerConf(%q) returned %+v with an error", s, id)
			}
			return
		}
		if err := id.Validate(); err != nil {
			t.Fatalf("ParseListenerConf(%q) = %+v, invalid: %v", s, id, err)
		}
		again, err := ParseListenerConf(id.JSON())
		if err != nil || again != id {
			t.Fatalf("JSON %s does not round-trip: %+v, %v", id.JSON(), again, err)
		}
		_ = id.String()
	})
}

func FuzzParseANAState(f *testing.F) {
	f.Add("optimized")
	f.Add("NON_OPTIMIZED")
	f.Fuzz(func(t *testing.T, s string) {
		st, err := ParseANAState(s)
		if err == nil && (st.Validate() != nil || !strings.EqualFold(s, string(st))) {
			t.Fatalf("ParseANAState(%q) = %q", s, st)
		}
	})
}

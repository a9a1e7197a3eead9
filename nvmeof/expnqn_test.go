package nvmeof

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestExpNQNTutorial(t *testing.T) {
	n, err := ExpNQN("da0", "exp0")
	require.NoError(t, err)
	assert.Equal(t, NQN("nqn.2016-06.io.spdk:vda-exp-da0-exp0"), n)
	n, err = ExpNQN("da1", "exp1")
	require.NoError(t, err)
	assert.Equal(t, NQN("nqn.2016-06.io.spdk:vda-exp-da1-exp1"), n)
	assert.True(t, IsOwnedNQN(n))
	parsed, ok := ParseName(string(n))
	require.True(t, ok)
	assert.Equal(t, Name{Kind: KindExpNQN, DAName: "da1", ExpName: "exp1"}, parsed)
	assert.Equal(t, string(n), parsed.String())
}

// The original VDA formatted exp-<da>-<exp>, so ("a-b", "c") and ("a", "b-c")
// both became exp-a-b-c.
func TestExpNQNOriginalCollisionFixed(t *testing.T) {
	n1, err := ExpNQN("a-b", "c")
	require.NoError(t, err)
	n2, err := ExpNQN("a", "b-c")
	require.NoError(t, err)
	assert.NotEqual(t, n1, n2)
	assert.Equal(t, NQN(NQNPrefix+"exp-a--b-c"), n1)
	assert.Equal(t, NQN(NQNPrefix+"exp-a-b--c"), n2)
}

func TestExpNQNRoundTrip(t *testing.T) {
	long := strings.Repeat("d", MaxResourceNameLen)
	tests := []struct{ da, exp, want string }{
		{"da0", "exp0", "da0-exp0"},
		{"a-b", "c", "a--b-c"},
		{"a", "b-c", "a-b--c"},
		{"a--b", "c", "a----b-c"},
		{"a", "b---c", "a-b------c"},
		{"a-b-c", "d-e", "a--b--c-d--e"},
		{"A.B_c", "0", "A.B_c-0"},
		{long, long, long + "-" + long},
	}
	for _, tc := range tests {
		n, err := ExpNQN(tc.da, tc.exp)
		require.NoError(t, err, "%q %q", tc.da, tc.exp)
		assert.Equal(t, NQN(NQNPrefix+"exp-"+tc.want), n)
		require.NoError(t, n.Validate())
		da, exp, err := DecodeExpNQN(n)
		require.NoError(t, err)
		assert.Equal(t, tc.da, da)
		assert.Equal(t, tc.exp, exp)
	}
}

func TestExpNQNErrors(t *testing.T) {
	_, err := ExpNQN("", "exp0")
	assert.ErrorIs(t, err, ErrInvalidName)
	assert.Contains(t, err.Error(), "disk array name")
	_, err = ExpNQN("da0", "-exp")
	assert.ErrorIs(t, err, ErrInvalidName)
	assert.Contains(t, err.Error(), "exporter name")
	_, err = ExpNQN("da/0", "exp0")
	assert.ErrorIs(t, err, ErrInvalidName)

	// 64 hyphen-heavy characters double to 127 each: too long for an NQN.
	heavy := "a" + strings.Repeat("-", MaxResourceNameLen-2) + "a"
	_, err = ExpNQN(heavy, heavy)
	assert.ErrorIs(t, err, ErrNameTooLong)
	assert.Contains(t, err.Error(), "more than 223")
}

func TestDecodeExpNQNRejects(t *testing.T) {
	for _, s := range []string{
		"",
		"nqn.2016-06.io.spdk:vda-exp-",
		"nqn.2016-06.io.spdk:vda-exp-da0",          // no separator
		"nqn.2016-06.io.spdk:vda-exp-a--b",         // only doubled hyphens
		"nqn.2016-06.io.spdk:vda-exp-a-b-c",        // two separators
		"nqn.2016-06.io.spdk:vda-exp-a---b",        // odd run of 3
		"nqn.2016-06.io.spdk:vda-exp--a-b",         // leading hyphen
		"nqn.2016-06.io.spdk:vda-exp-a-b-",         // trailing hyphen
		"nqn.2016-06.io.spdk:vda-exp-a-",           // empty exporter
		"nqn.2016-06.io.spdk:vda-exp--b",           // empty disk array
		"nqn.2016-06.io.spdk:vda-exp-a--b--c",      // no single hyphen
		"nqn.2016-06.io.spdk:vda-exp-a b-c",        // bad character
		"nqn.2016-06.io.spdk:vda-exp-da0-exp0\x00", // NUL
		"nqn.2016-06.io.spdk:vda-vd-" + idA,
		"nqn.2016-06.io.spdk:exp-da0-exp0",
		"nqn.2016-06.io.vda:exp-da1-exp1", // the recording's original form
		"nqn.2016-06.io.spdk:vda-exp-" + strings.Repeat("a", 65) + "-b",
	} {
		da, exp, err := DecodeExpNQN(NQN(s))
		assert.ErrorIs(t, err, ErrInvalidNQN, "%q", s)
		assert.Empty(t, da+exp)
	}
}

func TestValidateResourceName(t *testing.T) {
	simple := []ResourceKind{ResourceDA, ResourceExporter, ResourcePD}
	node := []ResourceKind{ResourceDN, ResourceCN}
	tests := []struct {
		kinds []ResourceKind
		name  string
		ok    bool
	}{
		{simple, "da0", true},
		{simple, "pd0", true},
		{simple, "A.b_c-d", true},
		{simple, "a--b", true},
		{simple, strings.Repeat("x", 64), true},
		{simple, strings.Repeat("x", 65), false},
		{simple, "", false},
		{simple, "-a", false},
		{simple, "a-", false},
		{simple, "a b", false},
		{simple, "a:b", false},
		{simple, "a/b", false},
		{simple, "é", false},
		{node, "192.168.0.14:9720", true},
		{node, "dn-0.example.com:9720", true},
		{node, "dn0", true},
		{node, "[::1]:9720", true},
		{node, "[fd00::14]:9720", true},
		{node, strings.Repeat("x", 255), true},
		{node, strings.Repeat("x", 256), false},
		{node, "", false},
		{node, "-dn0", false},
		{node, "dn0-", false},
		{node, "dn 0:1", false},
		{node, "[::1]", false},
		{node, "[::1]:", false},
		{node, "[::1]:0", false},
		{node, "[::1]:99999", false},
		{node, "[10.0.0.1]:9720", false},
		{node, "[fe80::1%eth0]:9720", false},
		{node, "[::1]:9720]", false},
		{node, "::1]:9720", false},
	}
	for _, tc := range tests {
		for _, kind := range tc.kinds {
			err := ValidateResourceName(kind, tc.name)
			if tc.ok {
				assert.NoError(t, err, "%s %q", kind, tc.name)
				continue
			}
			if assert.ErrorIs(t, err, ErrInvalidName, "%s %q", kind, tc.name) {
				assert.Contains(t, err.Error(), string(kind)+" name")
			}
		}
	}
	assert.ErrorIs(t, ValidateResourceName("volume", "x"), ErrInvalidName)
}

package nvmeof

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseNQN(t *testing.T) {
	// An NQN of exactly MaxNQNLen bytes, and one byte more.
	longOK := "nqn.2016-06.io.spdk:" + strings.Repeat("x", MaxNQNLen-len("nqn.2016-06.io.spdk:"))
	label63 := strings.Repeat("a", 63)
	tests := []struct {
		in     string
		reason string // "" means valid
	}{
		{"nqn.2016-06.io.spdk:vda-exp-da0-exp0", ""},
		{"nqn.2016-06.io.spdk:host0", ""},
		{"nqn.2014-08.org.nvmexpress.discovery", ""},
		{"nqn.2014-08.org.nvmexpress:uuid:1b4e28ba-2fa1-11d2-883f-0016d3cca427", ""},
		{"nqn.2014-08.org.nvmexpress:uuid:1B4E28BA-2FA1-11D2-883F-0016D3CCA427", ""},
		{"nqn.2014-08.org.nvmexpress:other", ""},
		{"nqn.1970-01.a:b", ""},
		{"nqn.2016-06.io.spdk:ünïcode", "printable ASCII"},
		{"nqn.2016-06.io.spdk:a b", "printable ASCII without spaces"},
		{"nqn.2016-06.io.spdk:host0\n", "printable ASCII"},
		{"nqn.2016-06.io.spdk:\x1b[31mred", "printable ASCII"},
		{"nqn.2016-06.io.spdk:x; rm -rf /", "printable ASCII without spaces"},
		{"nqn.2016-06.io.spdk:tab\there", "printable ASCII"},
		{"nqn.2016-06.io.spdk:del\x7f", "printable ASCII"},
		{"nqn.2016-06.io.spdk:x;rm-rf/", ""},
		{"nqn.2016-06.a-b.c1-2:x:y:z", ""},
		{"nqn.2016-06." + label63 + ":x", ""},
		{longOK, ""},
		{longOK + "x", "longer than 223"},
		{"", "empty"},
		{"nqn.2016-06.io.spdk:\xff", "not valid UTF-8"},
		{"nqn.2016-06.io.spdk:a\x00b", "NUL"},
		{"NQN.2016-06.io.spdk:x", `does not start with "nqn."`},
		{"iqn.2016-06.io.spdk:x", `does not start with "nqn."`},
		{"nqn.", "date"},
		{"nqn.2016-6.io.spdk:x", "date"},
		{"nqn.16-06.io.spdk:x", "date"},
		{"nqn.2016_06.io.spdk:x", "not yyyy-mm"},
		{"nqn.2016-0a.io.spdk:x", "not yyyy-mm"},
		{"nqn.2016-00.io.spdk:x", "month 00"},
		{"nqn.2016-13.io.spdk:x", "month 13"},
		{"nqn.0000-01.io.spdk:x", "before 1970"},
		{"nqn.2016-06.io.spdk", "no ':'"},
		{"nqn.2016-06.io.spdk:", "empty user string"},
		{"nqn.2016-06.:x", "empty reverse domain"},
		{"nqn.2016-06.io..spdk:x", "empty label"},
		{"nqn.2016-06.io.spdk.:x", "empty label"},
		{"nqn.2016-06.1io.spdk:x", "does not start with a letter"},
		{"nqn.2016-06.-io.spdk:x", "does not start with a letter"},
		{"nqn.2016-06.io-.spdk:x", "ends with '-'"},
		{"nqn.2016-06.io.sp_dk:x", "has character"},
		{"nqn.2016-06." + label63 + "a:x", "longer than 63"},
		{"nqn.2014-08.org.nvmexpress:uuid:", "canonical"},
		{"nqn.2014-08.org.nvmexpress:uuid:1b4e28ba2fa111d2883f0016d3cca427", "canonical"},
		{"nqn.2014-08.org.nvmexpress:uuid:1b4e28ba-2fa1-11d2-883f-0016d3cca42g", "canonical"},
		{"nqn.2014-08.org.nvmexpress:uuid:1b4e28ba-2fa1-11d2-883f-0016d3cca4271", "canonical"},
		{"nqn.2014-08.org.nvmexpress.discovery2", "no ':'"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseNQN(tc.in)
			if tc.reason == "" {
				require.NoError(t, err)
				assert.Equal(t, tc.in, got.String())
				assert.NoError(t, got.Validate())
				return
			}
			require.Error(t, err)
			assert.True(t, errors.Is(err, ErrInvalidNQN))
			assert.Contains(t, err.Error(), tc.reason)
			assert.True(t, strings.HasPrefix(err.Error(), "nvmeof: invalid NQN "), err.Error())
			assert.Empty(t, got)
			assert.Error(t, NQN(tc.in).Validate())
		})
	}
}

func TestParseNQNErrorQuotesAndTruncates(t *testing.T) {
	_, err := ParseNQN("nqn.2016-06.io.spdk")
	require.EqualError(t, err,
		`nvmeof: invalid NQN "nqn.2016-06.io.spdk": no ':' between the reverse domain and the user string`)

	huge := strings.Repeat("é", 100000)
	_, err = ParseNQN(huge)
	require.ErrorIs(t, err, ErrInvalidNQN)
	assert.Less(t, len(err.Error()), 1000, "a huge input must not be copied into the error")
	assert.Contains(t, err.Error(), "(200000 bytes)")
}

func TestParseHostNQN(t *testing.T) {
	for _, ok := range []string{
		"nqn.2016-06.io.spdk:host0",
		"nqn.2014-08.org.nvmexpress:uuid:1b4e28ba-2fa1-11d2-883f-0016d3cca427",
		"nqn.2016-06.io.spdk:vda", // not the reserved "vda-" prefix
	} {
		n, err := ParseHostNQN(ok)
		require.NoError(t, err, ok)
		assert.Equal(t, NQN(ok), n)
	}
	for _, bad := range []string{
		"", "nqn.2016-06.io.spdk", string(DiscoveryNQN),
		string(HostNQN("0123456789abcdef0123456789abcdef")),
		"nqn.2016-06.io.spdk:vda-exp-da0-exp0",
		"nqn.2016-06.io.spdk:vda-anything",
	} {
		n, err := ParseHostNQN(bad)
		assert.ErrorIs(t, err, ErrInvalidNQN, bad)
		assert.Empty(t, n)
	}
}

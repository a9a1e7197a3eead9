package systemdunit

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseUnit(t *testing.T) {
	u, err := ParseUnit(strings.NewReader("# c\n[Unit]\nDescription=x y\n\n[Service]\n; c\nExecStart=/bin/a \\\n  --b c\nExecStartPost=1\nExecStartPost=2\n"))
	require.NoError(t, err)
	require.Equal(t, "x y", u.Value("Unit", "Description"))
	require.Equal(t, "/bin/a    --b c", u.Value("Service", "ExecStart"))
	require.Equal(t, []string{"1", "2"}, u.Values("Service", "ExecStartPost"))
	require.Equal(t, 7, u.Entries[1].Line)
	for _, bad := range []string{"Key=v\n", "[Unit]\nnot a pair\n", "[Unit\n", "[Unit]\nA=b \\\n"} {
		_, err := ParseUnit(strings.NewReader(bad))
		require.Error(t, err, bad)
	}
}

func TestEnvAndExecArgs(t *testing.T) {
	env, err := ParseEnv(strings.NewReader("# c\nA=\"--x 1 --y \\\"q\\\"\"\nJSON='{\"a\":\"b c\"}'\nPLAIN=v\n"))
	require.NoError(t, err)
	require.Equal(t, map[string]string{"A": `--x 1 --y "q"`, "JSON": `{"a":"b c"}`, "PLAIN": "v"}, env)
	args, err := ExecArgs(`-/usr/bin/p --j ${JSON} $A $UNSET --p=${PLAIN}/z 'a b'`, env)
	require.NoError(t, err)
	require.Equal(t, []string{"/usr/bin/p", "--j", `{"a":"b c"}`, "--x", "1", "--y", `"q"`, "--p=v/z", "a b"}, args)
	_, err = ExecArgs(`/p ${NOPE}`, env)
	require.ErrorContains(t, err, "${NOPE}")
	_, err = ExecArgs(`/p 'open`, env)
	require.Error(t, err)
	for _, bad := range []string{"no pair\n", "1A=x\n", "A=\"x\n"} {
		_, err := ParseEnv(strings.NewReader(bad))
		require.Error(t, err, bad)
	}
}

package systemdunit

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
)

// Entry is one Key=Value line of a unit (continuation lines joined).
type Entry struct {
	Section, Key, Value string
	Line                int
}

// Unit is a parsed unit file.
type Unit struct {
	Entries []Entry
}

// Values returns every value of key in section, in order.
func (u Unit) Values(section, key string) []string {
	var out []string
	for _, e := range u.Entries {
		if e.Section == section && e.Key == key {
			out = append(out, e.Value)
		}
	}
	return out
}

// Value returns the last value of key in section ("" if none), as systemd
// uses it for single-valued keys.
func (u Unit) Value(section, key string) string {
	v := u.Values(section, key)
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

// ParseUnit parses a unit file: [Section] headers, Key=Value lines,
// comments (# or ;) and lines continued by a trailing backslash. An entry
// before any section or a line that is neither is an error.
func ParseUnit(r io.Reader) (Unit, error) {
	var u Unit
	section := ""
	sc := bufio.NewScanner(r)
	n, pending, start := 0, "", 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if pending == "" {
			start = n
			t := strings.TrimSpace(line)
			if t == "" || t[0] == '#' || t[0] == ';' {
				continue
			}
		}
		if s, ok := strings.CutSuffix(line, `\`); ok {
			pending += s + " "
			continue
		}
		line, pending = strings.TrimSpace(pending+line), ""
		if strings.HasPrefix(line, "[") {
			if !strings.HasSuffix(line, "]") || len(line) < 3 {
				return Unit{}, fmt.Errorf("line %d: bad section header %q", start, line)
			}
			section = line[1 : len(line)-1]
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return Unit{}, fmt.Errorf("line %d: not Key=Value: %q", start, line)
		}
		if section == "" {
			return Unit{}, fmt.Errorf("line %d: %q outside a section", start, line)
		}
		u.Entries = append(u.Entries, Entry{Section: section, Key: strings.TrimSpace(k), Value: strings.TrimSpace(v), Line: start})
	}
	if err := sc.Err(); err != nil {
		return Unit{}, err
	}
	if pending != "" {
		return Unit{}, fmt.Errorf("line %d: continuation at end of file", start)
	}
	return u, nil
}

// ParseUnitFile parses the unit file at path.
func ParseUnitFile(path string) (Unit, error) {
	f, err := os.Open(path)
	if err != nil {
		return Unit{}, err
	}
	defer f.Close()
	u, err := ParseUnit(f)
	if err != nil {
		return Unit{}, fmt.Errorf("%s: %w", path, err)
	}
	return u, nil
}

// ParseEnv parses an EnvironmentFile: KEY=VALUE lines and comments; a
// value in single quotes is literal, one in double quotes may escape \"
// and \\.
func ParseEnv(r io.Reader) (map[string]string, error) {
	env := map[string]string{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || !validName(strings.TrimSpace(k)) {
			return nil, fmt.Errorf("line %d: not KEY=VALUE: %q", n, line)
		}
		v = strings.TrimSpace(v)
		switch {
		case len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'':
			v = v[1 : len(v)-1]
		case len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"':
			v = strings.NewReplacer(`\"`, `"`, `\\`, `\`).Replace(v[1 : len(v)-1])
		case strings.ContainsAny(v, `"'`):
			return nil, fmt.Errorf("line %d: unbalanced quotes: %q", n, line)
		}
		env[strings.TrimSpace(k)] = v
	}
	return env, sc.Err()
}

// ParseEnvFile parses the environment file at path.
func ParseEnvFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	env, err := ParseEnv(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return env, nil
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if c != '_' && (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// ExecArgs is the argument vector of an Exec*= value with env: the
// command's prefixes (-@:+!) dropped, words split on blanks outside
// quotes, a word that is exactly $NAME replaced by the words of NAME's
// value (none if unset), and ${NAME} anywhere replaced by the value as it
// is. An undefined ${NAME} is an error here (systemd would pass "").
func ExecArgs(value string, env map[string]string) ([]string, error) {
	value = strings.TrimLeft(strings.TrimSpace(value), "-@:+!")
	words, err := splitQuoted(value)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, w := range words {
		if name, ok := strings.CutPrefix(w.s, "$"); ok && !w.quoted && validName(name) {
			out = append(out, strings.Fields(env[name])...)
			continue
		}
		s, err := expandBraces(w.s, env)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

type word struct {
	s      string
	quoted bool
}

func splitQuoted(s string) ([]word, error) {
	var out []word
	var cur strings.Builder
	in, quoted, has := byte(0), false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case in != 0 && c == in:
			in = 0
		case in != 0:
			cur.WriteByte(c)
		case c == '"' || c == '\'':
			in, quoted, has = c, true, true
		case c == ' ' || c == '\t':
			if has {
				out = append(out, word{cur.String(), quoted})
				cur.Reset()
				quoted, has = false, false
			}
		default:
			cur.WriteByte(c)
			has = true
		}
	}
	if in != 0 {
		return nil, fmt.Errorf("unbalanced quote in %q", s)
	}
	if has {
		out = append(out, word{cur.String(), quoted})
	}
	return out, nil
}

func expandBraces(s string, env map[string]string) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			return "", fmt.Errorf("unterminated ${ in %q", s)
		}
		name := s[i+2 : i+j]
		v, ok := env[name]
		if !ok {
			return "", fmt.Errorf("${%s} is not defined", name)
		}
		b.WriteString(s[:i] + v)
		s = s[i+j+1:]
	}
}

// ExecStart returns the ExecStart= argument vector of the unit at path,
// with the variables of its Environment= lines and EnvironmentFile= files
// (a leading '-', "ignore if missing", is dropped: the file must exist
// here). Each file is read from local(path): the repository's copy of an
// installed path such as /etc/vda/portal.env.
func ExecStart(unitPath string, local func(string) string) ([]string, error) {
	u, err := ParseUnitFile(unitPath)
	if err != nil {
		return nil, err
	}
	env := map[string]string{}
	for _, e := range u.Entries {
		if e.Section != "Service" {
			continue
		}
		switch e.Key {
		case "Environment":
			words, err := splitQuoted(e.Value)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %w", unitPath, e.Line, err)
			}
			for _, w := range words {
				k, v, ok := strings.Cut(w.s, "=")
				if !ok || !validName(k) {
					return nil, fmt.Errorf("%s:%d: Environment=%q", unitPath, e.Line, e.Value)
				}
				env[k] = v
			}
		case "EnvironmentFile":
			file, err := ParseEnvFile(local(strings.TrimPrefix(e.Value, "-")))
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %w", unitPath, e.Line, err)
			}
			for k, v := range file {
				env[k] = v
			}
		}
	}
	execs := u.Values("Service", "ExecStart")
	if len(execs) != 1 {
		return nil, fmt.Errorf("%s: %d ExecStart= lines, want 1", unitPath, len(execs))
	}
	args, err := ExecArgs(execs[0], env)
	if err != nil {
		return nil, fmt.Errorf("%s: ExecStart: %w", unitPath, err)
	}
	return args, nil
}

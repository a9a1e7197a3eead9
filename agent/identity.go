package agent

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// agentIDFile is the name of the agent ID's file in Config.StateDir.
const agentIDFile = "agent-id"

// NewAgentID returns a random (version 4) UUID in its canonical form.
func NewAgentID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (see crypto/rand.Read)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// ValidateAgentID reports whether id is an agent ID: a UUID in canonical
// lower-case form (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx).
func ValidateAgentID(id string) error {
	if len(id) != 36 {
		return fmt.Errorf("agent id %q: want a UUID (36 characters), got %d bytes", id, len(id))
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return fmt.Errorf("agent id %q: want '-' at %d", id, i)
			}
		default:
			if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
				return fmt.Errorf("agent id %q: character %q is not a lower-case hex digit", id, c)
			}
		}
	}
	return nil
}

// loadAgentID returns the agent ID kept in dir, creating it on first start.
// Without dir it returns a new ID and persisted false. A file that cannot
// be read or holds no valid ID is an error: a silently new ID would leave
// the node unbound from its monitor (see the monitor's node bindings).
func loadAgentID(dir string) (id string, persisted bool, err error) {
	if dir == "" {
		return NewAgentID(), false, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", false, fmt.Errorf("%w: %w", ErrState, err)
	}
	path := filepath.Join(dir, agentIDFile)
	b, err := os.ReadFile(path)
	if err == nil {
		id = strings.TrimSpace(string(b))
		if err := ValidateAgentID(id); err != nil {
			return "", false, fmt.Errorf("%w: %s: %w", ErrState, path, err)
		}
		return id, true, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", false, fmt.Errorf("%w: %w", ErrState, err)
	}
	id = NewAgentID()
	if err := writeAtomic(path, []byte(id+"\n")); err != nil {
		return "", false, err
	}
	return id, true, nil
}

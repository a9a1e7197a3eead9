package spdkproc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
)

// ErrCrashed wraps every error Crashed returns.
var ErrCrashed = errors.New("spdkproc: spdk_tgt crashed")

// CrashPatterns are the log fragments that show spdk_tgt crashed or
// corrupted its memory, whether or not it is still running: raid0 I/O after
// a member went away (which v24.01 follows with a crash), glibc's heap
// checks (LIBC_FATAL_STDERR_ sends them to the log), and fatal signals.
var CrashPatterns = []string{
	"base bdev desc null",
	"double free",
	"free(): ",
	"malloc(): ",
	"corrupted size",
	"corrupted double-linked list",
	"Segmentation fault",
	"Aborted",
	"Assertion",
	"stack smashing detected",
}

// CrashLines returns the lines of r that match CrashPatterns.
func CrashLines(r io.Reader) ([]string, error) {
	s := &crashScanner{}
	b, err := io.ReadAll(r)
	s.feed(b, true)
	return s.found, err
}

// crashScanner reads a growing log file from where it stopped last time
// and keeps the lines that match CrashPatterns.
type crashScanner struct {
	path string

	mu      sync.Mutex
	off     int64
	partial []byte // a last line not yet ended by '\n'
	found   []string
}

func newCrashScanner(path string) *crashScanner { return &crashScanner{path: path} }

// maxFound bounds the evidence kept: a crash shows in its first lines.
const maxFound = 20

// scan reads what the log gained and returns every matching line so far.
func (s *crashScanner) scan() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := os.Open(s.path)
	if err != nil {
		return s.found
	}
	defer func() { _ = f.Close() }()
	buf := make([]byte, 1<<16)
	for {
		n, err := f.ReadAt(buf, s.off)
		s.off += int64(n)
		s.feed(buf[:n], false)
		if err != nil || n == 0 {
			break
		}
	}
	// A line the process has not ended yet still counts: it may never.
	if len(s.partial) > 0 && matches(string(s.partial)) && !contains(s.found, string(s.partial)) {
		return append(append([]string(nil), s.found...), string(s.partial))
	}
	return append([]string(nil), s.found...)
}

func (s *crashScanner) feed(b []byte, final bool) {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			s.partial = append(s.partial, b...)
			break
		}
		line := string(append(s.partial, b[:i]...))
		s.partial = s.partial[:0]
		b = b[i+1:]
		if matches(line) && len(s.found) < maxFound {
			s.found = append(s.found, line)
		}
	}
	if final && len(s.partial) > 0 && matches(string(s.partial)) {
		s.found = append(s.found, string(s.partial))
		s.partial = s.partial[:0]
	}
}

func matches(line string) bool {
	for _, p := range CrashPatterns {
		if strings.Contains(line, p) {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func crashError(name string, pid int, exit error, lines []string, tail string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (pid %d)", name, pid)
	if exit != nil {
		fmt.Fprintf(&b, " %v", exit)
	}
	if len(lines) > 0 {
		fmt.Fprintf(&b, "\ncrash lines in its log:\n  %s", strings.Join(lines, "\n  "))
	}
	fmt.Fprintf(&b, "\nlog tail:\n%s", tail)
	return fmt.Errorf("%w: %s", ErrCrashed, b.String())
}

package logwatch

import (
	"bytes"
	"regexp"
	"sync"
)

// Writer keeps everything written to it; Addr gets the metrics address
// once it was logged.
type Writer struct {
	mu   sync.Mutex
	b    bytes.Buffer
	sent bool
	// Addr is buffered: it gets the address once.
	Addr chan string
}

// New returns an empty Writer.
func New() *Writer { return &Writer{Addr: make(chan string, 1)} }

// metricsAddrRE matches the log line in text and in JSON (hclog sorts
// the JSON keys).
var metricsAddrRE = regexp.MustCompile(`serving metrics: addr=(\S+)|"@message":"serving metrics".*"addr":"([^"]+)"`)

// Write implements io.Writer.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b.Write(p)
	if !w.sent {
		if m := metricsAddrRE.FindSubmatch(w.b.Bytes()); m != nil {
			w.sent = true
			w.Addr <- string(m[1]) + string(m[2])
		}
	}
	return len(p), nil
}

// String returns everything written so far.
func (w *Writer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

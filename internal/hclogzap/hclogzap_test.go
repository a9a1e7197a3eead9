package hclogzap

import (
	"bytes"
	"errors"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/assert"
	"go.uber.org/zap"
)

func TestZapLoggerForwardsToHclog(t *testing.T) {
	var buf bytes.Buffer
	l := hclog.New(&hclog.LoggerOptions{Output: &buf, Level: hclog.Warn})
	z := New(l).With(zap.String("member", "m1"))
	z.Info("chatty")
	z.Warn("slow fsync", zap.Int("ms", 300))
	z.Error("disk failed", zap.Error(errors.New("EIO")))
	out := buf.String()
	assert.NotContains(t, out, "chatty", "info is debug-only")
	assert.Contains(t, out, "[WARN]  slow fsync: member=m1 ms=300")
	assert.Contains(t, out, "[ERROR] disk failed: error=EIO member=m1")

	buf.Reset()
	l.SetLevel(hclog.Debug)
	New(l).Info("chatty")
	assert.Contains(t, buf.String(), "[DEBUG] chatty")

	New(nil).Error("dropped") // no-op, no panic
}

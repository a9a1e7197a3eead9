package hclogzap

import (
	"slices"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// New adapts hclog for zap: warnings and errors reach l at the same level,
// (chatty) info messages only when l logs at debug level. A nil l gives a
// no-op logger.
func New(l hclog.Logger) *zap.Logger { return Quiet(l, nil) }

// Quiet is New whose warnings and errors become debug logs once quiet is
// set: etcd reports its own orderly shutdown (closed listeners) as errors.
func Quiet(l hclog.Logger, quiet *atomic.Bool) *zap.Logger {
	if l == nil {
		return zap.NewNop()
	}
	min := zapcore.WarnLevel
	if l.IsDebug() || l.IsTrace() {
		min = zapcore.InfoLevel
	}
	return zap.New(&hclogCore{l: l, min: min, quiet: quiet})
}

type hclogCore struct {
	l      hclog.Logger
	min    zapcore.Level
	fields []zapcore.Field
	quiet  *atomic.Bool
}

func (c *hclogCore) Enabled(lvl zapcore.Level) bool { return lvl >= c.min }

func (c *hclogCore) With(fields []zapcore.Field) zapcore.Core {
	return &hclogCore{l: c.l, min: c.min, fields: append(slices.Clip(c.fields), fields...), quiet: c.quiet}
}

func (c *hclogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *hclogCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range c.fields {
		f.AddTo(enc)
	}
	for _, f := range fields {
		f.AddTo(enc)
	}
	keys := make([]string, 0, len(enc.Fields))
	for k := range enc.Fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	args := make([]any, 0, 2*len(keys))
	for _, k := range keys {
		args = append(args, k, enc.Fields[k])
	}
	switch {
	case c.quiet != nil && c.quiet.Load():
		c.l.Debug(e.Message, args...)
	case e.Level >= zapcore.ErrorLevel:
		c.l.Error(e.Message, args...)
	case e.Level == zapcore.WarnLevel:
		c.l.Warn(e.Message, args...)
	default:
		c.l.Debug(e.Message, args...)
	}
	return nil
}

func (c *hclogCore) Sync() error { return nil }

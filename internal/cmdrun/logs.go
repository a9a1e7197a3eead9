package cmdrun

import (
	"cmp"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// Log formats of --log-format.
const (
	LogText = "text"
	LogJSON = "json"
)

// LogFlags are the logging flags of every binary: --log-level and
// --log-format.
type LogFlags struct {
	Level, Format string
}

// Register adds the flags to fs. Their defaults are f's fields, info and
// text where empty.
func (f *LogFlags) Register(fs *flag.FlagSet) {
	level, format := cmp.Or(f.Level, "info"), cmp.Or(f.Format, LogText)
	fs.StringVar(&f.Level, "log-level", level, "trace, debug, info, warn or error")
	fs.StringVar(&f.Format, "log-format", format,
		"text, or json: one JSON object a line (@timestamp, @level, @module, @message and the key/value pairs)")
}

// Validate reports an unknown level or format.
func (f LogFlags) Validate() error {
	if hclog.LevelFromString(f.Level) == hclog.NoLevel {
		return fmt.Errorf("--log-level %q: want trace, debug, info, warn or error", f.Level)
	}
	switch strings.ToLower(f.Format) {
	case LogText, LogJSON:
		return nil
	}
	return fmt.Errorf("--log-format %q: want text or json", f.Format)
}

// Logger returns the logger named name writing to w as the flags say
// (an invalid level means info, an invalid format text: Validate first).
func (f LogFlags) Logger(name string, w io.Writer) hclog.Logger {
	lvl := hclog.LevelFromString(f.Level)
	if lvl == hclog.NoLevel {
		lvl = hclog.Info
	}
	return hclog.New(&hclog.LoggerOptions{Name: name, Output: w, Level: lvl,
		JSONFormat: strings.EqualFold(f.Format, LogJSON)})
}

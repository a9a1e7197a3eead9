// Package logwatch is a log sink for the binaries' tests: it keeps what a
// binary logs and reports the address its metrics endpoint logged
// (metrics.ServeFor's "serving metrics" line, as text or JSON).
package logwatch

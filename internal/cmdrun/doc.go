// Package cmdrun is the skeleton the VDA server binaries share: parse the
// flags into a configuration, make the logger, serve until the context ends,
// and map the outcome to the exit code (0 on a clean stop or --help, 1 when
// serving failed, 2 for a bad command line).
package cmdrun

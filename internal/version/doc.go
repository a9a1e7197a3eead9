// Package version reports what the Go toolchain recorded about the running
// binary (module version, VCS revision, commit time, modified work tree, Go
// version) for the --version flag every VDA binary has.
package version

// Package systemdunit reads the systemd unit files and environment files
// of deploy/systemd, enough for tests to check them: the sections and keys
// of a unit, the variables of an EnvironmentFile, and the argument vector
// systemd makes of an ExecStart= line with them ($VAR split into words,
// ${VAR} one word).
package systemdunit

// Package testproc runs the long-lived programs of a multi-process test:
// each in a process group of its own with its output appended to a log
// file, stopped (SIGTERM, then SIGKILL after a grace period), killed,
// paused (SIGSTOP) and resumed (SIGCONT) by signal, and always killed when
// the test that started it ends, or when the test binary dies. A Proc
// remembers whether its exit was asked for, so a harness can tell a crash
// from a stop.
package testproc

// Package atomicfile replaces files so that a crash at any point leaves
// either the old content or the new, never a mix or nothing: the state the
// agents keep across restarts, certificates and keys.
package atomicfile

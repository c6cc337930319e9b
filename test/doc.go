// Package test holds end-to-end tests that run the real replicant binary as
// separate processes and inject faults (SIGKILL, SIGSTOP, restarts), then
// check histories of acknowledged operations against the invariants of
// DESIGN.md.
package test

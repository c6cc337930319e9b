//go:build linux && cgo

package main

/*
#include <malloc.h>

// Two malloc arenas instead of glibc's default of eight per core. Pebble
// allocates its block cache and memtables with C malloc when cgo is on,
// from whichever OS thread the Go scheduler runs it on, so its blocks
// spread over many per-thread arenas and each arena keeps its own freed
// space: with 10 million keys loaded, seven arenas held 16-25 MiB each
// (/proc/PID/smaps) and the process 270-290 MiB; with two, 197 MiB. Two,
// not one: the flush and the commit path still allocate at once.
static void replicant_limit_arenas(void) {
#ifdef M_ARENA_MAX
	mallopt(M_ARENA_MAX, 2);
#endif
}
*/
import "C"

func init() { C.replicant_limit_arenas() }

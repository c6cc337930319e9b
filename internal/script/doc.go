// Package script runs Redis 7 Lua scripts (EVAL) and function libraries
// (FUNCTION LOAD, FCALL) on github.com/yuin/gopher-lua, knowing nothing
// of the server around it: the commands a script calls reach it through
// a Host, and its answer is a Reply tree the caller encodes in its own
// protocol.
//
// Invariants:
//   - A script sees Redis 7's sandbox: the base functions Redis keeps,
//     string, table, math, coroutine, cjson, cmsgpack, bit, struct and
//     redis; no os, io, require, loadfile, dofile, getfenv or print.
//     Globals and every library table are read-only; reading a missing
//     global is an error.
//   - States are pooled, and nothing a run does survives it in its state
//     (state.go): a run borrows a state, and one that ended abnormally is
//     closed instead of pooled.
//   - A run ends with a reply (a script error is an error reply, and the
//     writes before it stand) or with *Aborted (killed through its
//     context, over the heap limit, or the host failed): then nothing the
//     script did may be kept. pcall cannot catch an abort.
//   - Byte code is compiled once per script or library and shared by
//     every run.
package script

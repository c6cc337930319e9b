// Package certs holds a node's TLS material — its certificate and key and
// the CA that signs every member's certificate — read from PEM files, and
// builds the tls.Configs that the RESP, HTTP and peer listeners and the
// peer client use. The files can be replaced while the node runs: Reload
// (on SIGHUP) and Watch (on a change of a file's size or modification
// time) read them again, and every handshake after that uses the new
// material, without a restart and without dropping open connections.
//
// Invariants:
//   - A Store always holds a complete, consistent set: a certificate whose
//     key matches it and that the CA verifies. A reload that fails to read
//     or verify any file keeps the previous set in use and reports the
//     error; it never leaves a half-replaced set.
//   - Each handshake reads the current set once (an atomic pointer), so
//     a reload never races with a handshake in progress.
//   - Servers never accept TLS below 1.2. The peer configuration requires
//     and verifies a client certificate from the CA (mutual TLS); the
//     client configuration verifies the server's certificate against the
//     CA and its name against the address dialled.
package certs

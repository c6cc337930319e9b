package resp

import (
	"github.com/replicant-db/replicant/internal/datatype/convergent"
	"github.com/replicant-db/replicant/internal/engine"
)

// Collections in the convergent modes (multi-leader, leaderless): their
// Txns and Readers keep a collection as one crdt.Coll per key, and
// package convergent shows it to package datatype, which every collection
// handler uses, as datatype's own layout. It is put in at this server's
// entry points to the engine — write (c.write), EXEC and scripts (one
// adapter for the whole transaction, so each changed collection is put
// once at its end), and the connection's reader (c.read) — rather than
// around the engine, whose optional interfaces (AsyncWriter,
// SiblingReader, Sites) a wrapper would hide. Plain SETs on the pipelined
// and blind paths need none (a string write is the mode's own), nor do the
// reads that only list or count keys (INFO keyspace, MEMORY STATS,
// FLUSHALL's emptiness check, FUNCTION STATS). TestWritesGoThroughWriteFn
// keeps every other write on the adapter.

// convergentMode is the mode's name when it keeps collections as
// convergent states, "" otherwise.
func (s *Server) convergentMode() string {
	switch m := s.mode(); m {
	case engine.ModeMultiLeader, engine.ModeLeaderless:
		return m
	}
	return ""
}

// writeFn is fn as the engine runs it: through the adapter in a
// convergent mode.
func (s *Server) writeFn(fn func(engine.Txn) error) func(engine.Txn) error {
	m := s.convergentMode()
	if m == "" {
		return fn
	}
	return func(tx engine.Txn) error { return convergent.Run(tx, m, fn) }
}

// reader is r as commands read it: through the adapter in a convergent
// mode.
func (s *Server) reader(r engine.Reader) engine.Reader {
	if m := s.convergentMode(); m != "" {
		return convergent.WrapReader(r, m)
	}
	return r
}

// modeTxn is the mode's own transaction under the adapter, if any.
func modeTxn(tx engine.Txn) engine.Txn {
	if u, ok := tx.(interface{ Unwrap() engine.Txn }); ok {
		return u.Unwrap()
	}
	return tx
}

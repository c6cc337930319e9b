package leaderless

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/replicant-db/replicant/internal/crdt"
	"github.com/replicant-db/replicant/internal/engine"
	"github.com/replicant-db/replicant/internal/transport/pb"
)

// HandleReplica is a replica's side of the coordinator's calls. Every
// change is one entry of this node's own log, written by a closure that
// runs on the log's sequencer against the newest state: the read and the
// write of a key's state cannot interleave with another change of it.
func (e *Engine) HandleReplica(ctx context.Context, req *pb.ReplicaRequest) (*pb.ReplicaResponse, error) {
	key := req.GetKey()
	if req.GetOp() != pb.ReplicaRequest_FETCH && len(key) == 0 {
		return nil, status.Error(codes.InvalidArgument, "replica: empty key")
	}
	if isReserved(key) {
		return nil, status.Error(codes.InvalidArgument, "replica: keys that start with \\x00replicant\\x00 are reserved")
	}
	switch req.GetOp() {
	case pb.ReplicaRequest_FETCH:
		if len(key) == 0 {
			return &pb.ReplicaResponse{}, nil // a health probe
		}
		v, ok, err := e.node.LocalRead().Get(key)
		if err != nil {
			return nil, err
		}
		if !ok {
			return &pb.ReplicaResponse{}, nil
		}
		return &pb.ReplicaResponse{State: v.Value}, nil
	case pb.ReplicaRequest_STORE:
		in, err := DecodeState(req.GetState())
		if err != nil {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
		e.observe(in.Top())
		if target := req.GetHintFor(); target != "" {
			return e.storeHint(ctx, target, key, in) // a stand-in (sloppy quorum): hints.go
		}
		out, err := e.change(ctx, key, func(cur State) (State, error) { return cur.Merge(in), nil })
		if err != nil {
			return nil, err
		}
		return &pb.ReplicaResponse{State: AppendState(nil, out)}, nil
	case pb.ReplicaRequest_UPDATE:
		in, err := DecodeState(req.GetState())
		if err != nil {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
		causal, err := crdt.ParseVector(req.GetContext())
		if err != nil {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
		out, err := e.change(ctx, key, func(cur State) (State, error) {
			cur = cur.Merge(in)
			// Stamped after everything the key holds here: the
			// coordinator cleared the collection entries it read
			// (txn.Set), and the value is newer than any this replica
			// knows, so it is what the key holds (State.Lookup) unless
			// a write stamped later elsewhere arrives.
			t := e.nowAfter(cur.Top())
			sibs, err := cur.Sibs.Update(causal, e.node.ID(), packValue(req.GetValue(), req.GetExpireAt()),
				crdt.Meta{Time: t, Deleted: req.GetDeleted()})
			if err != nil {
				return cur, err
			}
			// A SET or DEL resets the increments it has seen.
			// Only the increments the write's read saw (in), not those this
			// replica holds that the client never read.
			cur.Counter = cur.Counter.Reset(in.Counter)
			cur.Sibs = sibs
			return cur, nil
		})
		if err != nil {
			return nil, err
		}
		return &pb.ReplicaResponse{State: AppendState(nil, out)}, nil
	case pb.ReplicaRequest_INCR:
		// What the coordinator read, if it sent it (merged first, so that
		// the increment is judged on at least what the read saw).
		in, err := DecodeState(req.GetState())
		if err != nil {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
		e.observe(in.Top())
		var res int64
		var refusal string
		out, err := e.change(ctx, key, func(cur State) (State, error) {
			cur = cur.Merge(in)
			next, n, err := cur.IncrBy(e.node.ID(), req.GetDelta(), e.now().WallMs)
			switch {
			case errors.Is(err, ErrNotInteger), errors.Is(err, ErrOverflow), errors.Is(err, ErrWrongType):
				refusal = err.Error()
				return cur, nil
			case err != nil:
				return cur, err
			}
			res = n
			return next, nil
		})
		if err != nil {
			return nil, err
		}
		return &pb.ReplicaResponse{State: AppendState(nil, out), Result: res, Refusal: refusal}, nil
	}
	return nil, status.Errorf(codes.InvalidArgument, "replica: unknown op %v", req.GetOp())
}

// change applies f to key's local state as one durable entry and returns
// the new state (unchanged states write nothing).
func (e *Engine) change(ctx context.Context, key []byte, f func(State) (State, error)) (State, error) {
	var out State
	_, err := e.node.LocalWrite(ctx, func(tx engine.Txn) error {
		var cur State
		if v, ok, err := tx.Get(key); err != nil {
			return err
		} else if ok {
			if cur, err = DecodeState(v.Value); err != nil {
				return fmt.Errorf("leaderless: stored state of %q: %w", key, err)
			}
		}
		next, err := f(cur)
		if err != nil {
			return err
		}
		out = next
		if cur.IsZero() && collectable(next, time.Now().UnixMilli(), e.cfg.TombstoneGrace) {
			// Tombstones past their grace arriving for a key this replica
			// does not hold: it collected them already (or never needs
			// them); storing them back would only undo the collection.
			return nil
		}
		if !next.Equal(cur) {
			tx.Set(key, AppendState(nil, next), 0)
		}
		return nil
	})
	return out, err
}

// sharesOf computes, per member, the fraction of the hash space it holds
// as one of n replicas, as the first replica, and in how many arcs.
func sharesOf(r *Ring, n int) (share, primary map[string]float64, ranges map[string]int) {
	share, primary, ranges = map[string]float64{}, map[string]float64{}, map[string]int{}
	total := new(big.Float).SetInt(new(big.Int).Lsh(big.NewInt(1), 64))
	arcs := r.Ranges(n)
	for _, rg := range arcs {
		l := rg.End - rg.Start // modulo 2^64: the wrap-around arc too
		if l == 0 && len(arcs) == 1 {
			l = ^uint64(0) // one arc is the whole ring
		}
		f, _ := new(big.Float).Quo(new(big.Float).SetUint64(l), total).Float64()
		for i, id := range rg.Owners {
			share[id] += f
			ranges[id]++
			if i == 0 {
				primary[id] += f
			}
		}
	}
	return share, primary, ranges
}

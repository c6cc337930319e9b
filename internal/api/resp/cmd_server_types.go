package resp

import (
	"github.com/replicant-db/replicant/internal/datatype"
	"github.com/replicant-db/replicant/internal/engine"
)

// Redis 7.2's thresholds for its compact encodings (the defaults of
// hash-max-listpack-entries/value, set-max-intset-entries,
// set-max-listpack-entries/value, zset-max-listpack-entries/value and
// list-max-listpack-size -2, i.e. 8 KiB). replicant stores every
// collection the same way (an element per key); OBJECT ENCODING answers
// what Redis would use for the same contents, which is what tools that
// inspect encodings expect to see.
const (
	listpackEntries  = 128
	listpackValue    = 64
	intsetEntries    = 512
	listListpackSize = 8 << 10
)

// elementSub is the sub-space that holds one entry per element.
func elementSub(t engine.Type) byte {
	switch t {
	case engine.TypeHash:
		return datatype.SubField
	case engine.TypeList:
		return datatype.SubIndex
	}
	return datatype.SubMember
}

// collectionEncoding is OBJECT ENCODING of the collection of type t at key:
// it reads at most the elements that decide it (a collection above the
// entry limit is decided by its length alone).
func collectionEncoding(r engine.Reader, key []byte, t engine.Type) (string, error) {
	v, found, err := datatype.Read(r, key, t)
	if err != nil || !found {
		return "", err
	}
	n := v.Meta.Len
	big, ints, total := false, true, int64(0)
	limit := int64(listpackEntries)
	if t == engine.TypeSet {
		limit = intsetEntries
	}
	if n <= limit {
		err = v.Scan(elementSub(t), nil, func(rest, value []byte) bool {
			el := rest
			if t == engine.TypeList {
				el = value
			}
			if len(el) > listpackValue || (t == engine.TypeHash && len(value) > listpackValue) {
				big = true
			}
			if _, ok := redisInt(el); !ok {
				ints = false
			}
			total += int64(len(el)) + 11 // a listpack entry's header and backlen, at most
			return true
		})
		if err != nil {
			return "", err
		}
	}
	switch t {
	case engine.TypeHash:
		if n <= listpackEntries && !big {
			return "listpack", nil
		}
		return "hashtable", nil
	case engine.TypeList:
		if total <= listListpackSize && n <= limit {
			return "listpack", nil
		}
		return "quicklist", nil
	case engine.TypeSet:
		if n <= intsetEntries && ints {
			return "intset", nil
		}
		if n <= listpackEntries && !big {
			return "listpack", nil
		}
		return "hashtable", nil
	}
	if n <= listpackEntries && !big {
		return "listpack", nil
	}
	return "skiplist", nil
}

// collectionUsage is MEMORY USAGE of a collection: the key, the measured
// size of up to samples elements (0: all), and the others estimated from
// their mean, as Redis estimates aggregates from a sample.
func collectionUsage(r engine.Reader, key []byte, t engine.Type, samples int64) (int64, error) {
	v, found, err := datatype.Read(r, key, t)
	if err != nil || !found {
		return 0, err
	}
	const perElement = 16 // dict entry or listpack overhead, roughly
	var seen, bytes int64
	err = v.Scan(elementSub(t), nil, func(rest, value []byte) bool {
		seen++
		bytes += int64(len(rest)+len(value)) + perElement
		return samples == 0 || seen < samples
	})
	if err != nil {
		return 0, err
	}
	size := memoryUsage(key, nil)
	if seen > 0 {
		size += bytes * v.Meta.Len / seen
	}
	return size, nil
}

package resp

import (
	"container/list"
	"math/rand/v2"
	"sync"
)

// Bounds of the server-wide SCAN cursor table.
const (
	maxCursors     = 100_000
	maxCursorBytes = 64 << 20
)

// cursorTable maps SCAN cursors to the last key a page returned. Cursors are
// random non-zero 63-bit numbers (clients parse them as unsigned integers)
// and immutable: a retried page gives the same keys. The least recently
// used cursors are evicted beyond maxCursors entries or maxCursorBytes of
// keys; an evicted cursor answers "invalid cursor".
type cursorTable struct {
	mu       sync.Mutex
	max      int
	maxBytes int
	bytes    int
	m        map[uint64]*list.Element
	lru      list.List // front: most recently used
}

type cursorEntry struct {
	id   uint64
	last []byte
}

func newCursorTable(maxEntries, maxBytes int) *cursorTable {
	return &cursorTable{max: maxEntries, maxBytes: maxBytes, m: map[uint64]*list.Element{}}
}

// put stores last and returns its new cursor.
func (t *cursorTable) put(last []byte) uint64 {
	last = append([]byte(nil), last...)
	t.mu.Lock()
	defer t.mu.Unlock()
	var id uint64
	for {
		id = rand.Uint64() >> 1
		if _, dup := t.m[id]; id != 0 && !dup {
			break
		}
	}
	t.m[id] = t.lru.PushFront(&cursorEntry{id: id, last: last})
	t.bytes += len(last)
	for t.lru.Len() > t.max || (t.bytes > t.maxBytes && t.lru.Len() > 1) {
		t.evict(t.lru.Back())
	}
	return id
}

// get returns the last key of cursor id.
func (t *cursorTable) get(id uint64) ([]byte, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.m[id]
	if !ok {
		return nil, false
	}
	t.lru.MoveToFront(e)
	return e.Value.(*cursorEntry).last, true
}

func (t *cursorTable) evict(e *list.Element) {
	ce := e.Value.(*cursorEntry)
	t.lru.Remove(e)
	delete(t.m, ce.id)
	t.bytes -= len(ce.last)
}

func (t *cursorTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lru.Len()
}

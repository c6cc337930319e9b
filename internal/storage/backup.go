package storage

// GCFloor is the lowest LSN reads may use: GC has collected versions that
// only reads below it could see. A backup of a stopped node's directory
// at an earlier LSN (point-in-time recovery) would be missing keys.
func (s *Store) GCFloor() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.gcFloor
}

package storage

// EngineMetrics is the shape of the store's LSM tree at one moment. A
// point read that misses the row cache consults up to ReadAmp tables and
// the memtables; sustained writes raise L0 and the compaction debt when
// compactions fall behind, and reads slow down until they catch up.
type EngineMetrics struct {
	// ReadAmp is L0's sublevels plus the non-empty levels below it.
	ReadAmp     int
	L0Sublevels int
	L0Files     int64
	// CompactionDebt is the bytes compactions estimate they still have
	// to rewrite to bring the levels to their target sizes.
	CompactionDebt uint64
	// MemtableBytes is the memory the memtables hold, flushing or not.
	MemtableBytes uint64
	// RowCacheBudget and BlockCacheBudget are the caches' sizes as
	// configured (Options.RowCacheBytes, Options.CacheBytes);
	// BlockCacheBytes is what the block cache holds now.
	RowCacheBudget, BlockCacheBudget, BlockCacheBytes int64
}

// EngineMetrics reads Pebble's current metrics.
func (s *Store) EngineMetrics() (EngineMetrics, error) {
	done, err := s.reader()
	if err != nil {
		return EngineMetrics{}, err
	}
	defer done()
	m := s.db.Metrics()
	return EngineMetrics{
		ReadAmp:        m.ReadAmp(),
		L0Sublevels:    int(m.Levels[0].Sublevels),
		L0Files:        m.Levels[0].TablesCount,
		CompactionDebt: m.Compact.EstimatedDebt,
		MemtableBytes:  m.MemTable.Size,
		RowCacheBudget: int64(s.rows.size) * rowShards, BlockCacheBudget: s.cacheBytes, BlockCacheBytes: m.BlockCache.Size,
	}, nil
}

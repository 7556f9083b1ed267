package ledger

// Pending returns how many ops wait for the next write of shard name.
func Pending(l *ConfigMaps, name string) int {
	q := l.queue(name)
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pending)
}

// LegacyShards is the shard count of the earlier layout.
const LegacyShards = legacyShards

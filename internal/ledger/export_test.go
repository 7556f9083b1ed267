package ledger

// Pending returns how many ops wait for the next write of shard name.
func Pending(l *ConfigMaps, name string) int {
	q := l.queue(name)
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pending)
}

// Home returns the shard l keeps uid in.
func Home(l *ConfigMaps, uid string) string { return l.home(uid) }

// LegacyShards is the shard count of the earlier layout.
const LegacyShards = legacyShards

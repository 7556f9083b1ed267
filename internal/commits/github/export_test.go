package github

import "github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"

// CommitCacheBytes is what the cache counts for commit c looked up by its SHA.
func CommitCacheBytes(repo commits.Repository, c commits.Commit) int64 {
	return int64(len(cacheKey("commit", repo, c.SHA))) + commitBytes(c)
}

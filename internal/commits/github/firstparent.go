package github

import "github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"

// assemble builds the ahead range (base, head] from the compare commits fetched so far: the first-parent
// chain from head, newest MaxRangeCommits kept, oldest first. Merged side-branch commits are not on the
// chain and are left out. more reports that unfetched pages could still extend a short chain.
//
// Truncated is exact when the chain is complete (it reached base, a root, or every page was fetched).
// Otherwise the walk stopped on a page boundary once MaxRangeCommits were gathered, and Truncated is
// total_commits minus those kept: exact for linear history, an upper bound when merged side-branch
// commits are among the commits not walked.
func assemble(fetched map[string]commits.Commit, base, head string, total int, allFetched bool) (r commits.Range, more bool) {
	chain, complete := firstParentChain(fetched, base, head)
	complete = complete || allFetched
	if !complete && len(chain) < commits.MaxRangeCommits {
		return commits.Range{}, true
	}
	kept := min(len(chain), commits.MaxRangeCommits)
	r = commits.Range{Status: commits.Ahead, Truncated: len(chain) - kept}
	if !complete {
		r.Truncated = max(total-kept, r.Truncated)
	}
	r.Commits = make([]commits.Commit, kept)
	for i := range kept {
		r.Commits[kept-1-i] = chain[i]
	}
	return r, false
}

// firstParentChain follows first parents from head through fetched, newest first, stopping before base.
// complete is false when the walk left fetched at a commit other than base, i.e. it may continue on a
// page not fetched yet.
func firstParentChain(fetched map[string]commits.Commit, base, head string) (chain []commits.Commit, complete bool) {
	for cur := head; cur != base; {
		c, ok := fetched[cur]
		if !ok {
			return chain, false
		}
		chain = append(chain, c)
		if len(c.Parents) == 0 || len(chain) > len(fetched) { // a root, or a cycle in bad data
			return chain, true
		}
		cur = c.Parents[0]
	}
	return chain, true
}

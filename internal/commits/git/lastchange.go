package git

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
)

// maxLastChangeWalk bounds how many first-parent commits LastChange looks back.
const maxLastChangeWalk = 10000

var _ commits.PathHistory = (*repository)(nil)

// LastChange returns the newest commit on rev's first-parent line whose tree at path differs from its first
// parent's (a root commit changed what it holds); rev itself when path is the root.
func (r *repository) LastChange(ctx context.Context, _ commits.Repository, rev, path string) (commits.Commit, error) {
	r, err := r.bind()
	if err != nil {
		return commits.Commit{}, err
	}
	h, err := parseSHA(rev)
	if err != nil {
		return commits.Commit{}, fmt.Errorf("git: last change in %s: %w", r.m.url, err)
	}
	name := ""
	if strings.Trim(path, "/.") != "" {
		if name, err = cleanPath(path); err != nil {
			return commits.Commit{}, err
		}
	}
	fetched, err := r.ensure(ctx, h)
	if err != nil {
		return commits.Commit{}, err
	}
	n, err := r.commit(h)
	if err != nil {
		return commits.Commit{}, err
	}
	what := fmt.Sprintf("git: last change of %q at %s in %s", name, h, r.m.url)
	cur, err := r.m.pathHash(h, name)
	if err != nil {
		return commits.Commit{}, fmt.Errorf("%s: %w", what, err)
	}
	for i := 0; ; i++ {
		if i == maxLastChangeWalk {
			return commits.Commit{}, fmt.Errorf("%s: not among the last %d commits: %w", what, maxLastChangeWalk, commits.ErrNotFound)
		}
		if err := ctx.Err(); err != nil {
			return commits.Commit{}, fmt.Errorf("%s: %w", what, err)
		}
		if len(n.parents) == 0 {
			if cur.IsZero() {
				return commits.Commit{}, fmt.Errorf("%s: no commit changed it: %w", what, commits.ErrNotFound)
			}
			break
		}
		parent, err := r.loadAncestor(n.parents[0])
		if err != nil {
			return commits.Commit{}, fmt.Errorf("%s: %w", what, err)
		}
		prev, err := r.m.pathHash(parent.hash, name)
		if err != nil {
			return commits.Commit{}, fmt.Errorf("%s: %w", what, err)
		}
		if prev != cur {
			break
		}
		n = parent
	}
	r.answered(ctx, fetched)
	return cloneCommit(n.commit), nil
}

// pathHash is the object name of path (a blob or a tree) in commit h's tree, the tree's own for the root, and
// the zero hash when the commit does not hold path.
func (m *mirror) pathHash(h plumbing.Hash, path string) (plumbing.Hash, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.open(); err != nil {
		return plumbing.ZeroHash, err
	}
	c, err := object.GetCommit(m.read, h)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if path == "" {
		return c.TreeHash, nil
	}
	tree, err := c.Tree()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	e, err := tree.FindEntry(path)
	if errors.Is(err, object.ErrEntryNotFound) || errors.Is(err, object.ErrDirectoryNotFound) || errors.Is(err, object.ErrFileNotFound) {
		return plumbing.ZeroHash, nil
	}
	if err != nil {
		return plumbing.ZeroHash, err
	}
	return e.Hash, nil
}

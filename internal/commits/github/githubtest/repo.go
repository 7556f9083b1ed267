package githubtest

import (
	"bytes"
	"crypto/sha1" //nolint:gosec // git object names are SHA-1.
	"encoding/hex"
	"fmt"
	"maps"
	"path"
	"slices"
	"sort"
	"strings"
	"time"
)

// baseTime is the author time of a repository's first commit when a CommitSpec leaves times unset.
var baseTime = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// CommitSpec describes a commit to create; zero fields take defaults.
type CommitSpec struct {
	Message     string // default "commit N"
	AuthorName  string // default "Test Author"
	AuthorEmail string // default "author@example.com"
	// CommitterName and CommitterEmail default to the author's.
	CommitterName  string
	CommitterEmail string
	// AuthorTime defaults to one minute after the repository's previous commit; CommitterTime to AuthorTime.
	AuthorTime    time.Time
	CommitterTime time.Time
	// Files are set over the first parent's tree; an empty value deletes the path.
	Files map[string]string
	// Parents default to the head of Branch; a branch without a head makes a root commit.
	Parents []string
	// Branch defaults to "main"; its head moves to the new commit.
	Branch string
}

type signature struct {
	name, email string
	when        time.Time
}

type commit struct {
	sha       string
	tree      map[string]string // path -> content
	treeSHA   string
	parents   []string
	author    signature
	committer signature
	message   string
}

// Repo is one repository of a Server. Its methods are safe for concurrent use.
type Repo struct {
	srv         *Server
	owner, name string
	commits     map[string]*commit
	branches    map[string]string
	tags        map[string]string
	defaultRef  string
	seq         int
	lastTime    time.Time
}

// Owner returns the repository owner.
func (r *Repo) Owner() string { return r.owner }

// Name returns the repository name.
func (r *Repo) Name() string { return r.name }

// Commit creates a commit and returns its SHA: the git object name of the commit it describes.
// It panics when a parent is unknown.
func (r *Repo) Commit(spec CommitSpec) string {
	r.srv.mu.Lock()
	defer r.srv.mu.Unlock()
	branch := spec.Branch
	if branch == "" {
		branch = r.defaultRef
	}
	parents := spec.Parents
	if parents == nil {
		if head, ok := r.branches[branch]; ok {
			parents = []string{head}
		}
	}
	tree := map[string]string{}
	for i, p := range parents {
		pc, ok := r.commits[p]
		if !ok {
			panic(fmt.Sprintf("githubtest: %s/%s: unknown parent %q", r.owner, r.name, p))
		}
		if i == 0 {
			tree = maps.Clone(pc.tree)
		}
	}
	for p, content := range spec.Files {
		p = strings.Trim(p, "/")
		if content == "" {
			delete(tree, p)
		} else {
			tree[p] = content
		}
	}
	r.seq++
	c := &commit{
		tree:    tree,
		treeSHA: treeSHA(tree, ""),
		parents: slices.Clone(parents),
		message: spec.Message,
	}
	if c.message == "" {
		c.message = fmt.Sprintf("commit %d", r.seq)
	}
	at := spec.AuthorTime
	if at.IsZero() {
		at = baseTime
		if !r.lastTime.IsZero() {
			at = r.lastTime.Add(time.Minute)
		}
	}
	ct := spec.CommitterTime
	if ct.IsZero() {
		ct = at
	}
	r.lastTime = later(r.lastTime, later(at, ct))
	c.author = signature{or(spec.AuthorName, "Test Author"), or(spec.AuthorEmail, "author@example.com"), at.UTC().Truncate(time.Second)}
	c.committer = signature{or(spec.CommitterName, c.author.name), or(spec.CommitterEmail, c.author.email), ct.UTC().Truncate(time.Second)}
	c.sha = commitSHA(c)
	if _, exists := r.commits[c.sha]; !exists {
		r.commits[c.sha] = c
	}
	r.branches[branch] = c.sha
	return c.sha
}

// ForceBranch points branch at sha, as a force-push does. It panics when sha is unknown.
func (r *Repo) ForceBranch(branch, sha string) {
	r.srv.mu.Lock()
	defer r.srv.mu.Unlock()
	if _, ok := r.commits[sha]; !ok {
		panic(fmt.Sprintf("githubtest: %s/%s: unknown commit %q", r.owner, r.name, sha))
	}
	r.branches[branch] = sha
}

// Tag points tag at sha, replacing any tag of that name. It panics when sha is unknown.
func (r *Repo) Tag(tag, sha string) {
	r.srv.mu.Lock()
	defer r.srv.mu.Unlock()
	if _, ok := r.commits[sha]; !ok {
		panic(fmt.Sprintf("githubtest: %s/%s: unknown commit %q", r.owner, r.name, sha))
	}
	r.tags[tag] = sha
}

// Head returns the SHA branch points at, or "" when the branch does not exist.
func (r *Repo) Head(branch string) string {
	r.srv.mu.Lock()
	defer r.srv.mu.Unlock()
	return r.branches[branch]
}

// resolve turns a full SHA, a unique SHA prefix of at least 7 characters, a branch or a tag name into a commit.
func (r *Repo) resolve(ref string) *commit {
	if name, ok := strings.CutPrefix(strings.TrimPrefix(ref, "refs/"), "tags/"); ok {
		return r.commits[r.tags[name]]
	}
	ref = strings.TrimPrefix(ref, "refs/heads/")
	ref = strings.TrimPrefix(ref, "heads/")
	if sha, ok := r.branches[ref]; ok {
		return r.commits[sha]
	}
	if sha, ok := r.tags[ref]; ok {
		return r.commits[sha]
	}
	if c, ok := r.commits[ref]; ok {
		return c
	}
	if len(ref) < 7 {
		return nil
	}
	var found *commit
	for sha, c := range r.commits {
		if strings.HasPrefix(sha, ref) {
			if found != nil {
				return nil
			}
			found = c
		}
	}
	return found
}

// changed reports whether c changed path (a file or a directory): against its parent, or against every parent
// of a merge; a root commit changed what it holds.
func (r *Repo) changed(c *commit, p string) bool {
	under := func(tree map[string]string) map[string]string {
		out := map[string]string{}
		for name, content := range tree {
			if name == p || strings.HasPrefix(name, p+"/") {
				out[name] = content
			}
		}
		return out
	}
	mine := under(c.tree)
	if len(c.parents) == 0 {
		return len(mine) > 0
	}
	for _, parent := range c.parents {
		if maps.Equal(mine, under(r.commits[parent].tree)) {
			return false
		}
	}
	return true
}

// ancestors returns sha and every commit reachable from it.
func (r *Repo) ancestors(sha string) map[string]bool {
	seen := map[string]bool{}
	stack := []string{sha}
	for len(stack) > 0 {
		s := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[s] {
			continue
		}
		seen[s] = true
		stack = append(stack, r.commits[s].parents...)
	}
	return seen
}

// mergeBase returns the newest common ancestor of a and b, or nil when their histories are unrelated.
func (r *Repo) mergeBase(ancA, ancB map[string]bool) *commit {
	var best *commit
	for sha := range ancA {
		if !ancB[sha] {
			continue
		}
		c := r.commits[sha]
		if best == nil || c.committer.when.After(best.committer.when) ||
			(c.committer.when.Equal(best.committer.when) && r.ancestors(c.sha)[best.sha]) {
			best = c
		}
	}
	return best
}

// chronological orders the commits in set parents first, then by committer time, then by SHA,
// the order GitHub's compare API lists commits in.
func (r *Repo) chronological(set map[string]bool) []*commit {
	pending := map[string]int{} // sha -> parents in set not yet emitted
	children := map[string][]string{}
	for sha := range set {
		for _, p := range r.commits[sha].parents {
			if set[p] {
				pending[sha]++
				children[p] = append(children[p], sha)
			}
		}
	}
	var ready []*commit
	for sha := range set {
		if pending[sha] == 0 {
			ready = append(ready, r.commits[sha])
		}
	}
	out := make([]*commit, 0, len(set))
	for len(ready) > 0 {
		sort.Slice(ready, func(i, j int) bool {
			a, b := ready[i], ready[j]
			if !a.committer.when.Equal(b.committer.when) {
				return a.committer.when.Before(b.committer.when)
			}
			return a.sha < b.sha
		})
		c := ready[0]
		ready = ready[1:]
		out = append(out, c)
		for _, ch := range children[c.sha] {
			if pending[ch]--; pending[ch] == 0 {
				ready = append(ready, r.commits[ch])
			}
		}
	}
	return out
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// gitHash returns the git object name of an object of kind with body.
func gitHash(kind string, body []byte) string {
	h := sha1.New() //nolint:gosec // git object names are SHA-1.
	_, _ = fmt.Fprintf(h, "%s %d\x00", kind, len(body))
	_, _ = h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

func blobSHA(content string) string { return gitHash("blob", []byte(content)) }

// treeSHA returns the git tree object name of the files under dir ("" for the root), as git computes it.
func treeSHA(files map[string]string, dir string) string {
	type entry struct{ name, mode, sha string }
	var entries []entry
	seenDirs := map[string]bool{}
	prefix := ""
	if dir != "" {
		prefix = dir + "/"
	}
	for p, content := range files {
		if !strings.HasPrefix(p, prefix) {
			continue
		}
		rest := strings.TrimPrefix(p, prefix)
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			sub := rest[:i]
			if !seenDirs[sub] {
				seenDirs[sub] = true
				entries = append(entries, entry{sub, "40000", treeSHA(files, path.Join(dir, sub))})
			}
			continue
		}
		entries = append(entries, entry{rest, "100644", blobSHA(content)})
	}
	// git sorts tree entries by name, comparing a subtree's name as if it ended in "/".
	sortKey := func(e entry) string {
		if e.mode == "40000" {
			return e.name + "/"
		}
		return e.name
	}
	sort.Slice(entries, func(i, j int) bool { return sortKey(entries[i]) < sortKey(entries[j]) })
	var buf bytes.Buffer
	for _, e := range entries {
		raw, _ := hex.DecodeString(e.sha)
		fmt.Fprintf(&buf, "%s %s\x00", e.mode, e.name)
		buf.Write(raw)
	}
	return gitHash("tree", buf.Bytes())
}

// commitSHA returns the git object name of c.
func commitSHA(c *commit) string {
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "tree %s\n", c.treeSHA)
	for _, p := range c.parents {
		fmt.Fprintf(&buf, "parent %s\n", p)
	}
	fmt.Fprintf(&buf, "author %s <%s> %d +0000\n", c.author.name, c.author.email, c.author.when.Unix())
	fmt.Fprintf(&buf, "committer %s <%s> %d +0000\n\n", c.committer.name, c.committer.email, c.committer.when.Unix())
	buf.WriteString(c.message)
	if !strings.HasSuffix(c.message, "\n") {
		buf.WriteByte('\n')
	}
	return gitHash("commit", buf.Bytes())
}

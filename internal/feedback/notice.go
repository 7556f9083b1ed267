package feedback

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/ledger"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/outbox"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/tracker"
)

// maxNoticeCommits keeps a notice within what the ledger stores per notice: the newest commits of a longer apply
// get their statuses, the older ones are counted in More.
const maxNoticeCommits = 50

// notice is what an apply recorded, as the forge sink needs it: stored in the outbox with the apply's checkpoint.
type notice struct {
	Host  string `json:"h"`
	Owner string `json:"o,omitempty"`
	Repo  string `json:"r"`
	URL   string `json:"u,omitempty"`
	Forge string `json:"fg,omitempty"`
	Kind  string `json:"k"`
	NS    string `json:"ns"`
	Name  string `json:"n"`
	// Revision is the applied revision's digest; Fetched and Applied are Unix milliseconds (0: unknown).
	Revision string         `json:"rev"`
	Fetched  int64          `json:"f,omitempty"`
	Applied  int64          `json:"a"`
	Commits  []noticeCommit `json:"c"`
	More     int            `json:"more,omitempty"`
}

type noticeCommit struct {
	SHA       string `json:"s"`
	Committed int64  `json:"t"` // Unix seconds
}

// Notifier makes the Syncer's notice of each Record.
type Notifier struct{}

// Name is the outbox sink of the notices.
func (Notifier) Name() string { return outbox.SinkForge }

// Notice is the Record's repository, object, revision and delivered commits.
func (Notifier) Notice(r tracker.Record) (json.RawMessage, bool, error) {
	if r.Repository == (commits.Repository{}) || len(r.Commits) == 0 {
		return nil, false, nil
	}
	n := notice{Host: r.Repository.Host, Owner: r.Repository.Owner, Repo: r.Repository.Name, URL: r.Repository.URL, Forge: r.Forge,
		Kind: r.Object.Kind, NS: r.Object.Namespace, Name: r.Object.Name, Revision: digestOf(r.Revision), Applied: r.Applied.UnixMilli()}
	if !r.Fetched.IsZero() {
		n.Fetched = r.Fetched.UnixMilli()
	}
	cs := r.Commits
	if len(cs) > maxNoticeCommits {
		n.More, cs = len(cs)-maxNoticeCommits, cs[len(cs)-maxNoticeCommits:]
	}
	for _, c := range cs {
		n.Commits = append(n.Commits, noticeCommit{SHA: c.SHA, Committed: c.Committed.Unix()})
	}
	body, err := json.Marshal(n)
	if err != nil {
		return nil, false, fmt.Errorf("encode forge notice: %w", err)
	}
	return body, true, nil
}

// decodeNotice reads a stored notice; a body that does not decode, or names no repository, object or commit,
// is an error.
func decodeNotice(body []byte) (notice, error) {
	var n notice
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&n); err != nil {
		return notice{}, fmt.Errorf("decode forge notice: %w", err)
	}
	if n.Host == "" || n.Repo == "" || n.Kind == "" || n.Name == "" || len(n.Commits) == 0 {
		return notice{}, errors.New("forge notice names no repository, object or commit")
	}
	for _, c := range n.Commits {
		if c.SHA == "" {
			return notice{}, errors.New("forge notice holds a commit without a SHA")
		}
	}
	return n, nil
}

func millis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// Send takes the apply a notice reports and posts its commits' statuses (and its revision's deployment): the
// notice is done once they show on the forge. It waits for the start to settle first, so that the counts
// include every object.
func (s *Syncer) Send(ctx context.Context, it ledger.Item) error {
	n, err := decodeNotice(it.Body)
	if err != nil {
		return fmt.Errorf("%w: %w", outbox.ErrRefused, err)
	}
	if err := s.waitReady(ctx); err != nil {
		return fmt.Errorf("commit statuses wait for the start to settle: %w", err)
	}
	ids := s.applied(n)
	var errs []error
	for _, id := range ids {
		if err := s.sync(ctx, id); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// applied marks the notice's commits applied by its object, and returns them.
func (s *Syncer) applied(n notice) []string {
	repoID := commits.Repository{Host: n.Host, Owner: n.Owner, Name: n.Repo, URL: n.URL}
	repo := repoKey(repoID)
	key := objectKey{n.Kind, n.NS, n.Name}
	at := appliedAt{fetched: millis(n.Fetched), applied: millis(n.Applied)}
	now := s.opts.Clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.repos[repo]; !ok || n.Forge != "" {
		s.repos[repo] = repository{repo: repoID, forge: n.Forge}
	}
	o, ok := s.objects[key]
	if !ok || o.repo != repo {
		// Not seen in a rollout yet (a notice from before a restart): it counts from its own notice.
		o = s.setObject(key, repo)
	}
	// The object applied these: they no longer wait, whatever its last rollout said.
	delivered := map[string]bool{}
	for _, c := range n.Commits {
		delivered[c.SHA] = true
	}
	o.pending = slices.DeleteFunc(o.pending, func(sha string) bool { return delivered[sha] })
	if delivered[o.attempted] {
		o.failing = false
	}
	if n.Revision != "" {
		if n.Revision == o.applied {
			o.noticeBy = time.Time{} // the notice its rollout waited for
		}
		o.applied = n.Revision
	}
	ids := make([]string, 0, len(n.Commits))
	heads := make([]string, 0, len(n.Commits))
	for _, c := range n.Commits {
		cs := s.commit(repo, c.SHA, now)
		cs.committed = time.Unix(c.Committed, 0)
		cs.applied[key] = at
		if n.Revision != "" {
			cs.in[n.Revision] = true
		}
		ids = append(ids, repo+"@"+c.SHA)
		heads = append(heads, c.SHA)
	}
	if last := n.Commits[len(n.Commits)-1]; last.SHA == n.Revision {
		s.commit(repo, n.Revision, now).heads = heads
	}
	return ids
}

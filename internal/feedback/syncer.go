package feedback

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/forge"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/latency"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/outbox"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/redact"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/revision"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/telemetry"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/tracker"
)

// Scopes of a commit status context.
const (
	ScopeCluster = "cluster" // one context per cluster, over every object on the repository
	ScopeObject  = "object"  // one context per object
)

// Default templates; {cluster}, {kind}, {namespace} and {name} are replaced.
const (
	DefaultClusterContext = "flux/{cluster}"
	DefaultObjectContext  = "flux/{cluster}/{kind}/{namespace}/{name}"
	DefaultEnvironment    = "{cluster}"
)

// Limits and pacing.
const (
	// MaxPostsPerContext bounds the statuses one process posts on one commit under one context; GitHub takes 1,000.
	MaxPostsPerContext = 20
	// maxCommits bounds the commits followed; the oldest settled ones go first.
	maxCommits = 5000
	// keepSettled is how long a commit applied everywhere is still followed, for late objects.
	keepSettled     = time.Hour
	DefaultSettle   = 5 * time.Second
	DefaultInterval = time.Second
	maxRetryWait    = 5 * time.Minute
)

// Options configures a Syncer.
type Options struct {
	// Forges picks each repository's forge for commit statuses; Statuses false posts none.
	Forges   forge.Registry
	Statuses bool
	// Deployments, when set, gets a GitHub Deployment per revision of a repository on GitHub.
	Deployments forge.Deployments
	Cluster     string
	// Scope is ScopeCluster (default) or ScopeObject; Context overrides its context template.
	Scope, Context string
	// TargetURL is an optional link template: {sha}, {trace_id}, {cluster}.
	TargetURL string
	// Environment is the deployments' environment template ({cluster}); ProductionEnvironment marks it production.
	Environment           string
	ProductionEnvironment bool
	// Settle is how long posting waits after the start, until every object's rollout has been seen, and how
	// long a new description of an unchanged state waits to be joined by more changes.
	Settle, Interval time.Duration
	Logger           *slog.Logger
	Clock            clock.Clock
	// OnPost, if set, is told the result of every status or deployment that was due.
	OnPost func(ctx context.Context, kind, result string)
}

// Syncer follows every tracked object's commits and posts their statuses and deployments.
type Syncer struct {
	opts Options

	mu      sync.Mutex
	started time.Time // when Run started; zero before
	objects map[objectKey]*object
	byRepo  map[string]map[objectKey]*object
	commits map[string]*commitState // by repoKey@sha
	repos   map[string]repository
	dirty   map[string]time.Time // commit → when it may be synced

	postMu   sync.Mutex // one sync at a time: posts are serial
	posted   map[string]postedStatus
	deployed map[string]deployment
	refused  map[string]bool // repositories whose forge turned a post away, logged once
}

type postedStatus struct {
	status forge.Status
	posts  int
	at     time.Time
	// unsure is set after a post that failed: the forge may have stored it all the same.
	unsure bool
}

type deployment struct {
	id    int64
	state forge.DeploymentState
}

// New returns a Syncer; Run posts while it runs.
func New(opts Options) (*Syncer, error) {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Settle <= 0 {
		opts.Settle = DefaultSettle
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Scope == "" {
		opts.Scope = ScopeCluster
	}
	if opts.Context == "" {
		opts.Context = DefaultClusterContext
		if opts.Scope == ScopeObject {
			opts.Context = DefaultObjectContext
		}
	}
	if opts.Environment == "" {
		opts.Environment = DefaultEnvironment
	}
	if opts.OnPost == nil {
		opts.OnPost = func(context.Context, string, string) {}
	}
	if err := ValidateTemplates(opts.Scope, opts.Context, opts.TargetURL, opts.Environment); err != nil {
		return nil, err
	}
	return &Syncer{opts: opts, objects: map[objectKey]*object{}, byRepo: map[string]map[objectKey]*object{},
		commits: map[string]*commitState{}, repos: map[string]repository{}, dirty: map[string]time.Time{},
		posted: map[string]postedStatus{}, deployed: map[string]deployment{}, refused: map[string]bool{}}, nil
}

// cluster is the placeholder of the cluster's name.
const cluster = "cluster"

// ValidateTemplates checks the context, link and environment templates: each placeholder must be known, and
// the object scope's context must name the object.
func ValidateTemplates(scope, contextTmpl, targetURL, environment string) error {
	if scope != ScopeCluster && scope != ScopeObject {
		return fmt.Errorf("invalid commit status scope %q: want %s or %s", scope, ScopeCluster, ScopeObject)
	}
	allowed := []string{cluster}
	if scope == ScopeObject {
		allowed = []string{cluster, "kind", "namespace", "name"}
	}
	for _, t := range []struct {
		what, tmpl string
		vars       []string
	}{{"commit status context", contextTmpl, allowed}, {"commit status URL", targetURL, []string{"sha", "trace_id", cluster}},
		{"deployment environment", environment, []string{cluster}}} {
		if err := checkPlaceholders(t.tmpl, t.vars); err != nil {
			return fmt.Errorf("invalid %s %q: %w", t.what, t.tmpl, err)
		}
	}
	if scope == ScopeObject && contextTmpl != "" && !strings.Contains(contextTmpl, "{name}") {
		return fmt.Errorf("invalid commit status context %q: with scope %s it must hold {name}, or objects share one context", contextTmpl, ScopeObject)
	}
	return nil
}

func checkPlaceholders(tmpl string, vars []string) error {
	rest := tmpl
	for {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			return nil
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return errors.New("unclosed {")
		}
		if name := rest[i+1 : i+j]; !slices.Contains(vars, name) {
			return fmt.Errorf("unknown placeholder {%s}, want one of {%s}", name, strings.Join(vars, "}, {"))
		}
		rest = rest[i+j+1:]
	}
}

func render(tmpl string, vars map[string]string) string {
	for k, v := range vars {
		tmpl = strings.ReplaceAll(tmpl, "{"+k+"}", v)
	}
	return tmpl
}

var _ tracker.RolloutObserver = (*Syncer)(nil)

// ObserveRollout takes an object's pending and failing commits.
func (s *Syncer) ObserveRollout(_ context.Context, r tracker.Rollout) {
	if r.Repository == (commits.Repository{}) {
		return
	}
	key := objectKey{r.Object.Kind, r.Object.Namespace, r.Object.Name}
	repo := repoKey(r.Repository)
	now := s.opts.Clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.repos[repo] = repository{repo: r.Repository, forge: r.Forge}
	_, known := s.objects[key]
	o := s.setObject(key, repo)
	s.touchRepo(repo, now) // what the object counts as changes for every followed commit of the repository
	if known && r.Applied != "" && r.Applied != o.applied {
		// The tracker sees an apply before it stores the apply's notice: wait for it a little.
		o.noticeBy = now.Add(s.opts.Settle)
	}
	o.applied, o.source, o.pendingKnown = r.Applied, r.Source, r.PendingKnown
	o.failing, o.attempted = !r.FailingSince.IsZero(), r.Attempted
	o.pending = o.pending[:0]
	for _, c := range r.Pending {
		o.pending = append(o.pending, c.SHA)
		cs := s.commit(repo, c.SHA, now)
		cs.committed = c.Committed
		cs.waitedOn[key] = true
		if r.Source != "" {
			cs.in[r.Source] = true
		}
	}
	if n := len(r.Pending); n > 0 && r.Pending[n-1].SHA == r.Source {
		s.commit(repo, r.Source, now).heads = shas(r.Pending)
	}
}

// ForgetRollout drops a deleted object: the commits it held back may now be applied everywhere.
func (s *Syncer) ForgetRollout(_ context.Context, kind, namespace, name string) {
	key := objectKey{kind, namespace, name}
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.objects[key]
	if !ok {
		return
	}
	delete(s.objects, key)
	delete(s.byRepo[o.repo], key)
	s.touchRepo(o.repo, s.opts.Clock.Now())
}

// setObject returns key's object on repo, moving it when its repository changed.
func (s *Syncer) setObject(key objectKey, repo string) *object {
	o, ok := s.objects[key]
	if ok && o.repo != repo {
		delete(s.byRepo[o.repo], key)
		s.touchRepo(o.repo, s.opts.Clock.Now())
		ok = false
	}
	if !ok {
		o = &object{key: key, repo: repo}
		s.objects[key] = o
	}
	if s.byRepo[repo] == nil {
		s.byRepo[repo] = map[objectKey]*object{}
	}
	s.byRepo[repo][key] = o
	return o
}

// commit returns the followed commit sha of repo, following it from now on.
func (s *Syncer) commit(repo, sha string, now time.Time) *commitState {
	id := repo + "@" + sha
	c, ok := s.commits[id]
	if !ok {
		c = &commitState{repo: repo, sha: sha, in: map[string]bool{}, applied: map[objectKey]appliedAt{}, waitedOn: map[objectKey]bool{}}
		s.commits[id] = c
	}
	c.touched = now
	s.markDirty(id, now)
	return c
}

// markDirty has the commit synced from at, unless it waits already.
func (s *Syncer) markDirty(id string, at time.Time) {
	if cur, ok := s.dirty[id]; !ok || at.Before(cur) {
		s.dirty[id] = at
	}
}

// touchRepo has every followed commit of repo synced.
func (s *Syncer) touchRepo(repo string, now time.Time) {
	for id, c := range s.commits {
		if c.repo == repo {
			s.markDirty(id, now)
		}
	}
}

func shas(cs []latency.DeliveredCommit) []string {
	out := make([]string, 0, len(cs))
	for _, c := range cs {
		out = append(out, c.SHA)
	}
	return out
}

// wanted is one status or deployment a commit should show.
type wanted struct {
	id     string // the commit
	repo   repository
	sha    string
	status forge.Status
	// deployment: the environment and payload when the commit heads a revision.
	environment string
	delivered   []string
}

// desired computes what commit id should show, under s.mu.
func (s *Syncer) desired(id string) []wanted {
	c, ok := s.commits[id]
	if !ok {
		return nil
	}
	repo := s.repos[c.repo]
	objects := slices.SortedFunc(maps.Values(s.byRepo[c.repo]), func(a, b *object) int { return strings.Compare(a.key.String(), b.key.String()) })
	vars := map[string]string{cluster: s.opts.Cluster}
	link := render(s.opts.TargetURL, map[string]string{"sha": c.sha, cluster: s.opts.Cluster,
		"trace_id": telemetry.CommitTraceID(redact.URL(repo.repo.String()), c.sha).String()})
	now := s.opts.Clock.Now()
	for _, o := range objects {
		if st, _ := objectState(o, c, now); st == stateAwaiting {
			s.markDirty(id, o.noticeBy) // nothing shows until the notice, with the times, came or had its time
			return nil
		}
	}
	var out []wanted
	if s.opts.Scope == ScopeObject {
		for _, o := range objects {
			st, at := objectState(o, c, now)
			if st == stateUnknown {
				continue
			}
			t := tally{committed: c.committed, scopeObject: true}
			t.add(o, st, at)
			state, desc := t.status()
			ctxName := render(s.opts.Context, map[string]string{cluster: s.opts.Cluster, "kind": strings.ToLower(o.key.Kind),
				"namespace": o.key.Namespace, "name": o.key.Name})
			out = append(out, wanted{id: id, repo: repo, sha: c.sha, status: forge.Status{State: state, Context: ctxName, Description: desc, TargetURL: link}})
		}
	}
	t := tally{committed: c.committed}
	for _, o := range objects {
		if st, at := objectState(o, c, now); st != stateUnknown {
			t.add(o, st, at)
		}
	}
	if t.objects == 0 {
		return out
	}
	state, desc := t.status()
	if s.opts.Scope == ScopeCluster {
		out = append(out, wanted{id: id, repo: repo, sha: c.sha, status: forge.Status{State: state, Context: render(s.opts.Context, vars), Description: desc, TargetURL: link}})
	}
	if s.opts.Deployments != nil && c.heads != nil {
		out = append(out, wanted{id: id, repo: repo, sha: c.sha, status: forge.Status{State: state, Description: desc, TargetURL: link},
			environment: render(s.opts.Environment, vars), delivered: c.heads})
	}
	return out
}

// settled reports whether commit id shows what it should and holds nothing back at now: it may be forgotten later.
func (s *Syncer) settled(c *commitState, now time.Time) bool {
	for _, o := range s.byRepo[c.repo] {
		if st, _ := objectState(o, c, now); st == statePending || st == stateFailing || st == stateAwaiting {
			return false
		}
	}
	return true
}

// Run syncs the commits that changed, every Interval, until ctx ends. Nothing is posted until Settle after
// it starts, so that every object's rollout has been seen once.
func (s *Syncer) Run(ctx context.Context) error {
	s.start()
	for {
		s.Pass(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-s.opts.Clock.After(s.opts.Interval):
		}
	}
}

func (s *Syncer) start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started.IsZero() {
		s.started = s.opts.Clock.Now()
	}
}

// ready reports whether the start has settled: every object's rollout has been seen once.
func (s *Syncer) ready() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.started.IsZero() && s.opts.Clock.Since(s.started) >= s.opts.Settle
}

// waitReady waits until the start has settled.
func (s *Syncer) waitReady(ctx context.Context) error {
	for !s.ready() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.opts.Clock.After(s.opts.Interval):
		}
	}
	return nil
}

// Pass syncs every commit that is due and forgets settled old ones.
func (s *Syncer) Pass(ctx context.Context) {
	if !s.ready() {
		return
	}
	now := s.opts.Clock.Now()
	s.mu.Lock()
	var due []string
	for id, at := range s.dirty {
		if !at.After(now) {
			due = append(due, id)
		}
	}
	slices.Sort(due)
	forgotten := s.forgetSettled(now)
	s.mu.Unlock()
	s.forgetPosts(forgotten)
	for _, id := range due {
		if ctx.Err() != nil {
			return
		}
		s.mu.Lock()
		delete(s.dirty, id)
		s.mu.Unlock()
		if err := s.sync(ctx, id); err != nil {
			s.retryLater(id, err)
		}
	}
}

// retryLater has commit id synced again after a wait that grows with its failures, or the rate limit's.
func (s *Syncer) retryLater(id string, err error) {
	now := s.opts.Clock.Now()
	wait, limited := commits.RetryAfter(err, now)
	if !limited {
		wait = 10 * time.Second
	}
	wait = min(max(wait, time.Second), maxRetryWait)
	s.mu.Lock()
	s.markDirty(id, now.Add(wait))
	s.mu.Unlock()
	s.opts.Logger.Info("commit status not posted yet: retried later", "commit", id, "retry_in", wait.Round(time.Second), "error", redact.Error(err))
}

// forgetSettled drops old settled commits, and the oldest past maxCommits, and returns them; under s.mu.
func (s *Syncer) forgetSettled(now time.Time) []string {
	var settled []*commitState
	for id, c := range s.commits {
		if _, due := s.dirty[id]; !due && s.settled(c, now) {
			settled = append(settled, c)
		}
	}
	slices.SortFunc(settled, func(a, b *commitState) int { return a.touched.Compare(b.touched) })
	over := len(s.commits) - maxCommits
	var gone []string
	for i, c := range settled {
		if i >= over && now.Sub(c.touched) < keepSettled {
			break
		}
		id := c.repo + "@" + c.sha
		delete(s.commits, id)
		gone = append(gone, id)
	}
	return gone
}

// forgetPosts drops what was posted on forgotten commits.
func (s *Syncer) forgetPosts(ids []string) {
	if len(ids) == 0 {
		return
	}
	gone := map[string]bool{}
	for _, id := range ids {
		gone[id] = true
	}
	owner := func(k string) bool { id, _, _ := strings.Cut(k, "\x00"); return gone[id] }
	s.postMu.Lock()
	defer s.postMu.Unlock()
	maps.DeleteFunc(s.posted, func(k string, _ postedStatus) bool { return owner(k) })
	maps.DeleteFunc(s.deployed, func(k string, _ deployment) bool { return owner(k) })
}

// sync posts what commit id should show where it does not show it yet.
func (s *Syncer) sync(ctx context.Context, id string) error {
	s.mu.Lock()
	want := s.desired(id)
	s.mu.Unlock()
	s.postMu.Lock()
	defer s.postMu.Unlock()
	var errs []error
	for _, w := range want {
		var err error
		if w.environment != "" {
			err = s.deploy(ctx, w)
		} else if s.opts.Statuses {
			err = s.postStatus(ctx, w)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// postStatus posts w's status unless it is what the forge shows; under postMu.
func (s *Syncer) postStatus(ctx context.Context, w wanted) error {
	key := w.id + "\x00" + w.status.Context
	last, known := s.posted[key]
	if known && !last.unsure && last.status == w.status {
		return nil
	}
	st, kind, found, err := s.opts.Forges.For(w.repo.repo, w.repo.forge)
	if err != nil || !found {
		s.refuse(ctx, w.repo, kind, err)
		return nil
	}
	now := s.opts.Clock.Now()
	if known && !last.unsure && last.status.State == w.status.State && now.Sub(last.at) < s.opts.Settle {
		s.mu.Lock()
		s.markDirty(w.id, last.at.Add(s.opts.Settle))
		s.mu.Unlock()
		return nil // only the numbers changed: joined with what else changes within Settle
	}
	if !known || last.unsure {
		latest, has, err := st.Latest(ctx, w.repo.repo, w.sha, w.status.Context)
		if err != nil {
			s.opts.OnPost(ctx, forge.PostStatus, forge.ResultError)
			return fmt.Errorf("read status %s of %s in %s: %w", w.status.Context, revision.Short(w.sha), redact.URL(w.repo.repo.String()), err)
		}
		// Shown already, by this process before a restart or by another replica; a new process may know
		// fewer times or objects than the one that posted, so the numbers alone do not make a new post. After
		// a failed post, only that very status counts as shown.
		if has && (latest == w.status || (!known && latest.State == w.status.State)) {
			s.posted[key] = postedStatus{status: latest, posts: last.posts, at: now}
			s.opts.OnPost(ctx, forge.PostStatus, forge.ResultUnchanged)
			return nil
		}
	}
	if last.posts >= MaxPostsPerContext {
		if last.posts == MaxPostsPerContext {
			s.opts.Logger.WarnContext(ctx, "commit status not posted: this commit and context had the most statuses one process posts",
				"commit", w.sha, "context", w.status.Context, "state", string(w.status.State), "cap", MaxPostsPerContext)
			s.posted[key] = postedStatus{status: last.status, posts: last.posts + 1, at: last.at}
		}
		s.opts.OnPost(ctx, forge.PostStatus, forge.ResultCapped)
		return nil
	}
	if err := st.Post(ctx, w.repo.repo, w.sha, w.status); err != nil {
		if errors.Is(err, outbox.ErrRefused) {
			s.posted[key] = postedStatus{status: w.status, posts: last.posts + 1, at: now} // not tried again until it changes
			s.refuse(ctx, w.repo, kind, err)
			return nil
		}
		if known {
			// It may be stored all the same (an answer lost on the way): what the forge shows is read before the next try.
			s.posted[key] = postedStatus{status: last.status, posts: last.posts, at: last.at, unsure: true}
		}
		s.opts.OnPost(ctx, forge.PostStatus, forge.ResultError)
		return fmt.Errorf("post status %s on %s in %s: %w", w.status.Context, revision.Short(w.sha), redact.URL(w.repo.repo.String()), err)
	}
	s.posted[key] = postedStatus{status: w.status, posts: last.posts + 1, at: s.opts.Clock.Now()}
	s.opts.OnPost(ctx, forge.PostStatus, forge.ResultPosted)
	s.opts.Logger.InfoContext(ctx, "commit status posted", "commit", w.sha, "repository", redact.URL(w.repo.repo.String()), "forge", kind,
		"context", w.status.Context, "state", string(w.status.State), "description", w.status.Description)
	return nil
}

// refuse says once per repository why its commits get no status.
func (s *Syncer) refuse(ctx context.Context, repo repository, kind string, err error) {
	s.opts.OnPost(ctx, forge.PostStatus, forge.ResultRefused)
	key := repoKey(repo.repo)
	if s.refused[key] {
		return
	}
	s.refused[key] = true
	if err == nil {
		err = errors.New("no forge serves its host: set --gitlab-api-url or --gitea-api-url, or the " + forgeAnnotation + " annotation")
	}
	s.opts.Logger.WarnContext(ctx, "commit statuses not posted for this repository", "repository", redact.URL(repo.repo.String()), "forge", kind,
		"error", redact.Error(err))
}

const forgeAnnotation = "flux-commit-tracker.io/forge"

// deploy makes the deployment of the revision w's commit heads show w's state; under postMu.
func (s *Syncer) deploy(ctx context.Context, w wanted) error {
	_, kind, found, err := s.opts.Forges.For(w.repo.repo, w.repo.forge)
	if err != nil || !found || kind != forge.KindGitHub {
		return nil // deployments are GitHub's
	}
	state := map[forge.State]forge.DeploymentState{forge.StatePending: forge.DeploymentInProgress, forge.StateSuccess: forge.DeploymentSuccess,
		forge.StateFailure: forge.DeploymentFailure}[w.status.State]
	key := w.id + "\x00deployment\x00" + w.environment
	dep, known := s.deployed[key]
	repoName := redact.URL(w.repo.repo.String())
	if !known {
		d, has, err := s.opts.Deployments.Find(ctx, w.repo.repo, w.sha, w.environment)
		if err != nil {
			s.opts.OnPost(ctx, forge.PostDeployment, forge.ResultError)
			return fmt.Errorf("find deployment of %s to %s in %s: %w", revision.Short(w.sha), w.environment, repoName, err)
		}
		if has {
			dep.id = d.ID
			if dep.state, _, err = s.opts.Deployments.LatestState(ctx, w.repo.repo, d.ID); err != nil {
				s.opts.OnPost(ctx, forge.PostDeployment, forge.ResultError)
				return fmt.Errorf("read deployment %d in %s: %w", d.ID, repoName, err)
			}
		} else {
			payload, _ := json.Marshal(map[string]any{cluster: s.opts.Cluster, "commits": w.delivered, "tool": "flux-commit-tracker"})
			d, err := s.opts.Deployments.Create(ctx, w.repo.repo, forge.Deployment{SHA: w.sha, Environment: w.environment,
				Description: "flux-commit-tracker: " + revision.Short(w.sha) + " to " + w.environment, ProductionEnvironment: s.opts.ProductionEnvironment, Payload: payload})
			if err != nil {
				s.opts.OnPost(ctx, forge.PostDeployment, forge.ResultError)
				return fmt.Errorf("create deployment of %s to %s in %s: %w", revision.Short(w.sha), w.environment, repoName, err)
			}
			dep.id = d.ID
		}
		s.deployed[key] = dep
	}
	if dep.state == state {
		s.opts.OnPost(ctx, forge.PostDeployment, forge.ResultUnchanged)
		return nil
	}
	if err := s.opts.Deployments.SetState(ctx, w.repo.repo, dep.id, state, w.status.Description, w.status.TargetURL); err != nil {
		delete(s.deployed, key) // it may be stored all the same: the next try reads the deployment's state first
		s.opts.OnPost(ctx, forge.PostDeployment, forge.ResultError)
		return fmt.Errorf("set deployment %d in %s to %s: %w", dep.id, repoName, state, err)
	}
	dep.state = state
	s.deployed[key] = dep
	s.opts.OnPost(ctx, forge.PostDeployment, forge.ResultPosted)
	s.opts.Logger.InfoContext(ctx, "deployment status posted", "commit", w.sha, "repository", repoName, "environment", w.environment,
		"deployment", dep.id, "state", string(state))
	return nil
}

package github_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/github"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/github/githubtest"
)

const testToken = "ghp_t0psecretTokenValue"

var repo = commits.Repository{Host: "github.com", Owner: "acme", Name: "manifests"}

// outcomes records OnCall.
type outcomes struct {
	mu   sync.Mutex
	list []commits.CallOutcome
}

func (o *outcomes) add(_ context.Context, c commits.CallOutcome) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.list = append(o.list, c)
}

func (o *outcomes) get() []commits.CallOutcome {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.list)
}

func (o *outcomes) count(c commits.CallOutcome) int {
	n := 0
	for _, x := range o.get() {
		if x == c {
			n++
		}
	}
	return n
}

// fixture is a fake GitHub with one repository and a Provider pointed at it.
type fixture struct {
	srv   *githubtest.Server
	repo  *githubtest.Repo
	p     *github.Provider
	calls *outcomes
}

func newFixture(t testing.TB, mod func(*github.Options)) *fixture {
	t.Helper()
	srv := githubtest.NewServer()
	t.Cleanup(srv.Close)
	srv.RequireToken(testToken)
	f := &fixture{srv: srv, repo: srv.Repo(repo.Owner, repo.Name), calls: &outcomes{}}
	opts := github.Options{
		BaseURL:      srv.URL,
		Token:        testToken,
		RetryWaitMin: 5 * time.Millisecond,
		RetryWaitMax: 20 * time.Millisecond,
		OnCall:       f.calls.add,
	}
	if mod != nil {
		mod(&opts)
	}
	p, err := github.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	f.p = p
	return f
}

func (f *fixture) commit(files map[string]string) string {
	return f.repo.Commit(githubtest.CommitSpec{Files: files})
}

func shas(cs []commits.Commit) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.SHA
	}
	return out
}

func TestCommit(t *testing.T) {
	f := newFixture(t, nil)
	at := time.Date(2025, 5, 1, 9, 0, 0, 0, time.UTC)
	root := f.repo.Commit(githubtest.CommitSpec{Message: "root", AuthorTime: at})
	side := f.repo.Commit(githubtest.CommitSpec{Branch: "side", Parents: []string{root}, AuthorTime: at.Add(time.Minute)})
	rebased := f.repo.Commit(githubtest.CommitSpec{
		Message: "fix: thing\n\nlonger body", AuthorName: "Ann", AuthorEmail: "ann@example.com",
		AuthorTime: at.Add(time.Hour), CommitterTime: at.Add(3 * time.Hour), Parents: []string{root, side},
	})

	tests := []struct {
		name    string
		repo    commits.Repository
		sha     string
		want    commits.Commit
		wantErr error
	}{
		{
			name: "committer time differs from author time",
			repo: repo, sha: rebased,
			want: commits.Commit{
				SHA: rebased, Message: "fix: thing\n\nlonger body", AuthorName: "Ann", AuthorEmail: "ann@example.com",
				AuthorTime: at.Add(time.Hour), CommitterTime: at.Add(3 * time.Hour), Parents: []string{root, side},
			},
		},
		{
			name: "root commit", repo: repo, sha: root,
			want: commits.Commit{SHA: root, Message: "root", AuthorName: "Test Author", AuthorEmail: "author@example.com", AuthorTime: at, CommitterTime: at},
		},
		{name: "unknown SHA", repo: repo, sha: strings.Repeat("ab", 20), wantErr: commits.ErrNotFound},
		{name: "unknown repository", repo: commits.Repository{Host: "github.com", Owner: "acme", Name: "gone"}, sha: root, wantErr: commits.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := f.p.Commit(context.Background(), tt.repo, tt.sha)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr != nil {
				return
			}
			if got.SHA != tt.want.SHA || got.Message != tt.want.Message || got.AuthorName != tt.want.AuthorName ||
				got.AuthorEmail != tt.want.AuthorEmail || !got.AuthorTime.Equal(tt.want.AuthorTime) ||
				!got.CommitterTime.Equal(tt.want.CommitterTime) || !slices.Equal(got.Parents, tt.want.Parents) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
			if got.Time(commits.AuthorTime) != got.AuthorTime || got.Time(commits.CommitterTime) != got.CommitterTime {
				t.Error("Time does not pick the chosen timestamp")
			}
		})
	}
}

func TestRange(t *testing.T) {
	f := newFixture(t, nil)
	base := f.commit(map[string]string{"app.yaml": "v1"})
	// A feature branch with two commits merged into main after one main commit.
	feat1 := f.repo.Commit(githubtest.CommitSpec{Branch: "feature", Parents: []string{base}, Message: "feat 1"})
	feat2 := f.repo.Commit(githubtest.CommitSpec{Branch: "feature", Message: "feat 2"})
	main1 := f.commit(map[string]string{"app.yaml": "v2"})
	merge := f.repo.Commit(githubtest.CommitSpec{Parents: []string{main1, feat2}, Message: "Merge feature"})
	after := f.commit(map[string]string{"app.yaml": "v3"})
	// A force-push rewrote main from base.
	rewritten := f.repo.Commit(githubtest.CommitSpec{Branch: "rewrite", Parents: []string{base}, Message: "rewritten"})
	linear2 := f.repo.Commit(githubtest.CommitSpec{Branch: "linear", Parents: []string{base}})
	linear3 := f.repo.Commit(githubtest.CommitSpec{Branch: "linear"})

	tests := []struct {
		name       string
		base, head string
		want       commits.Range
		wantErr    error
		wantHTTP   int
	}{
		{"linear ahead", base, linear3, commits.Range{Status: commits.Ahead, Commits: []commits.Commit{{SHA: linear2}, {SHA: linear3}}}, nil, 1},
		{"ahead through a merge keeps first parents only", base, after, commits.Range{Status: commits.Ahead, Commits: []commits.Commit{{SHA: main1}, {SHA: merge}, {SHA: after}}}, nil, 1},
		{"head is the merge", main1, merge, commits.Range{Status: commits.Ahead, Commits: []commits.Commit{{SHA: merge}}}, nil, 1},
		{"base on the merged branch", feat1, after, commits.Range{Status: commits.Ahead, Commits: []commits.Commit{{SHA: main1}, {SHA: merge}, {SHA: after}}}, nil, 1},
		{"identical needs no call", after, after, commits.Range{Status: commits.Identical}, nil, 0},
		{"behind (rollback)", after, main1, commits.Range{Status: commits.Behind}, nil, 1},
		{"diverged (force-push)", after, rewritten, commits.Range{Status: commits.Diverged}, nil, 1},
		{"unknown head", base, strings.Repeat("cd", 20), commits.Range{}, commits.ErrNotFound, 1},
		// One call resolves the branch; the range by SHA is cached from the first case.
		{"head as a branch name is resolved first", base, "linear", commits.Range{Status: commits.Ahead, Commits: []commits.Commit{{SHA: linear2}, {SHA: linear3}}}, nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.srv.ClearRequests()
			got, err := f.p.Range(context.Background(), repo, tt.base, tt.head)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got.Status != tt.want.Status || got.Truncated != tt.want.Truncated || !slices.Equal(shas(got.Commits), shas(tt.want.Commits)) {
				t.Errorf("got %s %v truncated %d, want %s %v truncated %d", got.Status, shas(got.Commits), got.Truncated, tt.want.Status, shas(tt.want.Commits), tt.want.Truncated)
			}
			if n := len(f.srv.Requests()); n != tt.wantHTTP {
				t.Errorf("%d HTTP requests, want %d", n, tt.wantHTTP)
			}
		})
	}
	// Commits carry metadata from the compare response.
	r, err := f.p.Range(context.Background(), repo, main1, merge)
	if err != nil || r.Commits[0].Message != "Merge feature" || !slices.Equal(r.Commits[0].Parents, []string{main1, feat2}) || r.Commits[0].CommitterTime.IsZero() {
		t.Errorf("merge commit metadata: %+v, %v", r.Commits, err)
	}
}

func TestRangeLarge(t *testing.T) {
	tests := []struct {
		name string
		// build adds commits after base on main and returns the expected first-parent SHAs, oldest first.
		build         func(f *fixture) []string
		wantTruncated int
		wantPages     []string
	}{
		{
			name: "300 linear commits: newest 250 kept",
			build: func(f *fixture) []string {
				var out []string
				for range 300 {
					out = append(out, f.commit(nil))
				}
				return out[50:]
			},
			wantTruncated: 50,
			wantPages:     []string{"1", "3", "2"},
		},
		{
			name: "1000 linear commits: stops once 250 are walked, truncated from total_commits",
			build: func(f *fixture) []string {
				var out []string
				for range 1000 {
					out = append(out, f.commit(nil))
				}
				return out[750:]
			},
			wantTruncated: 750,
			wantPages:     []string{"1", "10", "9", "8"},
		},
		{
			name: "150 merges of one side commit each: 300 commits, 150 on the first-parent chain",
			build: func(f *fixture) []string {
				var out []string
				for i := range 150 {
					head := f.repo.Head("main")
					side := f.repo.Commit(githubtest.CommitSpec{Branch: "side" + strconv.Itoa(i), Parents: []string{head}})
					out = append(out, f.repo.Commit(githubtest.CommitSpec{Parents: []string{head, side}}))
				}
				return out
			},
			wantPages: []string{"1", "3", "2"},
		},
		{
			name: "300 merges: 600 commits, newest 250 merges kept after walking every page",
			build: func(f *fixture) []string {
				var out []string
				for i := range 300 {
					head := f.repo.Head("main")
					side := f.repo.Commit(githubtest.CommitSpec{Branch: "side" + strconv.Itoa(i), Parents: []string{head}})
					out = append(out, f.repo.Commit(githubtest.CommitSpec{Parents: []string{head, side}}))
				}
				return out[50:]
			},
			wantTruncated: 50,
			wantPages:     []string{"1", "6", "5", "4", "3", "2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, nil)
			base := f.commit(nil)
			want := tt.build(f)
			head := f.repo.Head("main")
			got, err := f.p.Range(context.Background(), repo, base, head)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != commits.Ahead || got.Truncated != tt.wantTruncated || !slices.Equal(shas(got.Commits), want) {
				t.Errorf("got %s, %d commits, truncated %d; want %d commits, truncated %d", got.Status, len(got.Commits), got.Truncated, len(want), tt.wantTruncated)
			}
			var pages []string
			for _, r := range f.srv.Requests() {
				if !strings.Contains(r.Query, "per_page=100") {
					t.Errorf("compare without per_page=100: %s", r.Query)
				}
				q, _ := strings.CutPrefix(r.Query, "page=")
				pages = append(pages, strings.Split(q, "&")[0])
			}
			if !slices.Equal(pages, tt.wantPages) {
				t.Errorf("pages fetched %v, want %v", pages, tt.wantPages)
			}
		})
	}
}

func TestFile(t *testing.T) {
	f := newFixture(t, nil)
	big := strings.Repeat("y", 1<<20+10) // over the contents API's 1 MB inline limit
	sha := f.commit(map[string]string{"exporter-info.json": `{"commits":[]}`, "deploy/app.yaml": "kind: Deployment\n", "big.bin": big})

	tests := []struct {
		name     string
		path     string
		maxBytes int64
		want     string
		wantErr  error
	}{
		{"found", "exporter-info.json", 1024, `{"commits":[]}`, nil},
		{"nested path", "deploy/app.yaml", 1024, "kind: Deployment\n", nil},
		{"missing", "nope.json", 1024, "", commits.ErrNotFound},
		{"too large, by the size field", "deploy/app.yaml", 4, "", github.ErrTooLarge},
		{"over 1 MB is fetched raw", "big.bin", 2 << 20, big, nil},
		{"directory", "deploy", 1024, "", errors.New("not a file")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := f.p.File(context.Background(), repo, sha, tt.path, tt.maxBytes)
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tt.wantErr != nil && (err == nil || (!errors.Is(err, tt.wantErr) && !strings.Contains(err.Error(), tt.wantErr.Error()))):
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if string(got) != tt.want {
				t.Errorf("got %d bytes, want %d", len(got), len(tt.want))
			}
		})
	}

	// A missing file is remembered: no second HTTP call.
	f.srv.ClearRequests()
	if _, err := f.p.File(context.Background(), repo, sha, "nope.json", 1024); !errors.Is(err, commits.ErrNotFound) {
		t.Fatalf("err = %v", err)
	}
	if n := len(f.srv.Requests()); n != 0 {
		t.Errorf("%d HTTP requests for a remembered missing file", n)
	}
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name       string
		maxRetries int
		inject     func(*githubtest.Server)
		wantErr    bool
		wantStatus []int
		wantCalls  []commits.CallOutcome
	}{
		{
			name:       "500 then 200",
			inject:     func(s *githubtest.Server) { s.FailNext(1, 500) },
			wantStatus: []int{500, 200},
			wantCalls:  []commits.CallOutcome{commits.CallError, commits.CallSuccess},
		},
		{
			name:       "502 and 503 then 200",
			inject:     func(s *githubtest.Server) { s.FailNext(1, 502); s.FailNext(1, 503) },
			wantStatus: []int{502, 503, 200},
			wantCalls:  []commits.CallOutcome{commits.CallError, commits.CallError, commits.CallSuccess},
		},
		{
			name:       "retries exhausted",
			maxRetries: 2,
			inject:     func(s *githubtest.Server) { s.FailNext(5, 502) },
			wantErr:    true,
			wantStatus: []int{502, 502, 502},
			wantCalls:  []commits.CallOutcome{commits.CallError, commits.CallError, commits.CallError},
		},
		{
			name:       "4xx is not retried",
			inject:     func(s *githubtest.Server) { s.FailNext(1, 400) },
			wantErr:    true,
			wantStatus: []int{400},
			wantCalls:  []commits.CallOutcome{commits.CallError},
		},
		{
			name:       "501 is not retried",
			inject:     func(s *githubtest.Server) { s.FailNext(1, 501) },
			wantErr:    true,
			wantStatus: []int{501},
			wantCalls:  []commits.CallOutcome{commits.CallError},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, func(o *github.Options) { o.MaxRetries = tt.maxRetries })
			sha := f.commit(nil)
			tt.inject(f.srv)
			got, err := f.p.Commit(context.Background(), repo, sha)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && got.SHA != sha {
				t.Errorf("got %s", got.SHA)
			}
			if err != nil && strings.Contains(err.Error(), testToken) {
				t.Errorf("error leaks the token: %v", err)
			}
			var statuses []int
			for _, r := range f.srv.Requests() {
				statuses = append(statuses, r.Status)
			}
			if !slices.Equal(statuses, tt.wantStatus) {
				t.Errorf("statuses %v, want %v", statuses, tt.wantStatus)
			}
			if got := f.calls.get(); !slices.Equal(got, tt.wantCalls) {
				t.Errorf("OnCall %v, want %v", got, tt.wantCalls)
			}
		})
	}
}

// TestRateLimits: a rate-limited answer fails the lookup at once with a *commits.RateLimitError naming when
// the limit lifts; until then every lookup fails the same way without a request; afterwards lookups work.
func TestRateLimits(t *testing.T) {
	tests := []struct {
		name      string
		inject    func(*githubtest.Server)
		wantCause string
		// until returns the earliest time the next request may arrive, given the limited one.
		until func(limited githubtest.Request) time.Time
	}{
		{
			name:      "secondary 429 retry-after 2s",
			inject:    func(s *githubtest.Server) { s.RateLimitNext(http.StatusTooManyRequests, 2*time.Second) },
			wantCause: github.CauseSecondary,
			until:     func(r githubtest.Request) time.Time { return r.Time.Add(2 * time.Second) },
		},
		{
			name:      "secondary 403 retry-after 1s",
			inject:    func(s *githubtest.Server) { s.RateLimitNext(http.StatusForbidden, time.Second) },
			wantCause: github.CauseSecondary,
			until:     func(r githubtest.Request) time.Time { return r.Time.Add(time.Second) },
		},
		{
			name:      "primary 403 x-ratelimit-remaining 0 until x-ratelimit-reset",
			inject:    func(s *githubtest.Server) { s.PrimaryRateLimitNext(http.StatusForbidden, time.Second) },
			wantCause: github.CausePrimary,
			until:     func(r githubtest.Request) time.Time { return time.Unix(r.Time.Add(time.Second).Unix()+1, 0) },
		},
		{
			name:      "primary 429",
			inject:    func(s *githubtest.Server) { s.PrimaryRateLimitNext(http.StatusTooManyRequests, time.Second) },
			wantCause: github.CausePrimary,
			until:     func(r githubtest.Request) time.Time { return time.Unix(r.Time.Add(time.Second).Unix()+1, 0) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, nil)
			first, second := f.commit(map[string]string{"a": "1"}), f.commit(map[string]string{"a": "2"})
			tt.inject(f.srv)
			ctx := context.Background()

			_, err := f.p.Commit(ctx, repo, first)
			var rl *commits.RateLimitError
			if !errors.As(err, &rl) {
				t.Fatalf("err = %v, want a *commits.RateLimitError", err)
			}
			reqs := f.srv.Requests()
			if len(reqs) != 1 || (reqs[0].Status != http.StatusForbidden && reqs[0].Status != http.StatusTooManyRequests) {
				t.Fatalf("requests %+v, want one rate-limited answer", reqs)
			}
			if want := tt.until(reqs[0]); rl.Until.Before(want.Add(-50*time.Millisecond)) || rl.Cause != tt.wantCause {
				t.Errorf("limit until %v (%s), want at or after %v (%s)", rl.Until, rl.Cause, want, tt.wantCause)
			}
			if _, ok := commits.RetryAfter(err, time.Now()); !ok {
				t.Error("commits.RetryAfter does not see the limit")
			}

			// Every lookup before Until fails the same way without a request, whatever it asks.
			_, errCommit := f.p.Commit(ctx, repo, second)
			_, errRange := f.p.Range(ctx, repo, first, second)
			_, errFile := f.p.File(ctx, repo, second, "a", 10)
			for _, err := range []error{errCommit, errRange, errFile} {
				if !errors.As(err, new(*commits.RateLimitError)) {
					t.Errorf("err = %v during the limit, want a *commits.RateLimitError", err)
				}
			}
			if n := len(f.srv.Requests()); n != 1 {
				t.Errorf("%d requests during the limit, want only the limited one", n)
			}

			time.Sleep(time.Until(rl.Until))
			if got, err := f.p.Commit(ctx, repo, second); err != nil || got.SHA != second {
				t.Fatalf("after the limit: %v %v", got.SHA, err)
			}
			reqs = f.srv.Requests()
			for _, r := range reqs[1:] {
				if r.Time.Before(tt.until(reqs[0]).Add(-50 * time.Millisecond)) {
					t.Errorf("request at +%v arrived before the limit lifted", r.Time.Sub(reqs[0].Time))
				}
				if r.Status != http.StatusOK {
					t.Errorf("request after the limit answered %d", r.Status)
				}
			}
		})
	}
}

// slowTransport delays every request so concurrent lookups overlap.
type slowTransport struct{ delay time.Duration }

func (s slowTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	time.Sleep(s.delay)
	return http.DefaultTransport.RoundTrip(req)
}

// TestSingleflight: the server answers slowly, so all lookups miss the cache and only collapsing them
// keeps the calls at one.
func TestSingleflight(t *testing.T) {
	for _, tt := range []struct {
		name string
		k    int
	}{{"50 concurrent", 50}, {"2 concurrent", 2}} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, func(o *github.Options) { o.Transport = slowTransport{100 * time.Millisecond} })
			base := f.commit(nil)
			head := f.commit(nil)
			k := tt.k
			var wg sync.WaitGroup
			start := make(chan struct{})
			errs := make([]error, k)
			for i := range k {
				wg.Go(func() {
					<-start
					var r commits.Range
					r, errs[i] = f.p.Range(context.Background(), repo, base, head)
					if errs[i] == nil && len(r.Commits) != 1 {
						errs[i] = fmt.Errorf("got %d commits", len(r.Commits))
					}
				})
			}
			close(start)
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Fatal(err)
			}
			if n := len(f.srv.Requests()); n != 1 {
				t.Errorf("%d HTTP requests for %d concurrent identical lookups, want 1", n, k)
			}
			if s, h := f.calls.count(commits.CallSuccess), f.calls.count(commits.CallCacheHit); s != 1 || h != k-1 {
				t.Errorf("OnCall: %d success, %d cache_hit; want 1 and %d", s, h, k-1)
			}
		})
	}
}

func TestCache(t *testing.T) {
	var budget int64
	f := newFixture(t, func(o *github.Options) { o.CacheBytes = 1 }) // replaced below, once the commits exist
	a, b, c := f.commit(map[string]string{"x": "1"}), f.commit(map[string]string{"x": "2"}), f.commit(map[string]string{"x": "3"})
	ctx := context.Background()
	for _, sha := range []string{a, b} {
		got, err := f.p.Commit(ctx, repo, sha)
		if err != nil {
			t.Fatal(err)
		}
		budget += github.CommitCacheBytes(repo, got)
	}
	// Room for two of these commits, not three.
	p, err := github.New(github.Options{BaseURL: f.srv.URL, Token: testToken, CacheBytes: budget + budget/4, OnCall: f.calls.add})
	if err != nil {
		t.Fatal(err)
	}
	f.p = p
	f.srv.ClearRequests()

	steps := []struct {
		sha      string
		wantHTTP int
		wantCall commits.CallOutcome
	}{
		{a, 1, commits.CallSuccess},
		{a, 1, commits.CallCacheHit},
		{b, 2, commits.CallSuccess},
		{c, 3, commits.CallSuccess}, // evicts a
		{a, 4, commits.CallSuccess},
		{c, 4, commits.CallCacheHit},
	}
	for i, s := range steps {
		got, err := f.p.Commit(ctx, repo, s.sha)
		if err != nil || got.SHA != s.sha {
			t.Fatalf("step %d: %v %v", i, got.SHA, err)
		}
		calls := f.calls.get()
		if n := len(f.srv.Requests()); n != s.wantHTTP || calls[len(calls)-1] != s.wantCall {
			t.Errorf("step %d: %d HTTP requests, last OnCall %s; want %d and %s", i, n, calls[len(calls)-1], s.wantHTTP, s.wantCall)
		}
	}

	// Answers are copies: a caller's changes do not leak into the cache.
	got, _ := f.p.Commit(ctx, repo, c)
	got.Parents[0] = "mutated"
	if again, _ := f.p.Commit(ctx, repo, c); again.Parents[0] != b {
		t.Errorf("cache was mutated through a returned commit")
	}

	// Errors are not cached.
	d := f.commit(map[string]string{"x": "4"})
	f.srv.FailNext(1, 400)
	if _, err := f.p.Commit(ctx, repo, d); err == nil {
		t.Fatal("want an error")
	}
	if _, err := f.p.Commit(ctx, repo, d); err != nil {
		t.Errorf("error was cached: %v", err)
	}
}

func rsaKeyPEM(t *testing.T) (*rsa.PrivateKey, []byte) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
}

func TestAuth(t *testing.T) {
	key, keyPEM := rsaKeyPEM(t)
	otherKey, _ := rsaKeyPEM(t)
	tests := []struct {
		name string
		// setup prepares the server and returns the options to use.
		setup     func(srv *githubtest.Server) github.Options
		wantErr   bool
		wantPaths []string // request paths with the server-specific prefix trimmed
	}{
		{
			name:      "token sent as bearer",
			setup:     func(srv *githubtest.Server) github.Options { return github.Options{BaseURL: srv.URL, Token: testToken} },
			wantPaths: []string{"GET /repos/acme/manifests/commits/{sha} 200", "GET /repos/acme/manifests/commits/{sha} 200"},
		},
		{
			name: "wrong token is rejected, not retried",
			setup: func(srv *githubtest.Server) github.Options {
				return github.Options{BaseURL: srv.URL, Token: "ghp_wrong"}
			},
			wantErr:   true,
			wantPaths: []string{"GET /repos/acme/manifests/commits/{sha} 401"},
		},
		{
			name: "app exchanges an installation token once (GitHub Enterprise URL)",
			setup: func(srv *githubtest.Server) github.Options {
				srv.InstallApp(7, 42, &key.PublicKey)
				return github.Options{BaseURL: srv.EnterpriseURL(), AppID: 7, AppInstallationID: 42, AppPrivateKey: keyPEM}
			},
			wantPaths: []string{
				"POST /api/v3/app/installations/42/access_tokens 201",
				"GET /api/v3/repos/acme/manifests/commits/{sha} 200",
				"GET /api/v3/repos/acme/manifests/commits/{sha} 200",
			},
		},
		{
			name: "app whose key GitHub does not know is rejected, not retried",
			setup: func(srv *githubtest.Server) github.Options {
				srv.InstallApp(7, 42, &otherKey.PublicKey)
				return github.Options{BaseURL: srv.URL, AppID: 7, AppInstallationID: 42, AppPrivateKey: keyPEM}
			},
			wantErr:   true,
			wantPaths: []string{"POST /app/installations/42/access_tokens 401"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := githubtest.NewServer()
			defer srv.Close()
			srv.RequireToken(testToken)
			r := srv.Repo(repo.Owner, repo.Name)
			a := r.Commit(githubtest.CommitSpec{})
			b := r.Commit(githubtest.CommitSpec{})
			opts := tt.setup(srv)
			opts.RetryWaitMin, opts.RetryWaitMax = time.Millisecond, 5*time.Millisecond
			p, err := github.New(opts)
			if err != nil {
				t.Fatal(err)
			}
			for _, sha := range []string{a, b} {
				_, err = p.Commit(context.Background(), repo, sha)
				if (err != nil) != tt.wantErr {
					t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
				}
				if err != nil {
					for _, secret := range []string{testToken, string(keyPEM), "PRIVATE KEY"} {
						if strings.Contains(err.Error(), secret) {
							t.Errorf("error leaks a secret: %v", err)
						}
					}
					break
				}
			}
			var got []string
			for _, req := range srv.Requests() {
				p := strings.NewReplacer(a, "{sha}", b, "{sha}").Replace(req.Path)
				got = append(got, fmt.Sprintf("%s %s %d", req.Method, p, req.Status))
			}
			if !slices.Equal(got, tt.wantPaths) {
				t.Errorf("requests\n%v\nwant\n%v", strings.Join(got, "\n"), strings.Join(tt.wantPaths, "\n"))
			}
		})
	}
}

func TestOptions(t *testing.T) {
	_, keyPEM := rsaKeyPEM(t)
	badPEM := []byte("-----BEGIN RSA PRIVATE KEY-----\nTUlJQ1hBSUJBQUtCZ1FDcXNlY3JldGtleW1hdGVyaWFs\n-----END RSA PRIVATE KEY-----\n")
	tests := []struct {
		name       string
		opts       github.Options
		wantMode   string
		wantErr    []string // substrings the error must contain
		wantNoLeak []string // substrings it must not contain
	}{
		{name: "anonymous", opts: github.Options{}, wantMode: "anonymous"},
		{name: "token wins over app", opts: github.Options{Token: "t", AppID: 1}, wantMode: "token"},
		{name: "app", opts: github.Options{AppID: 1, AppInstallationID: 2, AppPrivateKey: keyPEM}, wantMode: "app"},
		{
			name: "app without key and installation", opts: github.Options{AppID: 1}, wantMode: "app",
			wantErr: []string{"missing GITHUB_APP_PRIVATE_KEY, GITHUB_APP_INSTALLATION_ID"},
		},
		{
			name: "app without ID", opts: github.Options{AppInstallationID: 2, AppPrivateKey: keyPEM}, wantMode: "app",
			wantErr: []string{"missing GITHUB_APP_ID"}, wantNoLeak: []string{string(keyPEM[40:80])},
		},
		{
			name: "bad PEM", opts: github.Options{AppID: 1, AppInstallationID: 2, AppPrivateKey: badPEM}, wantMode: "app",
			wantErr: []string{"GITHUB_APP_PRIVATE_KEY"}, wantNoLeak: []string{"TUlJQ1hB", "secretkey"},
		},
		{name: "relative base URL", opts: github.Options{BaseURL: "api.example.com/v3"}, wantMode: "anonymous", wantErr: []string{"absolute"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.opts.AuthMode(); got != tt.wantMode {
				t.Errorf("AuthMode() = %q, want %q", got, tt.wantMode)
			}
			_, err := github.New(tt.opts)
			if (err != nil) != (len(tt.wantErr) > 0) {
				t.Fatalf("err = %v, want error containing %q", err, tt.wantErr)
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			for _, s := range tt.wantNoLeak {
				if err != nil && strings.Contains(err.Error(), s) {
					t.Errorf("error %q leaks %q", err, s)
				}
			}
		})
	}
}

func TestSpans(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	f := newFixture(t, func(o *github.Options) { o.TracerProvider = tp })
	sha := f.commit(map[string]string{"info.json": "{}"})
	ctx, parent := tp.Tracer("test").Start(context.Background(), "reconcile")
	f.srv.FailNext(1, 500)
	if _, err := f.p.Commit(ctx, repo, sha); err != nil {
		t.Fatal(err)
	}
	if _, err := f.p.Range(ctx, repo, f.commit(nil), f.commit(nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.p.File(ctx, repo, sha, "missing.json", 100); !errors.Is(err, commits.ErrNotFound) {
		t.Fatal(err)
	}
	parent.End()

	type span struct {
		name, tmpl string
		status     int64
	}
	var got []span
	for _, s := range rec.Ended() {
		if s.Name() == "reconcile" {
			continue
		}
		if s.Parent().SpanID() != parent.SpanContext().SpanID() {
			t.Errorf("span %s is not a child of the caller's span", s.Name())
		}
		sp := span{name: s.Name()}
		for _, a := range s.Attributes() {
			switch a.Key {
			case "url.template":
				sp.tmpl = a.Value.AsString()
			case "http.response.status_code":
				sp.status = a.Value.AsInt64()
			}
			if strings.Contains(a.Value.String(), testToken) || strings.Contains(a.Value.String(), sha) {
				t.Errorf("span %s attribute %s carries a secret or SHA: %s", s.Name(), a.Key, a.Value.String())
			}
		}
		got = append(got, sp)
	}
	want := []span{
		{"github GET /repos/{owner}/{repo}/commits/{ref}", "/repos/{owner}/{repo}/commits/{ref}", 500},
		{"github GET /repos/{owner}/{repo}/commits/{ref}", "/repos/{owner}/{repo}/commits/{ref}", 200},
		{"github GET /repos/{owner}/{repo}/compare/{basehead}", "/repos/{owner}/{repo}/compare/{basehead}", 200},
		{"github GET /repos/{owner}/{repo}/contents/{path}", "/repos/{owner}/{repo}/contents/{path}", 404},
	}
	if !slices.Equal(got, want) {
		t.Errorf("spans\n%v\nwant\n%v", got, want)
	}
}

package github_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/github"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/github/githubtest"
)

// liveness bounds how long a test waits for a lookup that must end on its own; it is a hang guard, not a
// measurement.
const liveness = 20 * time.Second

// TestBadResponses: answers that are null, empty, truncated, wrongly typed or missing fields fail the lookup
// with commits.ErrBadResponse instead of crashing the process, are not cached, and the next good answer works.
func TestBadResponses(t *testing.T) {
	type lookup func(f *fixture, base, head string) error
	commit := func(f *fixture, _, head string) error {
		_, err := f.p.Commit(context.Background(), repo, head)
		return err
	}
	rangeOf := func(f *fixture, base, head string) error {
		_, err := f.p.Range(context.Background(), repo, base, head)
		return err
	}
	file := func(f *fixture, _, head string) error {
		_, err := f.p.File(context.Background(), repo, head, "app.yaml", 1<<20)
		return err
	}
	replace := func(old, new string) func([]byte) []byte {
		return func(b []byte) []byte { return bytes.Replace(b, []byte(old), []byte(new), 1) }
	}
	tests := []struct {
		name   string
		lookup lookup
		inject func(s *githubtest.Server, base, head string)
	}{
		{"commit: null body", commit, func(s *githubtest.Server, _, _ string) { s.RespondNext(200, "null") }},
		{"commit: empty 200", commit, func(s *githubtest.Server, _, _ string) { s.RespondNext(200, "") }},
		{"commit: empty object", commit, func(s *githubtest.Server, _, _ string) { s.RespondNext(200, "{}") }},
		{"commit: sha is a number", commit, func(s *githubtest.Server, _, _ string) { s.RespondNext(200, `{"sha":5}`) }},
		{"commit: truncated JSON", commit, func(s *githubtest.Server, _, head string) {
			s.RespondNext(200, `{"sha":"`+head+`","commit":{"author":`)
		}},
		{"commit: body cut short of Content-Length", commit, func(s *githubtest.Server, _, _ string) { s.CutNext() }},
		{"commit: committer date missing", commit, func(s *githubtest.Server, _, _ string) {
			s.RewriteNext(replace(`"committer":{`, `"committer":null,"x":{`))
		}},
		{"compare: commits [null]", rangeOf, func(s *githubtest.Server, _, _ string) {
			s.RewriteNext(func(b []byte) []byte {
				i := bytes.Index(b, []byte(`"commits":[`))
				return append(append(bytes.Clone(b[:i]), `"commits":[null],"x":[`...), b[i+len(`"commits":[`):]...)
			})
		}},
		{"compare: null body", rangeOf, func(s *githubtest.Server, _, _ string) { s.RespondNext(200, "null") }},
		{"compare: unknown status", rangeOf, func(s *githubtest.Server, _, _ string) {
			s.RewriteNext(replace(`"status":"ahead"`, `"status":"sideways"`))
		}},
		{"compare: total_commits a string", rangeOf, func(s *githubtest.Server, _, _ string) {
			s.RewriteNext(replace(`"total_commits":1`, `"total_commits":"1"`))
		}},
		{"compare: total promises pages that are empty", rangeOf, func(s *githubtest.Server, base, _ string) {
			// The chain leaves page 1 and the total claims 1000 pages: the walk asks for page 1000, which is empty.
			s.RewriteNext(func(b []byte) []byte {
				b = replace(`"total_commits":1`, `"total_commits":100000`)(b)
				return replace(`"parents":[{"sha":"`+base, `"parents":[{"sha":"`+strings.Repeat("e", 40))(b)
			})
		}},
		{"contents: null body", file, func(s *githubtest.Server, _, _ string) { s.RespondNext(200, "null") }},
		{"contents: size disagrees with content", file, func(s *githubtest.Server, _, _ string) { s.RewriteNext(replace(`"size":4`, `"size":400`)) }},
		{"contents: content a number", file, func(s *githubtest.Server, _, _ string) {
			s.RewriteNext(func(b []byte) []byte {
				i := bytes.Index(b, []byte(`"content":"`))
				j := bytes.IndexByte(b[i+len(`"content":"`):], '"')
				return append(append(bytes.Clone(b[:i]), `"content":7`...), b[i+len(`"content":"`)+j+1:]...)
			})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, func(o *github.Options) { o.MaxRetries = -1 })
			base := f.commit(map[string]string{"app.yaml": "v: 1"})
			head := f.commit(map[string]string{"app.yaml": "v: 2"})
			tt.inject(f.srv, base, head)
			err := tt.lookup(f, base, head)
			if !errors.Is(err, commits.ErrBadResponse) {
				t.Fatalf("err = %v, want commits.ErrBadResponse", err)
			}
			if err := tt.lookup(f, base, head); err != nil {
				t.Errorf("after a good answer: %v (was the bad one cached?)", err)
			}
		})
	}
}

// panicTransport panics on every request, standing in for any bug reached through outside data.
type panicTransport struct{}

func (panicTransport) RoundTrip(*http.Request) (*http.Response, error) {
	var rc *struct{ SHA string }
	_ = rc.SHA // a nil dereference, as a null commit once caused
	return nil, errors.New("unreachable")
}

// TestPanicInSharedLookup: a panic inside the shared lookup is an error for every caller, not a crash.
func TestPanicInSharedLookup(t *testing.T) {
	f := newFixture(t, func(o *github.Options) { o.Transport = panicTransport{} })
	sha := f.commit(nil)
	var wg sync.WaitGroup
	errs := make([]error, 5)
	for i := range errs {
		wg.Go(func() { _, errs[i] = f.p.Commit(context.Background(), repo, sha) })
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, commits.ErrBadResponse) {
			t.Errorf("caller %d: err = %v, want an error wrapping commits.ErrBadResponse", i, err)
		}
	}
}

// TestTimeout: a server that never answers fails the lookup, retries included, with an error wrapping
// context.DeadlineExceeded once Options.Timeout has passed, though the caller's context has no deadline.
func TestTimeout(t *testing.T) {
	f := newFixture(t, func(o *github.Options) { o.Timeout = 300 * time.Millisecond })
	sha := f.commit(nil)
	f.srv.HangNext(10)
	done := make(chan error, 1)
	go func() { _, err := f.p.Commit(context.Background(), repo, sha); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want context.DeadlineExceeded", err)
		}
	case <-time.After(liveness):
		t.Fatal("the lookup never returned from a server that does not answer")
	}
}

// gatedTransport holds every request until release is closed, and tells arrived of each.
type gatedTransport struct {
	arrived chan struct{}
	release chan struct{}
}

func (g gatedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	g.arrived <- struct{}{}
	select {
	case <-g.release:
	case <-req.Context().Done():
		return nil, req.Context().Err()
	}
	return http.DefaultTransport.RoundTrip(req)
}

// TestSharedLookupOutlivesCanceledCaller: the caller whose lookup started the shared call gives up; the
// others still get the answer from that same single request.
func TestSharedLookupOutlivesCanceledCaller(t *testing.T) {
	gate := gatedTransport{arrived: make(chan struct{}, 4), release: make(chan struct{})}
	f := newFixture(t, func(o *github.Options) { o.Transport = gate })
	sha := f.commit(nil)

	leaderCtx, cancel := context.WithCancel(context.Background())
	leaderErr := make(chan error, 1)
	go func() { _, err := f.p.Commit(leaderCtx, repo, sha); leaderErr <- err }()
	<-gate.arrived
	follower := make(chan error, 1)
	go func() {
		got, err := f.p.Commit(context.Background(), repo, sha)
		if err == nil && got.SHA != sha {
			err = errors.New("wrong commit " + got.SHA)
		}
		follower <- err
	}()
	time.Sleep(50 * time.Millisecond) // let the follower join the flight
	cancel()
	if err := <-leaderErr; !errors.Is(err, context.Canceled) {
		t.Errorf("leader: err = %v, want context.Canceled", err)
	}
	close(gate.release)
	if err := <-follower; err != nil {
		t.Errorf("follower: %v, want the commit despite the leader's cancellation", err)
	}
	if n := len(f.srv.Requests()); n != 1 {
		t.Errorf("%d requests, want the one shared request", n)
	}
	if n := len(gate.arrived); n != 0 {
		t.Errorf("%d more requests were started after the leader gave up, want none", n)
	}
}

// TestTokenOnlyToAPIHost: a redirect to another server (another port) is followed without the token; a
// redirect within the API's origin keeps it.
func TestTokenOnlyToAPIHost(t *testing.T) {
	other := githubtest.NewServer()
	defer other.Close()
	f := newFixture(t, nil)
	sha := f.commit(map[string]string{"a": "1"})
	// The same history on the other server gives the same SHAs, so it can answer the redirected request.
	if got := other.Repo(repo.Owner, repo.Name).Commit(githubtest.CommitSpec{Files: map[string]string{"a": "1"}}); got != sha {
		t.Fatalf("other server built %s, want %s", got, sha)
	}
	f.srv.RedirectNext(http.StatusFound, other.URL+"repos/acme/manifests/commits/"+sha)
	if _, err := f.p.Commit(context.Background(), repo, sha); err != nil {
		t.Fatal(err)
	}
	if reqs := f.srv.Requests(); len(reqs) != 1 || reqs[0].Header.Get("Authorization") != "Bearer "+testToken {
		t.Fatalf("API requests %+v, want one carrying the token", reqs)
	}
	reqs := other.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests reached the other server, want the redirected one", len(reqs))
	}
	if auth := reqs[0].Header.Get("Authorization"); auth != "" {
		t.Errorf("the other server got Authorization %q", auth)
	}
	for k, v := range reqs[0].Header {
		if strings.Contains(strings.Join(v, ","), testToken) {
			t.Errorf("the other server got the token in %s", k)
		}
	}

	// Within the API's own origin the token stays (the fake requires it).
	second := f.commit(map[string]string{"a": "2"})
	f.srv.ClearRequests()
	f.srv.RedirectNext(http.StatusMovedPermanently, f.srv.URL+"repos/acme/manifests/commits/"+second)
	if _, err := f.p.Commit(context.Background(), repo, second); err != nil {
		t.Fatalf("same-origin redirect: %v", err)
	}
	for _, r := range f.srv.Requests() {
		if r.Header.Get("Authorization") != "Bearer "+testToken {
			t.Errorf("%s %s without the token", r.Method, r.Path)
		}
	}
}

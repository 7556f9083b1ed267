// Package apptest runs flux-commit-tracker in-process, as its command line does, and reads back what it
// recorded: the Records its sinks receive, its log lines and its Prometheus metrics. It serves the integration
// and end-to-end tests and the demo.
package apptest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/app"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/tracker"
)

// AppliedMessage is the log message of each recorded commit.
const AppliedMessage = "commit applied"

// CommitLog is one "commit applied" log line.
type CommitLog struct {
	Time             time.Time `json:"time"`
	Namespace        string    `json:"namespace"`
	Name             string    `json:"name"`
	Commit           string    `json:"commit"`
	Committed        time.Time `json:"committed"`
	Applied          time.Time `json:"applied"`
	AppliedFromFlux  bool      `json:"applied_from_flux"`
	ReconcileSeconds float64   `json:"reconcile_seconds"`
	E2ESeconds       float64   `json:"e2e_seconds"`
	UpstreamCommits  int       `json:"upstream_commits"`
}

// Output collects a tracker's JSON log lines and signals each recorded commit: from the Records it receives as
// a tracker.Sink in-process (NewSinkOutput), or from the "commit applied" lines of a tracker binary (NewOutput).
type Output struct {
	mu       sync.Mutex
	buf      bytes.Buffer
	fromLogs bool
	applied  []CommitLog
	// Recorded gets a value per recorded commit.
	Recorded chan CommitLog
}

// NewOutput returns an Output that reads the recorded commits from the log lines of a tracker binary; its
// Recorded channel holds up to capacity unread commits.
func NewOutput(capacity int) *Output {
	return &Output{Recorded: make(chan CommitLog, capacity), fromLogs: true}
}

// NewSinkOutput returns an Output that learns the recorded commits as the sink of an in-process tracker.
func NewSinkOutput(capacity int) *Output { return &Output{Recorded: make(chan CommitLog, capacity)} }

// Write stores p, and with NewOutput signals the commits it records; lines arrive whole from the JSON log handler.
func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.fromLogs {
		for _, line := range bytes.Split(p, []byte("\n")) {
			if c, ok := parseApplied(line); ok {
				o.addLocked(c)
			}
		}
	}
	return o.buf.Write(p)
}

// Record takes each commit of r, as the tracker's sink.
func (o *Output) Record(_ context.Context, r tracker.Record) {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := time.Now()
	for _, c := range r.Commits {
		reconcile, e2e := r.Stages(c.SHA)
		o.addLocked(CommitLog{Time: now, Namespace: r.Object.Namespace, Name: r.Object.Name, Commit: c.SHA, Committed: c.Committed,
			Applied: r.Applied, AppliedFromFlux: r.AppliedFromFlux, ReconcileSeconds: reconcile.Duration.Seconds(),
			E2ESeconds: e2e.Seconds(), UpstreamCommits: len(c.Upstream)})
	}
}

func (o *Output) addLocked(c CommitLog) {
	o.applied = append(o.applied, c)
	select {
	case o.Recorded <- c:
	default:
	}
}

// String returns everything written so far.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// Lines returns the lines written so far.
func (o *Output) Lines() []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(o.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

// Applied returns every commit recorded so far, in order.
func (o *Output) Applied() []CommitLog {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.applied)
}

// Logged reports whether a line with message msg was written.
func (o *Output) Logged(msg string) bool {
	for _, line := range o.Lines() {
		var l struct {
			Msg string `json:"msg"`
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == msg {
			return true
		}
	}
	return false
}

func parseApplied(line []byte) (CommitLog, bool) {
	if !bytes.Contains(line, []byte(`"msg":"`+AppliedMessage+`"`)) {
		return CommitLog{}, false
	}
	var c CommitLog
	if err := json.Unmarshal(line, &c); err != nil {
		return CommitLog{}, false
	}
	return c, true
}

// Tracker is one running tracker, started with app.Run.
type Tracker struct {
	*Output
	tb          testing.TB
	cancel      context.CancelFunc
	done        chan int
	MetricsAddr string
	HealthAddr  string
	once        sync.Once
}

// Start runs the tracker with args (its metrics and health addresses are added) and env, and waits until it is
// ready; it stops when the test ends.
func Start(tb testing.TB, args []string, env map[string]string) *Tracker {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	tr := &Tracker{Output: NewSinkOutput(1 << 16), tb: tb, cancel: cancel, done: make(chan int, 1), MetricsAddr: FreeAddr(tb), HealthAddr: FreeAddr(tb)}
	args = append([]string{"--metrics-addr", tr.MetricsAddr, "--health-addr", tr.HealthAddr}, args...)
	go func() {
		tr.done <- app.Run(ctx, args, app.Deps{Getenv: func(k string) string { return env[k] }, Stdout: tr.Output, Stderr: tr.Output, Version: "test",
			Sinks: []tracker.Sink{tr.Output}})
	}()
	tb.Cleanup(tr.Stop)
	Eventually(tb, 60*time.Second, "tracker ready", func() bool {
		select {
		case code := <-tr.done:
			tr.done <- code
			tb.Fatalf("tracker exited with %d before it was ready:\n%s", code, tr.String())
		default:
		}
		resp, err := http.Get("http://" + tr.HealthAddr + "/readyz")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return tr
}

// Stop ends the tracker and waits for it; it is safe to call twice.
func (tr *Tracker) Stop() {
	tr.once.Do(func() {
		tr.cancel()
		select {
		case code := <-tr.done:
			if code != 0 {
				tr.tb.Errorf("tracker exited with %d:\n%s", code, tr.String())
			}
		case <-time.After(30 * time.Second):
			tr.tb.Error("tracker did not stop within 30s")
		}
	})
}

// Metric sums the Prometheus series named name whose line contains every label fragment.
func (tr *Tracker) Metric(name string, labelFragments ...string) float64 {
	tr.tb.Helper()
	v, err := Scrape("http://"+tr.MetricsAddr+"/metrics", name, labelFragments...)
	if err != nil {
		tr.tb.Fatal(err)
	}
	return v
}

// Scrape sums the series named name whose line contains every label fragment at a Prometheus endpoint.
func Scrape(url, name string, labelFragments ...string) (float64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("scrape %s: %w", url, err)
	}
	total := 0.0
lines:
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		for _, f := range labelFragments {
			if !strings.Contains(line, f) {
				continue lines
			}
		}
		fields := strings.Fields(line)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("metric line %q: %w", line, err)
		}
		total += v
	}
	return total, nil
}

// Eventually waits up to timeout for cond, failing the test otherwise.
func Eventually(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Consistently fails the test if cond turns false within d.
func Consistently(tb testing.TB, d time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if !cond() {
			tb.Fatalf("%s stopped holding", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// FreeAddr returns a free 127.0.0.1 address.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().String()
}

// Package scale_test measures the tracker binary against a real kube-apiserver holding thousands of Flux objects:
// memory while /metrics is scraped, one push moving many objects on one source, catch-up after a restart, and
// churn. `make bench-scale` runs it (SCALE_OBJECTS=10000); the figures are in docs/performance.md.
package scale_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/github/githubtest"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/ledger"
	"github.com/flux-commit-tracker/flux-commit-tracker/test/fluxstatus"
	"github.com/flux-commit-tracker/flux-commit-tracker/test/harness"
	"github.com/flux-commit-tracker/flux-commit-tracker/test/testenv"
)

// count reads a positive integer from the environment, else def.
func count(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// duration reads a positive duration from the environment, else def.
func duration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil && d > 0 {
		return d
	}
	return def
}

// cluster is one namespace of Kustomizations and GitRepositories whose repositories live in a fake GitHub; it
// writes the statuses kustomize-controller writes.
type cluster struct {
	c      client.Client
	ns     string
	shared *githubtest.Repo
	repos  map[string]*githubtest.Repo // by GitRepository name
	t0     time.Time

	mu      sync.Mutex
	written map[string]time.Time // object/commit → when its applied status was written
}

func kname(i int) string { return fmt.Sprintf("k-%05d", i) }
func gname(i int) string { return fmt.Sprintf("g-%05d", i) }

// parallel runs do(i) for i in [0, n) on workers goroutines and fails the test on the first error.
func parallel(t *testing.T, n, workers int, do func(i int) error) {
	t.Helper()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	next := make(chan int)
	for range workers {
		wg.Go(func() {
			for i := range next {
				if err := do(i); err != nil {
					once.Do(func() { first = err })
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if first != nil {
		t.Fatal(first)
	}
}

func (c *cluster) commit(repo *githubtest.Repo, at time.Time) string {
	return repo.Commit(githubtest.CommitSpec{AuthorTime: at, CommitterTime: at,
		Files: map[string]string{"app.yaml": repo.Name() + " at " + at.String() + "\n"}}) // a SHA of its own in every repository
}

func hname(i int) string { return fmt.Sprintf("h-%05d", i) }

// chartsGitRepository is the source of every HelmRelease's chart.
const chartsGitRepository = "g-charts"

// lag returns, for each recorded line of commit sha, the time from its status write to its sample.
func (c *cluster) lag(lines []harness.Applied, sha string) []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]time.Duration, 0, len(lines))
	for _, l := range lines {
		out = append(out, l.Time.Sub(c.written[l.Name+"/"+sha]))
	}
	return out
}

// fetch creates GitRepository name on repo if needed and writes the status of its fetch of sha at at.
func (c *cluster) fetch(t *testing.T, name, repo, sha string, at time.Time) {
	t.Helper()
	src := &sourcev1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Namespace: c.ns, Name: name},
		Spec:       sourcev1.GitRepositorySpec{URL: "https://github.com/acme/" + repo, Interval: metav1.Duration{Duration: time.Hour}},
	}
	if err := c.c.Create(t.Context(), src); client.IgnoreAlreadyExists(err) != nil {
		t.Fatal(err)
	}
	if err := c.updateStatus(t.Context(), &sourcev1.GitRepository{}, name, func(o client.Object) {
		fluxstatus.Fetched(o.(*sourcev1.GitRepository), sha, at)
	}); err != nil {
		t.Fatal(err)
	}
}

// createRelease makes HelmRelease name with its HelmChart on the chart source, released at sha.
func (c *cluster) createRelease(ctx context.Context, name, sha string) error {
	hr, chart := fluxstatus.HelmRelease(c.ns, name, chartsGitRepository)
	for _, obj := range []client.Object{hr, chart} {
		if err := c.c.Create(ctx, obj); err != nil {
			return fmt.Errorf("create %s: %w", obj.GetName(), err)
		}
	}
	return c.release(ctx, name, sha, time.Now())
}

// release writes what source-controller and helm-controller write once the chart built from sha is released
// at applied: the next release number each time.
func (c *cluster) release(ctx context.Context, name, sha string, applied time.Time) error {
	hr, _ := fluxstatus.HelmRelease(c.ns, name, chartsGitRepository)
	if err := c.updateStatus(ctx, &sourcev1.HelmChart{}, hr.GetHelmChartName(), func(o client.Object) {
		fluxstatus.ChartBuilt(o.(*sourcev1.HelmChart), sha, applied.Add(-time.Second))
	}); err != nil {
		return err
	}
	err := c.updateStatus(ctx, &helmv2.HelmRelease{}, name, func(o client.Object) {
		hr := o.(*helmv2.HelmRelease)
		fluxstatus.Released(hr, len(hr.Status.History)+1, sha, applied)
	})
	c.wrote(name, sha, err)
	return err
}

// wrote notes when object name's status for sha was written, when err is nil.
func (c *cluster) wrote(name, sha string, err error) {
	if err == nil {
		c.mu.Lock()
		c.written[name+"/"+sha] = time.Now()
		c.mu.Unlock()
	}
}

// updateStatus reads object name into obj, lets set change it and writes its status, retrying conflicts.
func (c *cluster) updateStatus(ctx context.Context, obj client.Object, name string, set func(client.Object)) error {
	for attempt := 0; ; attempt++ {
		err := c.c.Get(ctx, client.ObjectKey{Namespace: c.ns, Name: name}, obj)
		if err == nil {
			set(obj)
			err = c.c.Status().Update(ctx, obj)
		}
		if err == nil {
			return nil
		}
		if attempt > 20 {
			return fmt.Errorf("status of %s: %w", name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// create makes GitRepository g and Kustomization k on it, applied at sha.
func (c *cluster) create(ctx context.Context, k, g, repo, sha string) error {
	src := &sourcev1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Namespace: c.ns, Name: g},
		Spec:       sourcev1.GitRepositorySpec{URL: "https://github.com/acme/" + repo, Interval: metav1.Duration{Duration: time.Hour}},
	}
	if err := c.c.Create(ctx, src); err != nil && !strings.Contains(err.Error(), "already exists") {
		return fmt.Errorf("create %s: %w", g, err)
	}
	obj := &kustomizev1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Namespace: c.ns, Name: k},
		Spec: kustomizev1.KustomizationSpec{Interval: metav1.Duration{Duration: time.Hour}, Path: "./", Prune: true,
			SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.GitRepositoryKind, Name: g}},
	}
	if err := c.c.Create(ctx, obj); err != nil {
		return fmt.Errorf("create %s: %w", k, err)
	}
	return c.move(ctx, k, sha, time.Now())
}

// move writes the status kustomize-controller writes after applying sha at applied.
func (c *cluster) move(ctx context.Context, name, sha string, applied time.Time) error {
	err := c.updateStatus(ctx, &kustomizev1.Kustomization{}, name, func(o client.Object) {
		fluxstatus.Applied(o.(*kustomizev1.Kustomization), fluxstatus.Revision(sha), applied)
	})
	c.wrote(name, sha, err)
	return err
}

// memory is what the tracker reports of itself on /metrics: heap in use (garbage included), the live heap at
// the last GC, and the resident set.
type memory struct{ heap, live, rss float64 }

// sample scrapes /metrics: the Go heap in use, the resident set, and the number of the tracker's own series.
func sample(ctx context.Context, tr *harness.Tracker) (memory, int, error) {
	body, err := tr.Scrape(ctx)
	if err != nil {
		return memory{}, 0, err
	}
	var m memory
	series := 0
	for _, line := range strings.Split(body, "\n") {
		switch {
		case strings.HasPrefix(line, "flux_commit_tracker_"):
			series++
		case strings.HasPrefix(line, "go_memstats_heap_inuse_bytes "):
			m.heap, _ = strconv.ParseFloat(strings.Fields(line)[1], 64)
		case strings.HasPrefix(line, "go_gc_heap_live_bytes "):
			m.live, _ = strconv.ParseFloat(strings.Fields(line)[1], 64)
		case strings.HasPrefix(line, "process_resident_memory_bytes "):
			m.rss, _ = strconv.ParseFloat(strings.Fields(line)[1], 64)
		}
	}
	return m, series, nil
}

// peak scrapes n times, a second apart, and returns the highest heap and RSS seen and the last series count.
func peak(t *testing.T, tr *harness.Tracker, n int) (memory, int) {
	t.Helper()
	var top memory
	series := 0
	for range n {
		m, s, err := sample(t.Context(), tr)
		if err != nil {
			t.Fatal(err)
		}
		top.heap, top.live, top.rss, series = max(top.heap, m.heap), max(top.live, m.live), max(top.rss, m.rss), s
		time.Sleep(time.Second)
	}
	return top, series
}

func mib(b float64) string { return fmt.Sprintf("%.0f MiB", b/(1<<20)) }

// String renders the three figures for a report line.
func (m memory) String() string {
	return fmt.Sprintf("heap %s in use, %s live, RSS %s", mib(m.heap), mib(m.live), mib(m.rss))
}

// waitRecorded waits until tr has logged want "commit applied" lines for which match is true; it returns them.
func waitRecorded(t *testing.T, tr *harness.Tracker, want int, timeout time.Duration, match func(harness.Applied) bool) []harness.Applied {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		lines, err := tr.Recorded()
		if err != nil {
			t.Fatal(err)
		}
		lines = slices.DeleteFunc(lines, func(a harness.Applied) bool { return !match(a) })
		if len(lines) >= want {
			return lines
		}
		if time.Now().After(deadline) || !tr.Running() {
			t.Fatalf("%d of %d commits recorded:\n%s", len(lines), want, harness.Tail(tr.LogPath))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// saveHeapProfile writes the tracker's heap profile, taken after a collection, to path.
func saveHeapProfile(t *testing.T, addr, path string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+addr+"/debug/pprof/heap?gc=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("heap profile: %s, %v", resp.Status, err)
	}
	if err := os.WriteFile(path, body, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("heap profile written to %s", path)
}

// touchedShards counts the ledger shards that hold the first n objects: the fewest writes that can move them.
func (c *cluster) touchedShards(t *testing.T, n int) int {
	t.Helper()
	l, err := ledger.NewConfigMaps(ledger.ConfigMapsOptions{Client: c.c, Namespace: c.ns})
	if err != nil {
		t.Fatal(err)
	}
	shards := map[string]bool{}
	for i := range n {
		var k kustomizev1.Kustomization
		if err := c.c.Get(t.Context(), client.ObjectKey{Namespace: c.ns, Name: kname(i)}, &k); err != nil {
			t.Fatal(err)
		}
		shards[l.Home(string(k.UID))] = true
	}
	return len(shards)
}

// waitBaselined waits until the ledger holds n entries.
func (c *cluster) waitBaselined(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		entries, err := harness.Ledger(t.Context(), c.c, c.ns)
		if err == nil && len(entries) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d objects baselined (%v)", len(entries), n, err)
		}
		time.Sleep(2 * time.Second)
	}
}

// apiWrites is what the apiserver counts of the ConfigMap patches it served: the ledger's writes.
type apiWrites struct{ patches, bytes float64 }

// configMapPatches reads the apiserver's own request metrics.
func configMapPatches(ctx context.Context, rc rest.Interface) (apiWrites, error) {
	body, err := rc.Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return apiWrites{}, fmt.Errorf("apiserver metrics: %w", err)
	}
	var w apiWrites
	for _, line := range strings.Split(string(body), "\n") {
		name, labels, ok := strings.Cut(line, "{")
		if !ok || !strings.Contains(labels, `resource="configmaps"`) {
			continue
		}
		fields := strings.Fields(labels)
		value, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			continue
		}
		switch {
		case name == "apiserver_request_total" && strings.Contains(labels, `verb="PATCH"`):
			w.patches += value
		case name == "apiserver_request_body_size_bytes_sum" && strings.Contains(labels, `verb="patch"`):
			w.bytes += value
		}
	}
	return w, nil
}

// since returns the patches and bytes served after w0.
func (w apiWrites) since(w0 apiWrites) apiWrites {
	return apiWrites{patches: w.patches - w0.patches, bytes: w.bytes - w0.bytes}
}

// per renders the writes for n objects.
func (w apiWrites) per(n int) string {
	return fmt.Sprintf("%.0f ledger writes (%.2f per object), %.0f bytes per object", w.patches, w.patches/float64(n), w.bytes/float64(n))
}

// percentile returns the p-th percentile of ds (nearest rank).
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// TestScale reports, for SCALE_OBJECTS Kustomizations (each on its own GitRepository, SCALE_SHARED of them on
// one shared source), the figures docs/performance.md records. It fails on a commit recorded twice or missed.
func TestScale(t *testing.T) {
	objects := count("SCALE_OBJECTS", 0)
	if objects == 0 {
		t.Skip("set SCALE_OBJECTS (make bench-scale) to run the scale benchmark")
	}
	shared := min(count("SCALE_SHARED", 1000), objects)
	releases := count("SCALE_HELMRELEASES", objects/10) // on one chart source, besides the Kustomizations
	moved := min(count("SCALE_RESTART_MOVED", 1000), objects-shared)
	churnFor, churnRate := duration("SCALE_CHURN", time.Minute), count("SCALE_CHURN_RATE", 50)

	env, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = env.Stop() }()
	dir := t.TempDir()
	binary, err := harness.Build(dir)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := testenv.WriteKubeconfig(env.Config, kubeconfig, ""); err != nil {
		t.Fatal(err)
	}
	cfg := rest.CopyConfig(env.Config)
	cfg.QPS = -1 // the harness plays every Flux controller at once: no client-side limit
	c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "scale"}}
	if err := c.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	gh := githubtest.NewServer()
	defer gh.Close()
	cl := &cluster{c: c, ns: ns.Name, shared: gh.Repo("acme", "shared"), repos: map[string]*githubtest.Repo{},
		t0: time.Now().Add(-time.Hour).Truncate(time.Second).UTC(), written: map[string]time.Time{}}
	base := map[int]string{}
	sharedBase := cl.commit(cl.shared, cl.t0)
	for i := shared; i < objects; i++ {
		r := gh.Repo("acme", fmt.Sprintf("r-%05d", i))
		cl.repos[gname(i)] = r
		base[i] = cl.commit(r, cl.t0)
	}
	start := time.Now()
	parallel(t, objects, 16, func(i int) error {
		if i < shared {
			return cl.create(ctx, kname(i), gname(0), "shared", sharedBase)
		}
		return cl.create(ctx, kname(i), gname(i), fmt.Sprintf("r-%05d", i), base[i])
	})
	charts := gh.Repo("acme", "charts")
	chartsBase := cl.commit(charts, cl.t0)
	cl.fetch(t, chartsGitRepository, "charts", chartsBase, cl.t0)
	parallel(t, releases, 16, func(i int) error { return cl.createRelease(ctx, hname(i), chartsBase) })
	t.Logf("setup: %d Kustomizations, %d HelmReleases with their HelmCharts and %d GitRepositories created with their statuses in %s",
		objects, releases, objects-shared+2, time.Since(start).Round(time.Second))

	args := []string{"--kubeconfig", kubeconfig, "--namespace", cl.ns, "--watch-namespace", cl.ns,
		"--github-api-url", gh.URL, "--cluster-name", "scale", "--git-cache-dir", filepath.Join(dir, "git"), "--log-level", "info"}
	env0 := []string{"GITHUB_TOKEN=scale-token"}
	profiles := os.Getenv("SCALE_PROFILE_DIR") // heap profiles once baselined and after the push
	var pprofAddr string
	if profiles != "" {
		pprofAddr = harness.FreeAddrs(t, 1)[0]
		args = append(args, "--pprof-addr", pprofAddr)
	}
	heapProfile := func(name string) {
		t.Helper()
		if profiles != "" {
			saveHeapProfile(t, pprofAddr, filepath.Join(profiles, name))
		}
	}

	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	writesNow := func() apiWrites {
		t.Helper()
		w, err := configMapPatches(ctx, cs.Discovery().RESTClient())
		if err != nil {
			t.Fatal(err)
		}
		return w
	}

	// Startup: ready, then every object baselined, while /metrics is scraped.
	w0 := writesNow()
	start = time.Now()
	tr := harness.Start(t, binary, "tracker-1", args, env0)
	tr.WaitReady(5 * time.Minute)
	ready := time.Since(start)
	cl.waitBaselined(t, objects+releases, 10*time.Minute)
	baselined := time.Since(start)
	mem, series := peak(t, tr, 5)
	heapProfile("heap-baselined.pb.gz")
	repos := objects - shared + 2
	t.Logf("startup: ready after %s, %d objects baselined after %s with %d GitHub calls (exporter-info.json at the baseline, %d repositories), %s; %s, %d tracker series on /metrics (scraped every second)",
		ready.Round(100*time.Millisecond), objects, baselined.Round(time.Second), len(gh.Requests()), repos, writesNow().since(w0).per(objects), mem, series)
	if n := len(gh.Requests()); n > repos {
		t.Errorf("baseline made %d GitHub calls, want at most one per repository (%d)", n, repos)
	}

	// One push moving every object on the shared source.
	gh.ClearRequests()
	w0 = writesNow()
	head := cl.commit(cl.shared, cl.t0.Add(time.Minute))
	start = time.Now()
	parallel(t, shared, 16, func(i int) error { return cl.move(ctx, kname(i), head, cl.t0.Add(2*time.Minute)) })
	writes := time.Since(start)
	lines := waitRecorded(t, tr, shared, 5*time.Minute, func(a harness.Applied) bool { return a.Commit == head })
	lag := cl.lag(lines, head)
	pushWrites := writesNow().since(w0)
	mem, series = peak(t, tr, 3)
	heapProfile("heap-pushed.pb.gz")
	t.Logf("push: %d objects on one source moved (statuses written in %s): %d GitHub calls, %d samples, status write → sample p50 %s p99 %s; %s over %d touched shards; %s, %d series",
		shared, writes.Round(100*time.Millisecond), len(gh.Requests()), len(lines), percentile(lag, 0.5).Round(time.Millisecond),
		percentile(lag, 0.99).Round(time.Millisecond), pushWrites.per(shared), cl.touchedShards(t, shared), mem, series)
	if len(lines) != shared {
		t.Errorf("%d samples for %d objects, want exactly one each", len(lines), shared)
	}

	// One push to the chart source, released by every HelmRelease.
	if releases > 0 {
		gh.ClearRequests()
		chartsHead := cl.commit(charts, cl.t0.Add(time.Minute))
		cl.fetch(t, chartsGitRepository, "charts", chartsHead, cl.t0.Add(90*time.Second))
		start = time.Now()
		parallel(t, releases, 16, func(i int) error { return cl.release(ctx, hname(i), chartsHead, cl.t0.Add(2*time.Minute)) })
		writes := time.Since(start)
		lines := waitRecorded(t, tr, releases, 5*time.Minute, func(a harness.Applied) bool { return a.Commit == chartsHead })
		t.Logf("helm push: %d HelmReleases released the chart of one new commit (charts and releases written in %s): %d GitHub calls, %d samples, release write → sample p50 %s p99 %s",
			releases, writes.Round(100*time.Millisecond), len(gh.Requests()), len(lines), percentile(cl.lag(lines, chartsHead), 0.5).Round(time.Millisecond),
			percentile(cl.lag(lines, chartsHead), 0.99).Round(time.Millisecond))
		if len(lines) != releases {
			t.Errorf("%d samples for %d HelmReleases, want exactly one each", len(lines), releases)
		}
		if n := len(gh.Requests()); n > 2 {
			t.Errorf("%d GitHub calls for one commit released by %d HelmReleases, want at most 2", n, releases)
		}
	}

	// Restart with some objects moved while the tracker was down.
	tr.Kill()
	gh.ClearRequests()
	heads := map[string]string{}
	for i := shared; i < shared+moved; i++ {
		heads[kname(i)] = cl.commit(cl.repos[gname(i)], cl.t0.Add(time.Minute))
	}
	parallel(t, moved, 16, func(j int) error {
		name := kname(shared + j)
		return cl.move(ctx, name, heads[name], cl.t0.Add(2*time.Minute))
	})
	start = time.Now()
	w0 = writesNow()
	tr2 := harness.Start(t, binary, "tracker-2", args, env0)
	waitRecorded(t, tr2, moved, 10*time.Minute, func(a harness.Applied) bool { return heads[a.Name] == a.Commit })
	catchUp := time.Since(start)
	restartWrites := writesNow().since(w0)
	unchangedCalls := 0
	for _, r := range gh.Requests() {
		if !movedRepo(r.Path, shared, shared+moved) {
			unchangedCalls++
		}
	}
	t.Logf("restart: %d of %d objects moved while down, all recorded %s after the start; %d GitHub calls, %d of them for unchanged objects; %s moved",
		moved, objects, catchUp.Round(100*time.Millisecond), len(gh.Requests()), unchangedCalls, restartWrites.per(moved))
	if unchangedCalls != 0 {
		t.Errorf("%d GitHub calls for objects that did not move, want 0", unchangedCalls)
	}

	// Churn: every second, churnRate objects are created, the previous second's are moved, and the ones before
	// are deleted.
	mem0, series0 := peak(t, tr2, 2)
	var batches [][]string
	maxSeries, maxHeap := series0, mem0.heap
	gh.ClearRequests()
	start = time.Now()
	churned := 0
	for sec := 0; time.Since(start) < churnFor; sec++ {
		tick := time.Now()
		batch := make([]string, churnRate)
		for j := range batch {
			batch[j] = fmt.Sprintf("churn-%06d", churned+j)
		}
		churned += churnRate
		at := cl.t0.Add(time.Duration(3+sec) * time.Minute)
		parallel(t, len(batch), 8, func(j int) error { return cl.create(ctx, batch[j], gname(0), "shared", head) })
		if len(batches) >= 1 {
			next := cl.commit(cl.shared, at)
			prev := batches[len(batches)-1]
			parallel(t, len(prev), 8, func(j int) error { return cl.move(ctx, prev[j], next, at) })
		}
		if len(batches) >= 2 {
			old := batches[len(batches)-2]
			parallel(t, len(old), 8, func(j int) error {
				return client.IgnoreNotFound(c.Delete(ctx, &kustomizev1.Kustomization{ObjectMeta: metav1.ObjectMeta{Namespace: cl.ns, Name: old[j]}}))
			})
		}
		batches = append(batches, batch)
		if sec%10 == 0 {
			m, s, err := sample(ctx, tr2)
			if err == nil {
				maxSeries, maxHeap = max(maxSeries, s), max(maxHeap, m.heap)
			}
		}
		time.Sleep(time.Until(tick.Add(time.Second)))
	}
	churnTook := time.Since(start)
	time.Sleep(10 * time.Second) // the tracker forgets what was deleted
	mem1, series1 := peak(t, tr2, 2)
	t.Logf("churn: %d objects created, moved and deleted in %s (%.0f/s asked): tracker series %d before, at most %d during, %d after; before: %s; at most %s heap in use during; after: %s",
		churned, churnTook.Round(time.Second), float64(churnRate), series0, maxSeries, series1, mem0, mib(maxHeap), mem1)

	// Exactly once across both processes.
	seen := map[string]int{}
	for _, p := range []*harness.Tracker{tr, tr2} {
		lines, err := p.Recorded()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range lines {
			seen[l.Name+"/"+l.Commit]++
		}
	}
	twice := 0
	for _, n := range seen {
		if n > 1 {
			twice++
		}
	}
	t.Logf("exactly once: %d (object, commit) pairs recorded, %d of them more than once", len(seen), twice)
	if twice != 0 {
		t.Errorf("%d (object, commit) pairs recorded more than once, want 0", twice)
	}
}

// movedRepo reports whether a GitHub API path is about one of the repositories r-from … r-(to-1).
func movedRepo(path string, from, to int) bool {
	number, ok := strings.CutPrefix(path, "/repos/acme/r-")
	if !ok || len(number) < 5 {
		return false
	}
	n, err := strconv.Atoi(number[:5])
	return err == nil && n >= from && n < to
}

package deploy_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits/github/githubtest"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/ledger"
	"github.com/flux-commit-tracker/flux-commit-tracker/test/apptest"
	"github.com/flux-commit-tracker/flux-commit-tracker/test/fluxstatus"
	"github.com/flux-commit-tracker/flux-commit-tracker/test/testenv"
)

const (
	recordedTotal = "flux_commit_tracker_commits_recorded_total"
	leaderStatus  = "leader_election_master_status"
	// githubToken is the value of the Secret the Deployment reads GITHUB_TOKEN from.
	githubToken = "deploy-test-token"
)

// cluster is an apiserver holding the shipped ServiceAccount and RBAC, and the built binary, shared by the tests.
type cluster struct {
	env       *testenv.Env
	manifests *manifests
	namespace string
	// token authenticates as the shipped ServiceAccount.
	token string
	// work holds the binary and the replicas' folders; it is readable by the container's user.
	work string
	bin  string
	// uid and gid run the replicas when the tests run as root, as the image does.
	uid, gid int
}

var (
	clusterOnce sync.Once
	shared      *cluster
	sharedErr   error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		if err := shared.env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop envtest:", err)
		}
		_ = os.RemoveAll(shared.work)
	}
	os.Exit(code)
}

// getCluster starts the apiserver, applies the shipped ServiceAccount and RBAC and builds the binary, once.
func getCluster(t *testing.T) *cluster {
	t.Helper()
	clusterOnce.Do(func() { shared, sharedErr = startCluster(render(t)) })
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return shared
}

func startCluster(m *manifests) (*cluster, error) {
	c := &cluster{manifests: m, namespace: m.deployment.Namespace}
	if c.namespace == "" {
		return nil, errors.New("the rendered Deployment has no namespace")
	}
	uid, gid, err := imageUser("../../Dockerfile")
	if err != nil {
		return nil, err
	}
	c.uid, c.gid = uid, gid
	if c.work, err = os.MkdirTemp("", "deploy-test-"); err != nil {
		return nil, fmt.Errorf("work folder: %w", err)
	}
	if err := os.Chmod(c.work, 0o755); err != nil {
		return nil, fmt.Errorf("work folder: %w", err)
	}
	// Build while the apiserver starts.
	built := make(chan error, 1)
	c.bin = filepath.Join(c.work, "flux-commit-tracker")
	go func() {
		args := []string{"build", "-o", c.bin}
		if raceEnabled {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, "./cmd/flux-commit-tracker")...)
		cmd.Dir = "../.."
		if out, err := cmd.CombinedOutput(); err != nil {
			built <- fmt.Errorf("go build ./cmd/flux-commit-tracker: %w\n%s", err, out)
			return
		}
		built <- nil
	}()
	env, err := testenv.Start()
	if err != nil {
		return nil, errors.Join(err, <-built)
	}
	c.env = env
	if err := c.apply(context.Background()); err != nil {
		return c, errors.Join(err, <-built)
	}
	return c, <-built
}

// apply creates the Deployment's namespace (Flux's own, not shipped), everything shipped but the Deployment,
// the Secrets the Deployment reads, and a token for its ServiceAccount.
func (c *cluster) apply(ctx context.Context) error {
	cl := c.env.Client
	if err := cl.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: c.namespace}}); err != nil {
		return fmt.Errorf("create namespace %s: %w", c.namespace, err)
	}
	for _, o := range c.manifests.objects {
		if _, ok := o.(*appsv1.Deployment); ok {
			continue
		}
		if err := cl.Create(ctx, o.DeepCopyObject().(client.Object)); err != nil {
			return fmt.Errorf("apply %s %s: %w", o.GetObjectKind().GroupVersionKind().Kind, o.GetName(), err)
		}
	}
	for _, e := range c.manifests.deployment.Spec.Template.Spec.Containers[0].Env {
		if ref := e.ValueFrom; ref != nil && ref.SecretKeyRef != nil {
			s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: c.namespace, Name: ref.SecretKeyRef.Name},
				StringData: map[string]string{ref.SecretKeyRef.Key: githubToken}}
			if err := cl.Create(ctx, s); err != nil && !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("create Secret %s: %w", s.Name, err)
			}
		}
	}
	cs, err := kubernetes.NewForConfig(c.env.Config)
	if err != nil {
		return fmt.Errorf("clientset: %w", err)
	}
	sa := c.manifests.deployment.Spec.Template.Spec.ServiceAccountName
	tr, err := cs.CoreV1().ServiceAccounts(c.namespace).CreateToken(ctx, sa,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("token for ServiceAccount %s/%s: %w", c.namespace, sa, err)
	}
	c.token = tr.Status.Token
	return nil
}

// saConfig is a client config that authenticates as the shipped ServiceAccount.
func (c *cluster) saConfig() *rest.Config {
	return &rest.Config{Host: c.env.Config.Host, BearerToken: c.token,
		TLSClientConfig: rest.TLSClientConfig{CAData: c.env.Config.CAData}}
}

// imageUser is the numeric USER of the image's final stage.
func imageUser(dockerfile string) (uid, gid int, err error) {
	f, err := os.Open(dockerfile)
	if err != nil {
		return 0, 0, fmt.Errorf("read Dockerfile: %w", err)
	}
	defer func() { _ = f.Close() }()
	user := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		switch {
		case len(fields) >= 1 && strings.EqualFold(fields[0], "FROM"):
			user = ""
		case len(fields) == 2 && strings.EqualFold(fields[0], "USER"):
			user = fields[1]
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, fmt.Errorf("read Dockerfile: %w", err)
	}
	u, g, _ := strings.Cut(user, ":")
	if g == "" {
		g = u
	}
	uid, uerr := strconv.Atoi(u)
	gid, gerr := strconv.Atoi(g)
	if uerr != nil || gerr != nil || uid == 0 {
		return 0, 0, fmt.Errorf("the image's final stage has no numeric non-root USER (got %q)", user)
	}
	return uid, gid, nil
}

// replica is the binary run as one pod of the Deployment would run it.
type replica struct {
	name        string
	out         *apptest.Output
	cmd         *exec.Cmd
	done        chan struct{}
	metricsAddr string
	healthAddr  string
	// cacheDir stands for the git-cache emptyDir.
	cacheDir string
	once     sync.Once
}

// startReplica runs the binary with the container's args and env. Only the in-cluster bits are replaced: a
// kubeconfig with the ServiceAccount's token instead of the mounted one, loopback ports, the fake GitHub, a
// local collector, and a folder for each emptyDir. HOME and TMPDIR are read-only, like the
// container's root filesystem, and the process runs as the image's user when the test runs as root.
func (c *cluster) startReplica(t *testing.T, podName, githubURL string) *replica {
	t.Helper()
	r := c.spawn(t, podName, githubURL)
	r.waitReady(t)
	return r
}

// spawn starts the replica's process without waiting for it.
func (c *cluster) spawn(t *testing.T, podName, githubURL string) *replica {
	t.Helper()
	ctx := context.Background()
	ctr := c.manifests.container(t)
	dir, err := os.MkdirTemp(c.work, podName+"-")
	if err == nil {
		err = os.Chmod(dir, 0o755) // the container's user reaches its volumes and kubeconfig through it
	}
	if err != nil {
		t.Fatal(err)
	}
	r := &replica{name: podName, out: apptest.NewOutput(1 << 12), done: make(chan struct{}),
		metricsAddr: apptest.FreeAddr(t), healthAddr: apptest.FreeAddr(t)}

	// Each emptyDir mount is a fresh folder the container's user owns.
	mounts := map[string]string{}
	for _, m := range ctr.VolumeMounts {
		v, ok := volumeNamed(c.manifests.deployment, m.Name)
		if !ok || v.EmptyDir == nil {
			t.Fatalf("volume mount %s: only emptyDir volumes can stand in a test", m.MountPath)
		}
		host := filepath.Join(dir, "volume-"+m.Name)
		c.mkdir(t, host, 0o700, true)
		mounts[m.MountPath] = host
	}
	readOnly := filepath.Join(dir, "read-only")
	c.mkdir(t, readOnly, 0o555, false)
	kubeconfig := filepath.Join(dir, "kubeconfig")
	c.writeKubeconfig(t, kubeconfig)

	env := map[string]string{}
	for _, e := range ctr.Env {
		v, ok := c.resolveEnv(ctx, t, podName, e)
		if ok {
			env[e.Name] = v
		}
	}
	if len(ctr.EnvFrom) > 0 {
		t.Fatal("envFrom is not resolved by this test: add it")
	}
	for k, v := range env {
		env[k] = onHost(v, mounts)
	}
	if d, ok := env["GIT_CACHE_DIR"]; ok {
		r.cacheDir = d
	}
	if _, ok := env["TELEMETRY_ENDPOINT"]; ok {
		env["TELEMETRY_ENDPOINT"] = startCollector(t)
	}
	env["KUBECONFIG"] = kubeconfig
	env["METRICS_ADDR"] = r.metricsAddr
	env["HEALTH_ADDR"] = r.healthAddr
	env["GITHUB_API_URL"] = githubURL
	env["HOME"] = readOnly
	env["TMPDIR"] = readOnly
	env["PATH"] = "/usr/bin:/bin"
	var environ []string
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	args := make([]string, len(ctr.Args))
	for i, a := range ctr.Args {
		args[i] = onHost(a, mounts)
	}
	if len(ctr.Command) > 0 {
		t.Fatalf("container command %q overrides the image's entrypoint: not supported here", ctr.Command)
	}

	r.cmd = exec.Command(c.bin, args...)
	r.cmd.Env = environ
	r.cmd.Dir = readOnly
	r.cmd.Stdout, r.cmd.Stderr = r.out, r.out
	if os.Geteuid() == 0 {
		r.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(c.uid), Gid: uint32(c.gid)}}
	}
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", podName, err)
	}
	go func() { _ = r.cmd.Wait(); close(r.done) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// waitReady waits until the replica's /readyz and /metrics answer 200.
func (r *replica) waitReady(t *testing.T) {
	t.Helper()
	apptest.Eventually(t, 60*time.Second, r.name+" ready", func() bool {
		select {
		case <-r.done:
			r.once.Do(func() {}) // reported here, not again at stop
			t.Fatalf("%s exited with %d before it was ready:\n%s", r.name, r.cmd.ProcessState.ExitCode(), r.out)
		default:
		}
		for _, url := range []string{"http://" + r.healthAddr + "/readyz", "http://" + r.metricsAddr + "/metrics"} {
			resp, err := http.Get(url)
			if err != nil {
				return false
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return false
			}
		}
		return true
	})
}

// stop ends the replica as the kubelet does, with SIGTERM, and expects a clean exit.
func (r *replica) stop(t *testing.T) {
	r.once.Do(func() {
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.done:
			if code := r.cmd.ProcessState.ExitCode(); code != 0 {
				t.Errorf("%s exited with %d after SIGTERM:\n%s", r.name, code, r.out)
			}
		case <-time.After(30 * time.Second):
			_ = r.cmd.Process.Kill()
			<-r.done
			t.Errorf("%s did not stop within 30s of SIGTERM", r.name)
		}
	})
}

// metric sums the replica's series named name whose line holds every fragment.
func (r *replica) metric(t *testing.T, name string, fragments ...string) float64 {
	t.Helper()
	v, err := apptest.Scrape("http://"+r.metricsAddr+"/metrics", name, fragments...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// mkdir makes a folder; owned gives it to the container's user when the test runs as root.
func (c *cluster) mkdir(t *testing.T, path string, mode os.FileMode, owned bool) {
	t.Helper()
	if err := os.MkdirAll(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if owned && os.Geteuid() == 0 {
		if err := os.Chown(path, c.uid, c.gid); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// writeKubeconfig writes what the in-cluster config would read: the apiserver, its CA and the token.
func (c *cluster) writeKubeconfig(t *testing.T, path string) {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["cluster"] = &clientcmdapi.Cluster{Server: c.env.Config.Host, CertificateAuthorityData: c.env.Config.CAData}
	kc.AuthInfos["sa"] = &clientcmdapi.AuthInfo{Token: c.token}
	kc.Contexts["sa"] = &clientcmdapi.Context{Cluster: "cluster", AuthInfo: "sa"}
	kc.CurrentContext = "sa"
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		if err := os.Chown(path, c.uid, c.gid); err != nil {
			t.Fatal(err)
		}
	}
}

// resolveEnv gives an environment variable the value the kubelet would; ok is false for a missing optional one.
func (c *cluster) resolveEnv(ctx context.Context, t *testing.T, podName string, e corev1.EnvVar) (string, bool) {
	t.Helper()
	from := e.ValueFrom
	switch {
	case from == nil:
		if strings.Contains(e.Value, "$(") {
			t.Fatalf("env %s: $(VAR) references are not expanded by this test", e.Name)
		}
		return e.Value, true
	case from.FieldRef != nil:
		switch from.FieldRef.FieldPath {
		case "metadata.namespace":
			return c.namespace, true
		case "metadata.name":
			return podName, true
		}
		t.Fatalf("env %s: fieldRef %s is not resolved by this test", e.Name, from.FieldRef.FieldPath)
	case from.ResourceFieldRef != nil && from.ResourceFieldRef.Resource == "limits.memory":
		// As the kubelet does: the container's limit in units of the divisor (bytes by default).
		limit := c.manifests.deployment.Spec.Template.Spec.Containers[0].Resources.Limits.Memory()
		divisor := int64(1)
		if d := from.ResourceFieldRef.Divisor; !d.IsZero() {
			divisor = d.Value()
		}
		if limit.IsZero() {
			t.Fatalf("env %s: limits.memory is not set", e.Name)
		}
		return strconv.FormatInt((limit.Value()+divisor-1)/divisor, 10), true
	case from.SecretKeyRef != nil:
		ref := from.SecretKeyRef
		var s corev1.Secret
		err := c.env.Client.Get(ctx, client.ObjectKey{Namespace: c.namespace, Name: ref.Name}, &s)
		if apierrors.IsNotFound(err) && ptr.Deref(ref.Optional, false) {
			return "", false
		}
		if err != nil {
			t.Fatalf("env %s: Secret %s: %v", e.Name, ref.Name, err)
		}
		v, ok := s.Data[ref.Key]
		if !ok && !ptr.Deref(ref.Optional, false) {
			t.Fatalf("env %s: Secret %s has no key %s", e.Name, ref.Name, ref.Key)
		}
		return string(v), ok
	}
	t.Fatalf("env %s: this kind of valueFrom is not resolved by this test", e.Name)
	return "", false
}

// onHost maps a path inside the container to the folder standing for its volume.
func onHost(v string, mounts map[string]string) string {
	for mountPath, host := range mounts {
		if v == mountPath {
			return host
		}
		if relative, ok := strings.CutPrefix(v, mountPath+"/"); ok {
			return filepath.Join(host, relative)
		}
	}
	return v
}

// flux is a GitRepository on the fake GitHub and a Kustomization applying it, in their own namespace.
type flux struct {
	t    *testing.T
	c    *cluster
	ns   string
	gh   *githubtest.Server
	repo *githubtest.Repo
	t0   time.Time
}

func newFlux(t *testing.T, c *cluster, ns string) *flux {
	t.Helper()
	ctx := context.Background()
	gh := githubtest.NewServer()
	t.Cleanup(gh.Close)
	gh.RequireToken(githubToken)
	f := &flux{t: t, c: c, ns: ns, gh: gh, repo: gh.Repo("acme", "manifests"), t0: time.Now().Add(-time.Hour).Truncate(time.Second).UTC()}
	if err := c.env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	gr := &sourcev1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "manifests"},
		Spec: sourcev1.GitRepositorySpec{URL: "https://github.com/acme/manifests.git", Interval: metav1.Duration{Duration: time.Minute},
			Reference: &sourcev1.GitRepositoryRef{Branch: "main"}},
	}
	if err := c.env.Client.Create(ctx, gr); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *flux) at(sec int) time.Time { return f.t0.Add(time.Duration(sec) * time.Second) }

// commit adds a commit on main committed at t0+sec.
func (f *flux) commit(sec int) string {
	return f.repo.Commit(githubtest.CommitSpec{CommitterTime: f.at(sec), Files: map[string]string{"app.yaml": strconv.Itoa(sec)}})
}

// createKustomization creates the Kustomization "app", already applied at sha.
func (f *flux) createKustomization(sha string, appliedSec int) {
	f.t.Helper()
	k := &kustomizev1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "app"},
		Spec: kustomizev1.KustomizationSpec{Interval: metav1.Duration{Duration: time.Minute}, Path: "./", Prune: true,
			SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.GitRepositoryKind, Name: "manifests"}},
	}
	if err := f.c.env.Client.Create(context.Background(), k); err != nil {
		f.t.Fatal(err)
	}
	f.apply(sha, appliedSec)
}

// apply writes, through the status subresource, the status kustomize-controller writes after applying sha.
func (f *flux) apply(sha string, sec int) {
	f.t.Helper()
	ctx := context.Background()
	var k kustomizev1.Kustomization
	if err := f.c.env.Client.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: "app"}, &k); err != nil {
		f.t.Fatal(err)
	}
	fluxstatus.Applied(&k, fluxstatus.Revision(sha), f.at(sec))
	if err := f.c.env.Client.Status().Update(ctx, &k); err != nil {
		f.t.Fatal(err)
	}
}

// ledgerRevision is the revision the ledger holds for the Kustomization, read as an administrator.
func (f *flux) ledgerRevision() string {
	f.t.Helper()
	var cms corev1.ConfigMapList
	if err := f.c.env.Client.List(context.Background(), &cms, client.InNamespace(f.c.namespace), client.MatchingLabels{ledger.LabelKey: "v1"}); err != nil {
		f.t.Fatal(err)
	}
	for _, cm := range cms.Items {
		for _, raw := range cm.Data {
			var e ledger.Entry
			if json.Unmarshal([]byte(raw), &e) == nil && e.Namespace == f.ns && e.Name == "app" {
				return e.Revision
			}
		}
	}
	return ""
}

// appliedIn is the commits the replicas logged as applied for this namespace, with how often each was.
func (f *flux) appliedIn(rs ...*replica) map[string]int {
	got := map[string]int{}
	for _, r := range rs {
		for _, c := range r.out.Applied() {
			if c.Namespace == f.ns {
				got[c.Commit]++
			}
		}
	}
	return got
}

// TestShippedManifestsRecordACommit runs the binary with the Deployment's args and env, as its ServiceAccount,
// with a read-only HOME: it becomes ready and records a commit.
func TestShippedManifestsRecordACommit(t *testing.T) {
	c := getCluster(t)
	f := newFlux(t, c, "apps-one")
	c0 := f.commit(0)
	f.createKustomization(c0, 10)

	r := c.startReplica(t, "flux-commit-tracker-0", f.gh.URL)
	if r.cacheDir == "" || !strings.HasPrefix(r.cacheDir, c.work) {
		t.Errorf("the git cache dir %q is not on the emptyDir standing in for the volume", r.cacheDir)
	}
	if !strings.Contains(r.out.String(), `"git_cache_dir":"`+r.cacheDir+`"`) {
		t.Errorf("the tracker does not use GIT_CACHE_DIR %s as its git cache:\n%s", r.cacheDir, r.out)
	}
	apptest.Eventually(t, 20*time.Second, "baseline in the ledger", func() bool { return f.ledgerRevision() == "main@sha1:"+c0 })
	c1 := f.commit(100)
	f.apply(c1, 142)
	apptest.Eventually(t, 20*time.Second, "commit recorded", func() bool { return len(f.appliedIn(r)) > 0 })
	if got := f.appliedIn(r); len(got) != 1 || got[c1] != 1 {
		t.Errorf("recorded %v, want c1 %s once", got, c1)
	}
	if got := r.metric(t, recordedTotal, `flux_name="app"`); got != 1 {
		t.Errorf("%s = %v, want 1", recordedTotal, got)
	}
	// GOMEMLIMIT from the container's memory limit reaches the Go runtime.
	limit := c.manifests.deployment.Spec.Template.Spec.Containers[0].Resources.Limits.Memory().Value()
	if got := r.metric(t, "go_gc_gomemlimit_bytes"); got != float64(limit) {
		t.Errorf("go_gc_gomemlimit_bytes = %v, want the memory limit %d", got, limit)
	}
	if got := f.ledgerRevision(); got != "main@sha1:"+c1 {
		t.Errorf("ledger revision = %q, want c1", got)
	}
	r.stop(t)
}

// TestTwoReplicasRecordOnce runs the Deployment's two replicas: only the elected one records, the other stands
// by, and when the leader stops the other takes over without recording anything twice.
func TestTwoReplicasRecordOnce(t *testing.T) {
	c := getCluster(t)
	f := newFlux(t, c, "apps-two")
	c0 := f.commit(0)
	f.createKustomization(c0, 10)

	// Both start at once and race for the Lease.
	replicas := []*replica{c.spawn(t, "flux-commit-tracker-0", f.gh.URL), c.spawn(t, "flux-commit-tracker-1", f.gh.URL)}
	for _, r := range replicas {
		r.waitReady(t)
	}
	leading := func(r *replica) bool { return r.metric(t, leaderStatus, `name="flux-commit-tracker"`) == 1 }
	apptest.Eventually(t, 30*time.Second, "a leader", func() bool { return leading(replicas[0]) || leading(replicas[1]) })
	leader, standby := replicas[0], replicas[1]
	if !leading(leader) {
		leader, standby = standby, leader
	}
	if leading(standby) {
		t.Fatal("both replicas lead")
	}
	apptest.Eventually(t, 20*time.Second, "baseline in the ledger", func() bool { return f.ledgerRevision() == "main@sha1:"+c0 })

	c1, c2, c3 := f.commit(100), f.commit(110), f.commit(120)
	f.apply(c3, 150)
	c4 := f.commit(200)
	apptest.Eventually(t, 20*time.Second, "three commits recorded", func() bool { return len(f.appliedIn(replicas...)) == 3 })
	f.apply(c4, 230)
	apptest.Eventually(t, 20*time.Second, "four commits recorded", func() bool { return len(f.appliedIn(replicas...)) == 4 })
	want := map[string]int{c1: 1, c2: 1, c3: 1, c4: 1}
	if got := f.appliedIn(replicas...); !maps.Equal(got, want) {
		t.Errorf("recorded %v, want each of %v once", got, want)
	}
	sum := leader.metric(t, recordedTotal, `flux_name="app"`) + standby.metric(t, recordedTotal, `flux_name="app"`)
	if sum != 4 {
		t.Errorf("%s summed over both replicas = %v, want 4", recordedTotal, sum)
	}
	if got := standby.metric(t, recordedTotal, `flux_name="app"`); got != 0 {
		t.Errorf("standby recorded %v commits, want 0", got)
	}
	if got, err := apptest.Scrape("http://"+standby.metricsAddr+"/metrics", leaderStatus, `name="flux-commit-tracker"`); err != nil || got != 0 {
		t.Errorf("standby %s = %v (%v), want 0", leaderStatus, got, err)
	}

	// The leader stops as in a rollout; the standby takes the Lease, loads the ledger and records only what is new.
	leader.stop(t)
	apptest.Eventually(t, 30*time.Second, "the standby leads", func() bool { return leading(standby) })
	c5 := f.commit(300)
	f.apply(c5, 320)
	apptest.Eventually(t, 20*time.Second, "the fifth commit recorded", func() bool { return len(f.appliedIn(replicas...)) == 5 })
	want[c5] = 1
	if got := f.appliedIn(replicas...); !maps.Equal(got, want) {
		t.Errorf("after failover recorded %v, want each of %v once", got, want)
	}
	if got := standby.metric(t, recordedTotal, `flux_name="app"`); got != 1 {
		t.Errorf("new leader recorded %v commits, want 1 (c5)", got)
	}
}

// TestRoleDeniesOtherConfigMapsAndLeases: as the shipped ServiceAccount, the ledger shards and the Lease are
// reachable, other ConfigMaps and Leases in the namespace are not.
func TestRoleDeniesOtherConfigMapsAndLeases(t *testing.T) {
	c := getCluster(t)
	ctx := context.Background()
	admin := c.env.Client
	other := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: c.namespace, Name: "cluster-vars"}, Data: map[string]string{"domain": "example.com"}}
	if err := admin.Create(ctx, other); err != nil {
		t.Fatal(err)
	}
	otherLease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: c.namespace, Name: "another-controller"}}
	if err := admin.Create(ctx, otherLease); err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(c.saConfig())
	if err != nil {
		t.Fatal(err)
	}
	cms, leases := cs.CoreV1().ConfigMaps(c.namespace), cs.CoordinationV1().Leases(c.namespace)
	// RBAC is served from a cache: wait until the ServiceAccount's grants are in effect.
	apptest.Eventually(t, 10*time.Second, "the Role in effect", func() bool {
		_, err := cms.Get(ctx, shardNames()[0], metav1.GetOptions{})
		return err == nil || apierrors.IsNotFound(err)
	})
	for _, name := range shardNames() {
		if _, err := cms.Get(ctx, name, metav1.GetOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("get ledger shard %s: %v", name, err)
		}
	}
	if _, err := leases.Get(ctx, leaseName, metav1.GetOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("get Lease %s: %v", leaseName, err)
	}
	if _, err := cms.Get(ctx, other.Name, metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("get ConfigMap %s: err = %v, want forbidden", other.Name, err)
	}
	changed := other.DeepCopy()
	changed.Data["domain"] = "attacker.example"
	if _, err := cms.Update(ctx, changed, metav1.UpdateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("update ConfigMap %s: err = %v, want forbidden", other.Name, err)
	}
	patch := []byte(`{"data":{"domain":"attacker.example"}}`)
	if _, err := cms.Patch(ctx, other.Name, types.MergePatchType, patch, metav1.PatchOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("patch ConfigMap %s: err = %v, want forbidden", other.Name, err)
	}
	if _, err := leases.Get(ctx, otherLease.Name, metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("get Lease %s: err = %v, want forbidden", otherLease.Name, err)
	}
	if _, err := leases.Update(ctx, otherLease, metav1.UpdateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("update Lease %s: err = %v, want forbidden", otherLease.Name, err)
	}
	if _, err := cms.List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("list ConfigMaps: err = %v, want forbidden", err)
	}
	if err := cms.Delete(ctx, other.Name, metav1.DeleteOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("delete ConfigMap %s: err = %v, want forbidden", other.Name, err)
	}
}

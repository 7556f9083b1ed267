package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/restmapper"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/flux"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/forge"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/latency"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/ledger"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/locate"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/redact"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/revision"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/tracker"
)

// TraceNotFound is trace's exit code for an object that does not exist or that Flux does not manage.
const TraceNotFound = 3

// Labels kustomize-controller and helm-controller put on every object they apply.
var (
	labelKustomizationName      = kustomizev1.GroupVersion.Group + "/name"
	labelKustomizationNamespace = kustomizev1.GroupVersion.Group + "/namespace"
	labelHelmReleaseName        = helmv2.GroupVersion.Group + "/name"
	labelHelmReleaseNamespace   = helmv2.GroupVersion.Group + "/namespace"
)

// Trace is the answer of trace, as -o json and -o yaml print it: the object, the Flux object that applies it,
// that object's source, and the commit of its applied revision.
type Trace struct {
	Context string      `json:"context"`
	Object  TraceObject `json:"object"`
	// Flux is the Kustomization or HelmRelease that applies Object (Object itself when it is one).
	Flux   TraceFlux   `json:"flux"`
	Source TraceSource `json:"source"`
	// Revision is the revision Flux applied; empty when it applied none yet.
	Revision string `json:"revision,omitempty"`
	// Commit is the commit that last changed Flux.Path at or before Revision when LastChange is true, else
	// Revision's own commit (the provider keeps no history of paths, or none of the path's commits was found).
	Commit     *locate.Commit `json:"commit,omitempty"`
	LastChange bool           `json:"last_change,omitempty"`
	// Applied is when Commit was first applied in the run of applies that still holds it: exact (AppliedExact)
	// from the tracker's record of applies, else at or before it (Flux's Ready transition of Revision, or the
	// oldest apply the tracker kept). LatencySeconds is commit → applied, when exact.
	Applied        *time.Time `json:"applied,omitempty"`
	AppliedExact   bool       `json:"applied_exact,omitempty"`
	LatencySeconds *float64   `json:"latency_seconds,omitempty"`
	// TreeURL browses Flux's path on the branch, CommitURL the commit, on the repository's forge; empty when the
	// forge is not known.
	TreeURL   string `json:"tree_url,omitempty"`
	CommitURL string `json:"commit_url,omitempty"`
	// Error is why the trace stops short; the fields before the failed step are filled.
	Error string `json:"error,omitempty"`
}

// TraceObject is the object traced.
type TraceObject struct {
	APIVersion string `json:"api_version"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
}

// TraceFlux is the Flux object that applies the traced object.
type TraceFlux struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Path is a Kustomization's spec.path or a HelmRelease's chart path, in the repository.
	Path string `json:"path,omitempty"`
	// Message is Flux's Ready message.
	Message string `json:"message,omitempty"`
}

// TraceSource is the Flux source of the commits.
type TraceSource struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	URL       string `json:"url,omitempty"`
	Branch    string `json:"branch,omitempty"`
	// Revision is the source's latest fetched revision, which the Flux object applies next.
	Revision string `json:"revision,omitempty"`
}

func newTraceCommand(deps Deps) *cobra.Command {
	return newQueryCommand(deps, &cobra.Command{
		Use:   "trace <kind>/<name>",
		Short: "Show which Flux object applied an object, from which source, and the commit it came from",
		Long: `trace reads the object <kind>/<name> (any kind the cluster serves: configmap/app, deployment.apps/web,
kustomization/apps) in the namespace of -n, finds the Kustomization or HelmRelease that applied it from the
labels Flux sets (a Kustomization or HelmRelease traces itself), and follows it to its source, its applied
revision and the commit that last changed its path at that revision (the revision's own commit where the path
has no history): SHA, subject, author, committed time, when it was applied (exact from the tracker's ledger,
else "at or before"), commit → applied, and links to the applied path and to the commit on GitHub, GitLab, Gitea/Forgejo or Bitbucket (by host, or by the
flux-commit-tracker.io/forge annotation on the source or the Flux object).

Exit codes: 0 traced, 1 a step failed (what was traced is printed), 2 bad usage or unknown kind, 3 the object
does not exist or Flux does not manage it.`,
		Example: `  flux-commit-tracker trace configmap/app-config -n apps
  kubectl flux-commit-tracker trace deployment.apps/web --context prod-eu -o json`,
		Args: cobra.ExactArgs(1),
	}, ExitUsage, func(cmd *cobra.Command, o QueryOptions, args []string) error {
		gr, name, err := parseObjectArg(args[0])
		if err != nil {
			return usageError{err}
		}
		if o.AllNamespaces || o.Selector != "" || o.AllContexts || len(o.Contexts) > 1 {
			return usageError{errors.New("trace reads one object: -A, -l, --all-contexts and several --context do not apply")}
		}
		clusters, err := o.clusters()
		if err != nil {
			return err
		}
		c := clusters[0]
		if c.err != nil {
			return redact.Error(c.err)
		}
		ctx := cmd.Context()
		t, d, err := traceToFlux(ctx, o, c, gr, name)
		if err != nil {
			return err
		}
		if t.Error == "" && t.Revision != "" {
			if err := traceCommit(ctx, o, deps.Stderr, c, &t, d); err != nil {
				t.Error = redact.Error(err).Error()
			}
		}
		if err := printTrace(deps.Stdout, o.Output, t); err != nil {
			return err
		}
		if t.Error != "" {
			return errors.New(t.Error)
		}
		return nil
	})
}

// parseObjectArg splits kind[.group]/name.
func parseObjectArg(arg string) (schema.GroupResource, string, error) {
	kind, name, ok := strings.Cut(arg, "/")
	if !ok || kind == "" || name == "" || strings.Contains(name, "/") {
		return schema.GroupResource{}, "", fmt.Errorf("invalid object %q: want <kind>/<name>, e.g. configmap/app-config", arg)
	}
	return schema.ParseGroupResource(strings.ToLower(kind)), name, nil
}

// traceToFlux reads the object and the Flux object that applies it, with its source; a step that fails after the
// object was found is the Trace's Error.
func traceToFlux(ctx context.Context, o QueryOptions, c cluster, gr schema.GroupResource, name string) (Trace, flux.Deployment, error) {
	t := Trace{Context: c.context}
	cl, ok := c.reader.(client.Client)
	if !ok {
		return t, flux.Deployment{}, errors.New("the cluster client has no REST mapper")
	}
	mapper := cl.RESTMapper()
	if c.config != nil {
		// Short names (cm, deploy, ks, hr) as the cluster's discovery lists them.
		if dc, err := discovery.NewDiscoveryClientForConfig(c.config); err == nil {
			mapper = restmapper.NewShortcutExpander(mapper, memory.NewMemCacheClient(dc), func(string) {})
		}
	}
	gvk, err := mapper.KindFor(gr.WithVersion(""))
	if err != nil {
		if apimeta.IsNoMatchError(err) {
			return t, flux.Deployment{}, usageError{fmt.Errorf("unknown kind %q: the cluster serves no such resource", gr.String())}
		}
		if apimeta.IsAmbiguousError(err) {
			return t, flux.Deployment{}, usageError{fmt.Errorf("kind %q: %w; name its group, as <kind>.<group>/<name>", gr.String(), err)}
		}
		return t, flux.Deployment{}, redact.Error(fmt.Errorf("discover kind %q: %w", gr.String(), err))
	}
	mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return t, flux.Deployment{}, redact.Error(fmt.Errorf("discover kind %s: %w", gvk.Kind, err))
	}
	ns := o.Namespace
	if ns == "" {
		ns = c.namespace
	}
	if mapping.Scope.Name() != apimeta.RESTScopeNameNamespace {
		ns = ""
	}
	t.Object = TraceObject{APIVersion: gvk.GroupVersion().String(), Kind: gvk.Kind, Namespace: ns, Name: name}
	obj := &unstructured.Unstructured{}
	obj.SetGroupVersionKind(gvk)
	if err := get(ctx, o, cl, client.ObjectKey{Namespace: ns, Name: name}, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return t, flux.Deployment{}, exitError{code: TraceNotFound, err: fmt.Errorf("%s not found", displayName(t.Object.Kind, ns, name))}
		}
		return t, flux.Deployment{}, redact.Error(fmt.Errorf("get %s: %w", displayName(t.Object.Kind, ns, name), err))
	}
	kind, key, ok := fluxObjectOf(gvk.GroupKind(), ns, name, obj.GetLabels())
	if !ok {
		return t, flux.Deployment{}, exitError{code: TraceNotFound, err: fmt.Errorf("%s is not managed by Flux: it has no %s or %s labels",
			displayName(t.Object.Kind, ns, name), kustomizev1.GroupVersion.Group, helmv2.GroupVersion.Group)}
	}
	t.Flux = TraceFlux{Kind: kind, Namespace: key.Namespace, Name: key.Name}
	d, err := loadFlux(ctx, o, cl, &t, key)
	if err != nil {
		t.Error = redact.Error(err).Error()
	}
	return t, d, nil
}

// fluxObjectOf is the Kustomization or HelmRelease that applies an object of kind gk with labels: itself when it
// is one; false when Flux does not manage it.
func fluxObjectOf(gk schema.GroupKind, ns, name string, labels map[string]string) (kind string, key client.ObjectKey, ok bool) {
	switch gk {
	case schema.GroupKind{Group: kustomizev1.GroupVersion.Group, Kind: flux.KindKustomization}:
		return flux.KindKustomization, client.ObjectKey{Namespace: ns, Name: name}, true
	case schema.GroupKind{Group: helmv2.GroupVersion.Group, Kind: flux.KindHelmRelease}:
		return flux.KindHelmRelease, client.ObjectKey{Namespace: ns, Name: name}, true
	}
	if n, nsName := labels[labelKustomizationName], labels[labelKustomizationNamespace]; n != "" && nsName != "" {
		return flux.KindKustomization, client.ObjectKey{Namespace: nsName, Name: n}, true
	}
	if n, nsName := labels[labelHelmReleaseName], labels[labelHelmReleaseNamespace]; n != "" && nsName != "" {
		return flux.KindHelmRelease, client.ObjectKey{Namespace: nsName, Name: n}, true
	}
	return "", client.ObjectKey{}, false
}

// loadFlux reads the Flux object key of t.Flux.Kind and its source into t and a Deployment.
func loadFlux(ctx context.Context, o QueryOptions, r client.Reader, t *Trace, key client.ObjectKey) (flux.Deployment, error) {
	var d flux.Deployment
	switch t.Flux.Kind {
	case flux.KindKustomization:
		var k kustomizev1.Kustomization
		if err := get(ctx, o, r, key, &k); err != nil {
			return d, fmt.Errorf("get Kustomization %s: %w", key, err)
		}
		d = flux.FromKustomization(&k, nil)
		t.fill(d)
		if d.SourceKind == flux.KindGitRepository {
			t.Flux.Path = repositoryPath(k.Spec.Path)
		}
		ctx, cancel := context.WithTimeout(ctx, o.RequestTimeout)
		defer cancel()
		loaded, err := flux.LoadKustomization(ctx, r, &k)
		if err != nil {
			return d, err
		}
		d = loaded
	case flux.KindHelmRelease:
		var hr helmv2.HelmRelease
		if err := get(ctx, o, r, key, &hr); err != nil {
			return d, fmt.Errorf("get HelmRelease %s: %w", key, err)
		}
		d = flux.FromHelmRelease(&hr, nil, nil)
		if _, ok := flux.OCIRepositoryOf(&hr); ok {
			d = flux.FromHelmReleaseOCI(&hr, nil)
		}
		t.fill(d)
		if chartKey, ok := flux.HelmChartOf(&hr); ok {
			var chart sourcev1.HelmChart
			if err := get(ctx, o, r, chartKey, &chart); err == nil {
				t.Flux.Path = repositoryPath(chart.Spec.Chart)
			}
		}
		ctx, cancel := context.WithTimeout(ctx, 3*o.RequestTimeout)
		defer cancel()
		loaded, err := flux.LoadHelmRelease(ctx, r, &hr, true)
		if err != nil {
			return d, err
		}
		d = loaded
	}
	t.fill(d)
	return d, nil
}

// fill copies what d says of the Flux object and its source into t.
func (t *Trace) fill(d flux.Deployment) {
	t.Flux.Message = d.Message
	t.Source = TraceSource{Kind: d.SourceKind, Namespace: d.SourceNamespace, Name: d.SourceName, URL: redact.URL(d.RepositoryURL),
		Branch: d.SourceRef.Branch, Revision: d.SourceRevision}
	t.Revision = d.Revision
	if !d.Applied.IsZero() {
		at := d.Applied.UTC()
		t.Applied = &at
	}
}

// traceCommit looks up the commit that last changed t.Flux.Path at t.Revision (or t.Revision's own commit) in d's
// repository, when it was applied, and the links to it.
func traceCommit(ctx context.Context, o QueryOptions, stderr io.Writer, c cluster, t *Trace, d flux.Deployment) error {
	rev, err := revision.Parse(t.Revision)
	if err != nil {
		return err
	}
	repo, err := tracker.RepositoryOf(d)
	if err != nil {
		return fmt.Errorf("repository of %s %s/%s: %w", d.Kind, d.Namespace, d.Name, err)
	}
	providers, loc, err := queryProviders(ctx, o, stderr, c.reader)
	if err != nil {
		return err
	}
	defer func() { _ = providers.Close() }()
	// Each provider call has its deadline; this bounds a first git fetch plus the lookups.
	ctx, cancel := context.WithTimeout(ctx, o.GitFetchTimeout+4*o.CallTimeout)
	defer cancel()
	commit, err := loc.LastChange(ctx, d, rev.Digest, t.Flux.Path)
	t.LastChange = err == nil
	if errors.Is(err, locate.ErrNoPathHistory) || errors.Is(err, locate.ErrNotInRepository) {
		commit, err = loc.Commit(ctx, d, rev.Digest)
	}
	t.TreeURL, t.CommitURL = BrowseURLs(repo, d.Forge, githubHosts(o.GitHubAPIURL), t.Source.Branch, t.Flux.Path, rev.Digest)
	if err != nil {
		return fmt.Errorf("commit %s in %s: %w", revision.Short(rev.Digest), repo, err)
	}
	t.Commit = &commit
	_, t.CommitURL = BrowseURLs(repo, d.Forge, githubHosts(o.GitHubAPIURL), t.Source.Branch, t.Flux.Path, commit.SHA)
	// Without a tracker (or the right to read its ledger) the apply time is Flux's: "at or before".
	entries, _ := ledger.Read(ctx, c.reader, o.TrackerNamespace)
	var entry *ledger.Entry
	if e, ok := entries[d.UID]; ok {
		entry = &e
	}
	p := loc.Place(ctx, c.context, d, entry, commit)
	if p.Error != "" {
		return fmt.Errorf("when %s was applied: %s", revision.Short(commit.SHA), p.Error)
	}
	if p.State == locate.Applied && p.Applied != nil {
		t.Applied, t.AppliedExact, t.LatencySeconds = p.Applied, p.AppliedExact, p.LatencySeconds
	}
	return nil
}

// get reads key into obj within one request timeout.
func get(ctx context.Context, o QueryOptions, r client.Reader, key client.ObjectKey, obj client.Object) error {
	ctx, cancel := context.WithTimeout(ctx, o.RequestTimeout)
	defer cancel()
	return r.Get(ctx, key, obj)
}

// displayName is Kind namespace/name, or Kind name for a cluster-scoped object.
func displayName(kind, ns, name string) string {
	if ns == "" {
		return kind + " " + name
	}
	return kind + " " + ns + "/" + name
}

// repositoryPath is p relative to the repository root, without ./ or a trailing slash; "" for the root.
func repositoryPath(p string) string {
	return strings.TrimPrefix(path.Clean("/"+p), "/")
}

// Forges trace links to: the forge annotation's kinds, and Bitbucket.
const (
	forgeBitbucket = "bitbucket"
	forgeForgejo   = "forgejo"
)

// forgeKind is the forge of a repository on host: the annotation's kind when it names one, else github for
// githubHosts, else by well-known host names (gitlab.com, bitbucket.org, codeberg.org, gitea.com, and hosts named
// gitlab.*, gitea.*, forgejo.*); "" when unknown.
func forgeKind(host, annotation string, githubHosts []string) string {
	switch a := strings.ToLower(strings.TrimSpace(annotation)); a {
	case forge.KindGitHub, forge.KindGitLab, forge.KindGitea, forgeBitbucket:
		return a
	case forgeForgejo:
		return forge.KindGitea
	}
	host = strings.ToLower(host)
	switch {
	case slices.Contains(githubHosts, host):
		return forge.KindGitHub
	case host == "gitlab.com" || strings.HasPrefix(host, "gitlab."):
		return forge.KindGitLab
	case host == "bitbucket.org":
		return forgeBitbucket
	case host == "codeberg.org" || host == "gitea.com" || strings.HasPrefix(host, "gitea.") || strings.HasPrefix(host, "forgejo."):
		return forge.KindGitea
	}
	return ""
}

// BrowseURLs are the pages, on repo's forge (see forgeKind), of dir on branch (at sha when branch is empty, and
// always on Bitbucket) and of the commit sha; empty when the forge is unknown.
func BrowseURLs(repo commits.Repository, forgeAnnotation string, githubHosts []string, branch, dir, sha string) (tree, commit string) {
	kind, base := forgeKind(repo.Host, forgeAnnotation, githubHosts), webURL(repo)
	ref, p := escapePath(branch), escapePath(repositoryPath(dir))
	if ref == "" {
		ref = sha
	}
	join := func(parts ...string) string {
		parts = slices.DeleteFunc(parts, func(s string) bool { return s == "" })
		return strings.Join(append([]string{base}, parts...), "/")
	}
	switch kind {
	case forge.KindGitHub:
		tree, commit = join("tree", ref, p), join("commit", sha)
	case forge.KindGitLab:
		tree, commit = join("-", "tree", ref, p), join("-", "commit", sha)
	case forge.KindGitea:
		where := "branch"
		if branch == "" {
			where = "commit"
		}
		tree, commit = join("src", where, ref, p), join("commit", sha)
	case forgeBitbucket:
		tree, commit = join("src", sha, p), join("commits", sha)
	default:
		return "", ""
	}
	if ref == "" || kind == forgeBitbucket && sha == "" {
		tree = ""
	}
	if sha == "" {
		commit = ""
	}
	return tree, commit
}

// escapePath escapes each segment of a slash-separated path.
func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// webURL is the https page of repo: its URL without credentials, user, port of ssh, or .git.
func webURL(repo commits.Repository) string {
	if repo.URL == "" {
		return repo.String()
	}
	raw := repo.URL
	scheme, host, p := commits.SchemeHTTPS, repo.Host, ""
	if u, err := url.Parse(raw); err == nil && strings.Contains(raw, "://") {
		p = u.Path
		if u.Scheme == commits.SchemeHTTP || u.Scheme == commits.SchemeHTTPS {
			scheme, host = u.Scheme, u.Host
		}
	} else if _, after, ok := strings.Cut(raw, ":"); ok {
		p = after
	}
	p = strings.TrimSuffix(strings.Trim(p, "/"), ".git")
	return scheme + "://" + host + "/" + p
}

// printTrace writes t as a tree on a terminal, or as JSON or YAML.
func printTrace(w io.Writer, format string, t Trace) error {
	if format != OutputTable {
		return printStructured(w, format, t)
	}
	var b strings.Builder
	b.WriteString(displayName(t.Object.Kind, t.Object.Namespace, t.Object.Name) + "\n")
	indent := ""
	if t.Flux.Kind != "" && (t.Flux.Kind != t.Object.Kind || t.Flux.Namespace != t.Object.Namespace || t.Flux.Name != t.Object.Name) {
		b.WriteString("└── applied by " + displayName(t.Flux.Kind, t.Flux.Namespace, t.Flux.Name) + "\n")
		indent = "    "
	}
	var rows [][2]string
	add := func(k, v string) {
		if v != "" {
			rows = append(rows, [2]string{k, v})
		}
	}
	add("path", t.Flux.Path)
	if t.Flux.Message != "" {
		add("status", oneLine(t.Flux.Message))
	}
	if t.Source.Kind != "" {
		src := displayName(t.Source.Kind, t.Source.Namespace, t.Source.Name)
		if t.Source.URL != "" {
			src += "  " + t.Source.URL
		}
		if t.Source.Branch != "" {
			src += "  branch " + t.Source.Branch
		}
		add("source", src)
		add("fetched", t.Source.Revision)
	}
	switch {
	case t.Revision != "":
		add("revision", t.Revision)
	case t.Error == "":
		add("revision", "none applied yet")
	}
	if c := t.Commit; c != nil {
		label := "commit"
		if t.LastChange {
			label = "last change"
		}
		add(label, c.SHA+"  "+c.Subject)
		add("author", c.Author+", committed "+c.Committed.UTC().Format(time.RFC3339))
	}
	if t.Applied != nil {
		applied := t.Applied.UTC().Format(time.RFC3339)
		if !t.AppliedExact {
			applied = "at or before " + applied
		}
		if t.LatencySeconds != nil {
			applied += ", " + latency.Human(time.Duration(*t.LatencySeconds*float64(time.Second))) + " after the commit"
		}
		add("applied", applied)
	}
	add("tree url", t.TreeURL)
	add("commit url", t.CommitURL)
	add("error", t.Error)
	width := 0
	for _, r := range rows {
		width = max(width, len(r[0]))
	}
	for i, r := range rows {
		branch := "├── "
		if i == len(rows)-1 {
			branch = "└── "
		}
		fmt.Fprintf(&b, "%s%s%-*s  %s\n", indent, branch, width, r[0], r[1])
	}
	_, err := io.WriteString(w, b.String())
	return err
}

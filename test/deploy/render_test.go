package deploy_test

import (
	"bytes"
	"flag"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/template"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/app"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/ledger"
)

// update rewrites the generated manifests instead of comparing them.
var update = flag.Bool("update", false, "rewrite config/deploy/role.yaml from ledger.DefaultShards")

const (
	// deployDir is the shipped kustomization, relative to this package.
	deployDir = "../../config/deploy"
	// leaseName is the tracker's leader-election ID (internal/app: LeaderElectionID).
	leaseName = "flux-commit-tracker"
)

// shardNames are the ConfigMaps the ledger spreads its entries over, as it names them.
func shardNames() []string {
	names := make([]string, ledger.DefaultShards)
	for i := range names {
		names[i] = ledger.ShardName(ledger.DefaultPrefix, i)
	}
	return names
}

// manifests are the rendered objects of config/deploy.
type manifests struct {
	objects    []client.Object
	deployment *appsv1.Deployment
	role       *rbacv1.Role
}

// container is the Deployment's one container.
func (m *manifests) container(t testing.TB) corev1.Container {
	t.Helper()
	cs := m.deployment.Spec.Template.Spec.Containers
	if len(cs) != 1 {
		t.Fatalf("Deployment has %d containers, want 1", len(cs))
	}
	return cs[0]
}

// render builds config/deploy with the kustomize API, as `kubectl apply -k` and Flux do.
func render(t testing.TB) *manifests {
	t.Helper()
	resources, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), deployDir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", deployDir, err)
	}
	decoder := clientgoscheme.Codecs.UniversalDeserializer()
	m := &manifests{}
	for _, r := range resources.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			t.Fatalf("render %s: %v", r.CurId(), err)
		}
		obj, _, err := decoder.Decode(y, nil, nil)
		if err != nil {
			t.Fatalf("decode %s: %v", r.CurId(), err)
		}
		co, ok := obj.(client.Object)
		if !ok {
			t.Fatalf("%s is not an object", r.CurId())
		}
		switch o := obj.(type) {
		case *appsv1.Deployment:
			if m.deployment != nil {
				t.Fatal("more than one Deployment")
			}
			m.deployment = o
		case *rbacv1.Role:
			if m.role != nil {
				t.Fatal("more than one Role")
			}
			m.role = o
		}
		m.objects = append(m.objects, co)
	}
	if m.deployment == nil || m.role == nil {
		t.Fatalf("config/deploy renders no Deployment or no Role: %d objects", len(m.objects))
	}
	return m
}

// roleTemplate generates role.yaml: the ledger shards and the Lease by name.
var roleTemplate = template.Must(template.New("role").Parse(`# The tracker's rights in its own namespace: its ledger ConfigMaps and its leader-election Lease, by name.
# Generated from ledger.DefaultShards by ` + "`go test ./test/deploy -run TestRoleNamesEveryLedgerShard -update`" + `:
# edit roleTemplate in test/deploy/render_test.go, not this file.
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: flux-commit-tracker
rules:
  # Read and patch the ledger shards only: never another ConfigMap, such as those Flux substitutes into what it
  # applies.
  - apiGroups: [""]
    resources: ["configmaps"]
    resourceNames:
{{- range .Shards}}
      - {{.}}
{{- end}}
    verbs: ["get", "patch"]
  # RBAC cannot limit create to names: a shard is created on its first write.
  - apiGroups: [""]
    resources: ["configmaps"]
    verbs: ["create"]
  - apiGroups: ["coordination.k8s.io"]
    resources: ["leases"]
    resourceNames: ["{{.Lease}}"]
    verbs: ["get", "update"]
  # The Lease is created by the first replica to start.
  - apiGroups: ["coordination.k8s.io"]
    resources: ["leases"]
    verbs: ["create"]
  - apiGroups: [""]
    resources: ["events"]
    verbs: ["create", "patch"]
`))

// TestRoleNamesEveryLedgerShard fails when role.yaml and the ledger's shards disagree, or when the Role lets the
// tracker read or write ConfigMaps or Leases other than its own.
func TestRoleNamesEveryLedgerShard(t *testing.T) {
	var want bytes.Buffer
	if err := roleTemplate.Execute(&want, struct {
		Shards []string
		Lease  string
	}{shardNames(), leaseName}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(deployDir, "role.yaml")
	if *update {
		if err := os.WriteFile(path, want.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, want.Bytes()) {
		t.Errorf("%s is stale (ledger.DefaultShards = %d): run go test ./test/deploy -run TestRoleNamesEveryLedgerShard -update", path, ledger.DefaultShards)
	}

	role := render(t).role
	byName := map[string]struct {
		names          []string
		write, refused string // the verb the tracker writes them with, and the other write verb
	}{"configmaps": {shardNames(), "patch", "update"}, "leases": {[]string{leaseName}, "update", "patch"}}
	for resource, want := range byName {
		names := want.names
		every, named := map[string]bool{}, map[string][]string{} // verb → granted on every name / on these names
		for _, r := range role.Rules {
			if !slices.Contains(r.Resources, resource) && !slices.Contains(r.Resources, "*") {
				continue
			}
			for _, v := range r.Verbs {
				if len(r.ResourceNames) == 0 {
					every[v] = true
				} else {
					named[v] = append(named[v], r.ResourceNames...)
				}
			}
		}
		for _, verb := range []string{"get", want.write} {
			got := slices.Sorted(slices.Values(named[verb]))
			switch {
			case every[verb] || every["*"]:
				t.Errorf("Role grants %s on every %s in the namespace, want only the %d named %s…", verb, resource, len(names), names[0])
			case !slices.Equal(got, slices.Sorted(slices.Values(names))):
				t.Errorf("Role grants %s on %s %v, want %v", verb, resource, got, names)
			}
		}
		granted := func(verb string) bool { return every[verb] || len(named[verb]) > 0 }
		for _, verb := range []string{want.refused, "delete", "deletecollection", "watch", "*"} {
			if granted(verb) {
				t.Errorf("Role grants %s on %s; the tracker needs only get, %s and create", verb, resource, want.write)
			}
		}
	}
}

// TestDeploymentWritesTheGitCacheToAnEmptyDir: the root filesystem is read-only, so the git cache must be a
// mounted, size-limited emptyDir named by GIT_CACHE_DIR.
func TestDeploymentWritesTheGitCacheToAnEmptyDir(t *testing.T) {
	m := render(t)
	c := m.container(t)
	if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("container root filesystem is not read-only")
	}
	dir := envValue(c, "GIT_CACHE_DIR")
	if dir == "" {
		t.Fatal("container sets no GIT_CACHE_DIR: the default under $HOME is on the read-only root filesystem")
	}
	mount, ok := mountOf(c, dir)
	if !ok {
		t.Fatalf("GIT_CACHE_DIR %s is under no volume mount: it is on the read-only root filesystem", dir)
	}
	if mount.ReadOnly {
		t.Errorf("volume mount %s of the git cache is read-only", mount.MountPath)
	}
	vol, ok := volumeNamed(m.deployment, mount.Name)
	switch {
	case !ok:
		t.Errorf("volume mount %s names no volume %q", mount.MountPath, mount.Name)
	case vol.EmptyDir == nil:
		t.Errorf("git cache volume %q is not an emptyDir", vol.Name)
	case vol.EmptyDir.SizeLimit == nil || vol.EmptyDir.SizeLimit.Sign() <= 0:
		t.Errorf("git cache emptyDir %q has no sizeLimit: a large repository could fill the node's disk", vol.Name)
	}
}

// TestDeploymentBoundsTheGoHeapByItsMemoryLimit: GOMEMLIMIT is the container's memory limit, so the collector
// works harder before the OOM kill instead of letting the heap grow to twice what is live.
func TestDeploymentBoundsTheGoHeapByItsMemoryLimit(t *testing.T) {
	c := render(t).container(t)
	if c.Resources.Limits.Memory().IsZero() {
		t.Fatal("the container has no memory limit")
	}
	for _, e := range c.Env {
		if e.Name == "GOMEMLIMIT" {
			if ref := e.ValueFrom; ref == nil || ref.ResourceFieldRef == nil || ref.ResourceFieldRef.Resource != "limits.memory" {
				t.Errorf("GOMEMLIMIT = %+v, want the container's limits.memory through resourceFieldRef", e)
			}
			return
		}
	}
	t.Error("the container sets no GOMEMLIMIT")
}

// TestDeploymentRunsTwoReplicasWithLeaderElection: two replicas, and only the elected one records.
func TestDeploymentRunsTwoReplicasWithLeaderElection(t *testing.T) {
	m := render(t)
	if r := m.deployment.Spec.Replicas; r == nil || *r != 2 {
		t.Errorf("replicas = %v, want 2", r)
	}
	c := m.container(t)
	if !slices.Contains(c.Args, "--enable-leader-election") && envValue(c, "ENABLE_LEADER_ELECTION") != "true" {
		t.Errorf("two replicas without leader election would both record: args %q", c.Args)
	}
}

// TestDeploymentPortsAreTheTrackersPorts: the named ports and the probes reach what the binary listens on.
func TestDeploymentPortsAreTheTrackersPorts(t *testing.T) {
	c := render(t).container(t)
	defaults := app.DefaultOptions()
	for name, addr := range map[string]string{"metrics": defaults.MetricsAddr, "health": defaults.HealthAddr} {
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := strconv.Atoi(port)
		i := slices.IndexFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == name })
		if i < 0 {
			t.Errorf("no container port %q", name)
			continue
		}
		if got := int(c.Ports[i].ContainerPort); got != want {
			t.Errorf("container port %s = %d, the tracker listens on %d", name, got, want)
		}
	}
	for what, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		want := map[string]string{"readiness": "/readyz", "liveness": "/healthz"}[what]
		if p == nil || p.HTTPGet == nil {
			t.Errorf("no HTTP %s probe", what)
			continue
		}
		if p.HTTPGet.Path != want || p.HTTPGet.Port.String() != "health" {
			t.Errorf("%s probe = %s on port %s, want %s on port health", what, p.HTTPGet.Path, p.HTTPGet.Port.String(), want)
		}
	}
}

// envValue is the plain value of the container's environment variable name.
func envValue(c corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

// mountOf returns the container's volume mount that holds path.
func mountOf(c corev1.Container, path string) (corev1.VolumeMount, bool) {
	for _, m := range c.VolumeMounts {
		if rel, err := filepath.Rel(m.MountPath, path); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
			return m, true
		}
	}
	return corev1.VolumeMount{}, false
}

func volumeNamed(d *appsv1.Deployment, name string) (corev1.Volume, bool) {
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == name {
			return v, true
		}
	}
	return corev1.Volume{}, false
}

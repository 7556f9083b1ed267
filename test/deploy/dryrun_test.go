package deploy_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

var (
	promCRDsOnce sync.Once
	promClient   client.Client
	promCRDsErr  error
)

// prometheusCRDsDir holds the ServiceMonitor and PrometheusRule CRDs: PROMETHEUS_OPERATOR_CRDS_DIR, else the
// folder hack/test-assets.sh fills beside FLUX_CRDS_DIR.
func prometheusCRDsDir() (string, error) {
	if d := os.Getenv("PROMETHEUS_OPERATOR_CRDS_DIR"); d != "" {
		return d, nil
	}
	flux := os.Getenv("FLUX_CRDS_DIR")
	if flux == "" {
		return "", errors.New("FLUX_CRDS_DIR is not set: run the tests with `make test`")
	}
	return filepath.Join(filepath.Dir(flux), "prometheus-operator-crds"), nil
}

// monitoringClient installs the prometheus-operator CRDs on the shared apiserver, once, and returns a client
// that knows their kinds.
func monitoringClient(t *testing.T, c *cluster) client.Client {
	t.Helper()
	promCRDsOnce.Do(func() {
		dir, err := prometheusCRDsDir()
		if err != nil {
			promCRDsErr = err
			return
		}
		if _, err := envtest.InstallCRDs(c.env.Config, envtest.CRDInstallOptions{Paths: []string{dir}, ErrorIfPathMissing: true}); err != nil {
			promCRDsErr = fmt.Errorf("install the prometheus-operator CRDs from %s (run hack/test-assets.sh): %w", dir, err)
			return
		}
		promClient, promCRDsErr = client.New(c.env.Config, client.Options{Scheme: c.env.Scheme})
	})
	if promCRDsErr != nil {
		t.Fatal(promCRDsErr)
	}
	return promClient
}

// dryRunApply server-side applies obj without persisting it: defaulting, schema (strict for apply), admission.
func dryRunApply(ctx context.Context, cl client.Client, obj *unstructured.Unstructured) error {
	return cl.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj.DeepCopy()),
		client.DryRunAll, client.ForceOwnership, client.FieldOwner("install-test"))
}

// installs are the renderings the tests apply: the kustomize install and the chart, monitoring on.
func installs(t *testing.T) map[string][]*unstructured.Unstructured {
	t.Helper()
	return map[string][]*unstructured.Unstructured{
		"kustomize":                 renderKustomization(t, monitoringOverlay),
		"chart":                     renderChartT(t, monitoringValues()),
		"chart with default values": renderChartT(t, nil),
		"chart with every option":   renderChartT(t, everyOptionValues()),
	}
}

// TestInstallsPassServerSideDryRun: every object of both installs, the ServiceMonitor and PrometheusRule
// included, is accepted by a real apiserver in a server-side apply dry-run, which rejects unknown fields.
func TestInstallsPassServerSideDryRun(t *testing.T) {
	c := getCluster(t)
	cl := monitoringClient(t, c)
	ctx := context.Background()
	for name, objs := range installs(t) {
		kinds := map[string]bool{}
		for _, o := range objs {
			if err := dryRunApply(ctx, cl, o); err != nil {
				t.Errorf("%s: dry-run apply %s: %v", name, objectKey(o), err)
			}
			kinds[o.GetKind()] = true
		}
		for _, k := range []string{"Deployment", "ClusterRole", "Role", "ServiceMonitor", "PrometheusRule", "ConfigMap", "Service"} {
			if !kinds[k] && name != "chart with default values" {
				t.Errorf("%s renders no %s", name, k)
			}
		}
	}

	// The dry-run checks what it is given: an unknown field, a wrong type and a bad value are refused, each
	// naming its field (a server-side apply the schema cannot type answers 500, not 422).
	for _, tc := range []struct {
		what, kind, field string
		mutate            func(o *unstructured.Unstructured)
	}{
		{"a typo", "ServiceMonitor", ".spec.endpoint", func(o *unstructured.Unstructured) {
			_ = unstructured.SetNestedField(o.Object, "/metrics", "spec", "endpoint")
		}},
		{"groups not a list", "PrometheusRule", ".spec.groups", func(o *unstructured.Unstructured) {
			_ = unstructured.SetNestedField(o.Object, "not-a-list", "spec", "groups")
		}},
		{"a bad port name", "Deployment", "ports[0].name", func(o *unstructured.Unstructured) {
			cs, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
			cs[0].(map[string]any)["ports"] = []any{map[string]any{"name": "metrics_port_name_too_long", "containerPort": int64(8888)}}
			_ = unstructured.SetNestedSlice(o.Object, cs, "spec", "template", "spec", "containers")
		}},
	} {
		var obj *unstructured.Unstructured
		for _, o := range renderChartT(t, monitoringValues()) {
			if o.GetKind() == tc.kind {
				obj = o
			}
		}
		if obj == nil {
			t.Fatalf("no %s rendered", tc.kind)
		}
		tc.mutate(obj)
		if err := dryRunApply(ctx, cl, obj); err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s with %s: dry-run error = %v, want it refused naming %s", tc.kind, tc.what, err, tc.field)
		}
	}
}

// restrictedNamespace creates a namespace that enforces the restricted Pod Security Standard.
func restrictedNamespace(t *testing.T, cl client.Client) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "pss-restricted", Labels: map[string]string{
		"pod-security.kubernetes.io/enforce":         "restricted",
		"pod-security.kubernetes.io/enforce-version": "latest",
	}}}
	if err := cl.Create(context.Background(), ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	return ns.Name
}

// podOf is the Pod the Deployment's template makes, in namespace.
func podOf(t *testing.T, objs []*unstructured.Unstructured, namespace, name string) *corev1.Pod {
	t.Helper()
	d := deploymentOf(t, objs)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: d.Spec.Template.Labels},
		Spec:       *d.Spec.Template.Spec.DeepCopy(),
	}
}

// deploymentOf is the rendering's one Deployment, typed.
func deploymentOf(t *testing.T, objs []*unstructured.Unstructured) *appsv1.Deployment {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == "Deployment" {
			var d appsv1.Deployment
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &d); err != nil {
				t.Fatal(err)
			}
			return &d
		}
	}
	t.Fatal("no Deployment rendered")
	return nil
}

// TestPodsPassRestrictedPodSecurityAdmission: the pod of either install is admitted by the apiserver's
// PodSecurity admission in a namespace enforcing "restricted"; the same pod without its container security
// context is refused there, so the namespace does enforce.
func TestPodsPassRestrictedPodSecurityAdmission(t *testing.T) {
	c := getCluster(t)
	cl := c.env.Client
	ctx := context.Background()
	ns := restrictedNamespace(t, cl)
	for name, objs := range installs(t) {
		pod := podOf(t, objs, ns, "tracker-"+strings.ReplaceAll(name, " ", "-"))
		if err := cl.Create(ctx, pod, client.DryRunAll); err != nil {
			t.Errorf("%s: the pod is refused under the restricted profile: %v", name, err)
		}
	}
	loose := podOf(t, renderKustomization(t, deployDir), ns, "loose")
	loose.Spec.Containers[0].SecurityContext = nil
	err := cl.Create(ctx, loose, client.DryRunAll)
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `violates PodSecurity "restricted`) {
		t.Errorf("a pod without allowPrivilegeEscalation=false and drop ALL: err = %v, want refused by PodSecurity", err)
	}
}

// TestPodSpecsFollowTheRestrictedProfile names each rule of the restricted profile on both renderings, so a
// failure says which one broke.
func TestPodSpecsFollowTheRestrictedProfile(t *testing.T) {
	allowedVolumes := func(v corev1.Volume) bool {
		s := v.VolumeSource
		return s.EmptyDir != nil || s.ConfigMap != nil || s.Secret != nil || s.Projected != nil || s.DownwardAPI != nil ||
			s.PersistentVolumeClaim != nil || s.CSI != nil || s.Ephemeral != nil
	}
	for name, objs := range map[string][]*unstructured.Unstructured{
		"kustomize": renderKustomization(t, deployDir), "chart": renderChartT(t, nil),
	} {
		spec := deploymentOf(t, objs).Spec.Template.Spec
		psc := spec.SecurityContext
		if psc == nil || !ptr.Deref(psc.RunAsNonRoot, false) {
			t.Errorf("%s: pod runAsNonRoot is not true", name)
		}
		if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("%s: pod seccompProfile is not RuntimeDefault", name)
		}
		if spec.HostNetwork || spec.HostPID || spec.HostIPC {
			t.Errorf("%s: pod shares a host namespace", name)
		}
		for _, v := range spec.Volumes {
			if !allowedVolumes(v) {
				t.Errorf("%s: volume %s is of a type the restricted profile refuses (hostPath?)", name, v.Name)
			}
		}
		for _, ctr := range append(spec.InitContainers, spec.Containers...) {
			sc := ctr.SecurityContext
			switch {
			case sc == nil:
				t.Errorf("%s: container %s has no securityContext", name, ctr.Name)
				continue
			case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
				t.Errorf("%s: container %s allows privilege escalation", name, ctr.Name)
			case ptr.Deref(sc.Privileged, false):
				t.Errorf("%s: container %s is privileged", name, ctr.Name)
			case sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL":
				t.Errorf("%s: container %s does not drop ALL capabilities", name, ctr.Name)
			case len(sc.Capabilities.Add) > 0:
				t.Errorf("%s: container %s adds capabilities %v", name, ctr.Name, sc.Capabilities.Add)
			case !ptr.Deref(sc.ReadOnlyRootFilesystem, false):
				t.Errorf("%s: container %s has a writable root filesystem", name, ctr.Name)
			case sc.RunAsUser != nil && *sc.RunAsUser == 0:
				t.Errorf("%s: container %s runs as root", name, ctr.Name)
			}
			for _, p := range ctr.Ports {
				if p.HostPort != 0 {
					t.Errorf("%s: container %s uses host port %d", name, ctr.Name, p.HostPort)
				}
			}
		}
	}
}

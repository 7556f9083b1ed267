// Package testenv starts a real kube-apiserver and etcd (envtest) with the Flux CRDs installed, for tests.
package testenv

import (
	"errors"
	"fmt"
	"os"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Env is a running apiserver with a client for it.
type Env struct {
	Config *rest.Config
	Client client.Client
	Scheme *runtime.Scheme
	env    *envtest.Environment
}

// Scheme returns a scheme with the core Kubernetes kinds and the Flux kinds the tracker reads.
func Scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, kustomizev1.AddToScheme, sourcev1.AddToScheme, helmv2.AddToScheme} {
		if err := add(s); err != nil {
			return nil, fmt.Errorf("build scheme: %w", err)
		}
	}
	return s, nil
}

// Start launches etcd and kube-apiserver from KUBEBUILDER_ASSETS and installs the CRDs in FLUX_CRDS_DIR;
// `make test` sets both.
func Start() (*Env, error) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" || os.Getenv("FLUX_CRDS_DIR") == "" {
		return nil, errors.New("KUBEBUILDER_ASSETS and FLUX_CRDS_DIR are not set: run the tests with `make test`, which installs etcd, builds kube-apiserver and collects the Flux CRDs")
	}
	scheme, err := Scheme()
	if err != nil {
		return nil, err
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{os.Getenv("FLUX_CRDS_DIR")},
		ErrorIfCRDPathMissing: true,
		Scheme:                scheme,
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("start envtest: %w", err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		_ = env.Stop()
		return nil, fmt.Errorf("client for envtest: %w", err)
	}
	return &Env{Config: cfg, Client: c, Scheme: scheme, env: env}, nil
}

// Stop shuts the apiserver and etcd down.
func (e *Env) Stop() error { return e.env.Stop() }

// WriteKubeconfig writes an admin kubeconfig for cfg (envtest's client certificate) to path, with namespace as
// its context's namespace when set.
func WriteKubeconfig(cfg *rest.Config, path, namespace string) error {
	return WriteContexts(path, Context{Name: "envtest", Config: cfg, Namespace: namespace})
}

// Context is one context of a kubeconfig: an apiserver's admin config and a default namespace.
type Context struct {
	Name      string
	Config    *rest.Config
	Namespace string
}

// WriteContexts writes a kubeconfig with one context (and cluster and user) per entry to path; the first is
// the current one.
func WriteContexts(path string, contexts ...Context) error {
	kc := clientcmdapi.NewConfig()
	for i, c := range contexts {
		kc.Clusters[c.Name] = &clientcmdapi.Cluster{Server: c.Config.Host, CertificateAuthorityData: c.Config.CAData}
		kc.AuthInfos[c.Name] = &clientcmdapi.AuthInfo{ClientCertificateData: c.Config.CertData, ClientKeyData: c.Config.KeyData, Token: c.Config.BearerToken}
		kc.Contexts[c.Name] = &clientcmdapi.Context{Cluster: c.Name, AuthInfo: c.Name, Namespace: c.Namespace}
		if i == 0 {
			kc.CurrentContext = c.Name
		}
	}
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		return fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	return nil
}

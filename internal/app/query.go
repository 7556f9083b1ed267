package app

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/flux"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/ledger"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/locate"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/redact"
	"github.com/flux-commit-tracker/flux-commit-tracker/internal/tracker"
)

// QueryOptions select the clusters and Flux objects the query subcommands read, and how they print.
type QueryOptions struct {
	ProviderOptions
	Kubeconfig       string
	Contexts         []string
	AllContexts      bool
	Namespace        string
	AllNamespaces    bool
	Selector         string
	Output           string
	TrackerNamespace string
	// RequestTimeout bounds each call to a cluster's apiserver.
	RequestTimeout time.Duration
}

// Output formats of the query subcommands.
const (
	OutputTable = "table"
	OutputJSON  = "json"
	OutputYAML  = "yaml"
)

func defaultQueryOptions() QueryOptions {
	return QueryOptions{ProviderOptions: DefaultProviderOptions(), Output: OutputTable, TrackerNamespace: "flux-system", RequestTimeout: 15 * time.Second}
}

func (o *QueryOptions) bindFlags(fs *pflag.FlagSet) {
	o.BindFlags(fs)
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "Path to a kubeconfig; empty uses KUBECONFIG or ~/.kube/config")
	fs.StringArrayVar(&o.Contexts, "context", o.Contexts, "Kubeconfig context to read; repeat for several (default: the current context)")
	fs.BoolVar(&o.AllContexts, "all-contexts", o.AllContexts, "Read every context of the kubeconfig")
	fs.StringVarP(&o.Namespace, "namespace", "n", o.Namespace, "Namespace of the Flux objects (default: the context's namespace)")
	fs.BoolVarP(&o.AllNamespaces, "all-namespaces", "A", o.AllNamespaces, "Flux objects in every namespace")
	fs.StringVarP(&o.Selector, "selector", "l", o.Selector, "Label selector of the Flux objects")
	fs.StringVarP(&o.Output, "output", "o", o.Output, "Output format: table, json or yaml")
	fs.StringVar(&o.TrackerNamespace, "tracker-namespace", o.TrackerNamespace, "Namespace of the tracker's ledger, for exact apply times")
	fs.DurationVar(&o.RequestTimeout, "request-timeout", o.RequestTimeout, "Deadline of each call to a cluster")
}

// apply reads the provider environment (credentials, and the env of provider flags) and checks the values.
func (o *QueryOptions) apply(fs *pflag.FlagSet, getenv func(string) string) error {
	errs := applyFlagEnv(fs, getenv)
	errs = append(errs, o.applyCredentials(getenv)...)
	errs = append(errs, o.validate()...)
	switch o.Output {
	case OutputTable, OutputJSON, OutputYAML:
	default:
		errs = append(errs, fmt.Errorf("invalid --output %q: must be table, json or yaml", o.Output))
	}
	if _, err := labels.Parse(o.Selector); err != nil {
		errs = append(errs, fmt.Errorf("invalid --selector: %w", err))
	}
	if o.RequestTimeout <= 0 {
		errs = append(errs, fmt.Errorf("invalid --request-timeout %s: must be positive", o.RequestTimeout))
	}
	return errors.Join(errs...)
}

// cluster is one kubeconfig context: a client, or why there is none.
type cluster struct {
	context   string
	namespace string // the context's namespace, the default of -n
	reader    client.Reader
	config    *rest.Config
	err       error
}

// clusters opens a client per selected context; a context that cannot be configured keeps its error.
func (o *QueryOptions) clusters() ([]cluster, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if o.Kubeconfig != "" {
		rules.ExplicitPath = o.Kubeconfig
	}
	raw, err := rules.Load()
	if err != nil {
		return nil, usageError{fmt.Errorf("kubeconfig: %w", err)}
	}
	names := o.Contexts
	switch {
	case o.AllContexts:
		names = slices.Sorted(func(yield func(string) bool) {
			for n := range raw.Contexts {
				if !yield(n) {
					return
				}
			}
		})
	case len(names) == 0 && raw.CurrentContext != "":
		names = []string{raw.CurrentContext}
	}
	if len(names) == 0 {
		return nil, usageError{errors.New("kubeconfig has no current context: name one with --context")}
	}
	scheme, err := Scheme()
	if err != nil {
		return nil, err
	}
	out := make([]cluster, 0, len(names))
	for _, name := range names {
		c := cluster{context: name, namespace: "default"}
		if kc, ok := raw.Contexts[name]; !ok {
			c.err = fmt.Errorf("context %q not in the kubeconfig", name)
		} else if kc.Namespace != "" {
			c.namespace = kc.Namespace
		}
		if c.err == nil {
			cfg, err := clientcmd.NewNonInteractiveClientConfig(*raw, name, &clientcmd.ConfigOverrides{}, rules).ClientConfig()
			if err == nil {
				cfg.Timeout, cfg.UserAgent = o.RequestTimeout, programName
				c.config = cfg
				c.reader, err = client.New(cfg, client.Options{Scheme: scheme})
			}
			c.err = err
		}
		out = append(out, c)
	}
	return out, nil
}

// snapshot is what one cluster holds: its tracked Flux objects and the tracker's ledger entries.
type snapshot struct {
	context string
	objects []flux.Deployment
	entries map[string]ledger.Entry
	err     error
}

// read lists c's Kustomizations and HelmReleases (with their sources) and the tracker's ledger.
func (o *QueryOptions) read(ctx context.Context, c cluster) snapshot {
	s := snapshot{context: c.context, err: c.err}
	if c.err != nil {
		return s
	}
	ctx, cancel := context.WithTimeout(ctx, 4*o.RequestTimeout)
	defer cancel()
	// Objects that share a source read it once.
	reader := newOnceReader(c.reader)
	sel, _ := labels.Parse(o.Selector)
	opts := []client.ListOption{client.MatchingLabelsSelector{Selector: sel}}
	if !o.AllNamespaces {
		opts = append(opts, client.InNamespace(cmp.Or(o.Namespace, c.namespace)))
	}
	var ks kustomizev1.KustomizationList
	if err := c.reader.List(ctx, &ks, opts...); err != nil {
		s.err = redact.Error(fmt.Errorf("list Kustomizations: %w", err))
		return s
	}
	for i := range ks.Items {
		if d, err := flux.LoadKustomization(ctx, reader, &ks.Items[i]); err == nil && d.Revision != "" {
			s.objects = append(s.objects, d)
		}
	}
	var hrs helmv2.HelmReleaseList
	if err := c.reader.List(ctx, &hrs, opts...); err != nil && !apimeta.IsNoMatchError(err) {
		s.err = redact.Error(fmt.Errorf("list HelmReleases: %w", err))
		return s
	}
	for i := range hrs.Items {
		if d, err := flux.LoadHelmRelease(ctx, reader, &hrs.Items[i], true); err == nil && d.Revision != "" {
			s.objects = append(s.objects, d)
		}
	}
	// Without a tracker (or the right to read its ledger) apply times are Flux's: "at or before".
	s.entries, _ = ledger.Read(ctx, c.reader, o.TrackerNamespace)
	return s
}

// readAll reads every cluster at once; progress goes to stderr when several are asked.
func (o *QueryOptions) readAll(ctx context.Context, clusters []cluster, progress io.Writer) []snapshot {
	out := make([]snapshot, len(clusters))
	var wg sync.WaitGroup
	var mu sync.Mutex
	done := 0
	for i, c := range clusters {
		wg.Go(func() {
			out[i] = o.read(ctx, c)
			if len(clusters) > 2 {
				mu.Lock()
				done++
				_, _ = fmt.Fprintf(progress, "read %d/%d contexts (%s)\n", done, len(clusters), c.context)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return out
}

// placeAll places ref in every object of every snapshot on a repository that holds it; a context that could
// not be read is one unknown row. Found is false when no object's repository holds the commit.
func placeAll(ctx context.Context, loc locate.Locator, snaps []snapshot, ref string) (commit locate.Commit, rows []locate.Placement, found bool) {
	type lookup struct {
		c   locate.Commit
		err error
	}
	byRepo := map[string]lookup{}
	for _, s := range snaps {
		if s.err != nil {
			rows = append(rows, locate.Placement{Context: s.context, State: locate.Unknown, Error: s.err.Error()})
			continue
		}
		for _, d := range s.objects {
			repo, err := tracker.RepositoryOf(d)
			key := repo.String()
			if err != nil {
				continue
			}
			l, ok := byRepo[key]
			if !ok {
				l.c, l.err = loc.Commit(ctx, d, ref)
				byRepo[key] = l
			}
			switch {
			case errors.Is(l.err, locate.ErrNotInRepository):
				continue
			case l.err != nil:
				rows = append(rows, locate.Placement{Context: s.context, Kind: d.Kind, Namespace: d.Namespace, Name: d.Name,
					State: locate.Unknown, Error: redact.Error(l.err).Error()})
				continue
			}
			commit, found = l.c, true
			var entry *ledger.Entry
			if e, ok := s.entries[d.UID]; ok {
				entry = &e
			}
			rows = append(rows, loc.Place(ctx, s.context, d, entry, l.c))
		}
	}
	slices.SortFunc(rows, func(a, b locate.Placement) int {
		return cmp.Or(cmp.Compare(a.Context, b.Context), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Name, b.Name))
	})
	return commit, rows, found
}

// Where is the answer of where and wait, as -o json and -o yaml print it.
type Where struct {
	Commit     *locate.Commit     `json:"commit"`
	Placements []locate.Placement `json:"placements"`
}

// printStructured writes v as JSON or YAML.
func printStructured(w io.Writer, format string, v any) error {
	raw, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if format == OutputYAML {
		if raw, err = yaml.JSONToYAML(raw); err != nil {
			return err
		}
	} else {
		raw = append(raw, '\n')
	}
	_, err = w.Write(raw)
	return err
}

// queryProviders builds the tracker's providers for a query, reading plain-git credentials from secrets (a
// cluster's reader) with --git-read-source-secrets; logs at warn and above go to stderr.
func queryProviders(ctx context.Context, o QueryOptions, stderr io.Writer, secrets client.Reader) (*Providers, locate.Locator, error) {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	p, err := BuildProviders(ctx, o.ProviderOptions, ProviderHooks{Logger: log})
	if err != nil {
		return nil, locate.Locator{}, err
	}
	if o.GitReadSourceSecrets && secrets != nil {
		p.Sources.Secrets = secretReader(secrets, o.CallTimeout)
	}
	return p, locate.Locator{Sources: p.Sources.For}, nil
}

// query is what a query subcommand works with: the providers' locator and the selected clusters.
type query struct {
	loc       locate.Locator
	clusters  []cluster
	providers *Providers
}

// openQuery opens the selected clusters and builds the providers; close releases the providers.
func openQuery(ctx context.Context, o QueryOptions, stderr io.Writer) (*query, error) {
	clusters, err := o.clusters()
	if err != nil {
		return nil, err
	}
	if o.GitReadSourceSecrets && len(clusters) > 1 {
		return nil, usageError{errors.New("--git-read-source-secrets reads one cluster's Secrets: name one --context")}
	}
	providers, loc, err := queryProviders(ctx, o, stderr, clusters[0].reader)
	if err != nil {
		return nil, err
	}
	return &query{loc: loc, clusters: clusters, providers: providers}, nil
}

func (q *query) close() { _ = q.providers.Close() }

// newQueryCommand is a query subcommand with the shared flags bound and read before run; bad input exits with
// usageExit.
func newQueryCommand(deps Deps, cmd *cobra.Command, usageExit int, run func(cmd *cobra.Command, o QueryOptions, args []string) error) *cobra.Command {
	opts := defaultQueryOptions()
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	usage := func(err error) error { return exitError{code: usageExit, err: err} }
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usage(err) })
	args := cmd.Args
	cmd.Args = func(cmd *cobra.Command, a []string) error {
		if err := args(cmd, a); err != nil {
			return usage(err)
		}
		return nil
	}
	cmd.PreRunE = func(cmd *cobra.Command, _ []string) error {
		if err := opts.apply(cmd.Flags(), deps.Getenv); err != nil {
			return usage(err)
		}
		return nil
	}
	cmd.RunE = func(cmd *cobra.Command, a []string) error {
		err := run(cmd, opts, a)
		if ue := (usageError{}); errors.As(err, &ue) {
			return usage(err)
		}
		return err
	}
	opts.bindFlags(cmd.Flags())
	return cmd
}

package app

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/flux"
)

// A subcommand builds the controller's providers from the same options, without metrics.
func TestBuildProvidersWithoutMetrics(t *testing.T) {
	opts := DefaultProviderOptions()
	opts.GitCacheDir, opts.GitHubToken = filepath.Join(t.TempDir(), "git"), "token"
	p, err := BuildProviders(context.Background(), opts, ProviderHooks{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Close() }()
	if p.GitHubAuth != "token" {
		t.Errorf("GitHub auth %q, want token", p.GitHubAuth)
	}
	for url, want := range map[string]string{"https://github.com/acme/app": "github", "https://git.example.com/acme/app.git": "git"} {
		d := flux.Deployment{Kind: flux.KindKustomization, Namespace: "apps", Name: "app", SourceKind: flux.KindGitRepository, RepositoryURL: url}
		src, err := p.Sources.For(context.Background(), d)
		if err != nil || src.Kind != want {
			t.Errorf("source of %s: %q, %v; want %q", url, src.Kind, err, want)
		}
	}
}

func TestBuildProvidersRefusesABadCacheDir(t *testing.T) {
	opts := DefaultProviderOptions()
	opts.GitCacheDir = "/proc/not-a-place"
	_, err := BuildProviders(context.Background(), opts, ProviderHooks{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	var usage usageError
	if !errors.As(err, &usage) {
		t.Fatalf("BuildProviders with an unusable --git-cache-dir = %v; want a usage error naming it", err)
	}
}

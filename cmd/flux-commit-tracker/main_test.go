package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/app"
)

// TestVersionFromTheDockerfilesLdflags builds the binary with the Dockerfile's own -ldflags, its build
// arguments filled in, and reads --version.
func TestVersionFromTheDockerfilesLdflags(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dockerfile, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`-ldflags="([^"]*)"`).FindSubmatch(dockerfile)
	if m == nil {
		t.Fatal("the Dockerfile passes no -ldflags")
	}
	const commit = "0123456789abcdef0123456789abcdef01234567"
	ldflags := strings.NewReplacer("${VERSION}", "v9.8.7", "${COMMIT}", commit, "${DATE}", "2026-12-02T17:04:05Z").Replace(string(m[1]))
	for _, arg := range []string{"VERSION", "COMMIT", "DATE"} {
		if !regexp.MustCompile(`(?m)^ARG ` + arg + `\b`).Match(dockerfile) {
			t.Errorf("the Dockerfile declares no build argument %s", arg)
		}
	}
	// The image says the same in its OCI labels.
	for _, label := range []string{`org.opencontainers.image.version="${VERSION}"`, `org.opencontainers.image.revision="${COMMIT}"`, `org.opencontainers.image.created="${DATE}"`} {
		if !strings.Contains(string(dockerfile), label) {
			t.Errorf("the Dockerfile lacks the label %s", label)
		}
	}
	bin := filepath.Join(t.TempDir(), "flux-commit-tracker")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", ldflags, "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build -ldflags %q: %v\n%s", ldflags, err, out)
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatalf("--version: %v", err)
	}
	want := "flux-commit-tracker v9.8.7 (commit " + commit + ", built 2026-12-02T17:04:05Z, " +
		runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + ")\n"
	if string(out) != want {
		t.Errorf("--version = %q, want %q", out, want)
	}
}

// TestVersionFallsBackToBuildInfo: without -ldflags, the module version and the VCS stamp of the Go toolchain.
func TestVersionFallsBackToBuildInfo(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.4.0"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.time", Value: "2026-11-30T10:00:00Z"}, {Key: "vcs.modified", Value: "true"},
	}}
	for _, tc := range []struct {
		name                  string
		version, commit, date string
		bi                    *debug.BuildInfo
		want                  build
	}{
		{"build info only", "dev", "", "", bi, build{"v1.4.0", "abc123-dirty", "2026-11-30T10:00:00Z", "go1.26.8"}},
		{"ldflags win", "v2.0.0", "fff", "2026-12-01T00:00:00Z", bi, build{"v2.0.0", "fff", "2026-12-01T00:00:00Z", "go1.26.8"}},
		{"a devel build keeps dev", "dev", "", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}, build{"dev", "", "", "go1.26.8"}},
		{"no build info", "dev", "", "", nil, build{"dev", "", "", runtime.Version()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := resolveBuild(tc.version, tc.commit, tc.date, tc.bi, tc.bi != nil); got != tc.want {
				t.Errorf("resolveBuild = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestRunPrintsTheFullVersion: --version anywhere before "--" prints the build line; the version also reaches
// the command (and so service.version) alone.
func TestRunPrintsTheFullVersion(t *testing.T) {
	b := build{Version: "v1.2.3", Commit: "abc", Date: "2026-12-02T00:00:00Z", GoVersion: "go1.26.8"}
	var out bytes.Buffer
	deps := app.Deps{Getenv: func(string) string { return "" }, Stdout: &out, Stderr: &out}
	if code := run(context.Background(), []string{"--log-level=debug", "--version"}, deps, b); code != 0 {
		t.Fatalf("exit %d: %s", code, out.String())
	}
	if !regexp.MustCompile(`^flux-commit-tracker v1\.2\.3 \(commit abc, built 2026-12-02T00:00:00Z, go1\.26\.8 \w+/\w+\)\n$`).MatchString(out.String()) {
		t.Errorf("--version printed %q", out.String())
	}
	out.Reset()
	if code := run(context.Background(), []string{"--help"}, deps, b); code != 0 || strings.Contains(out.String(), "commit abc") {
		t.Errorf("--help (exit %d) printed the build line:\n%s", code, out.String())
	}
	if wantsVersion([]string{"where", "--", "--version"}) {
		t.Error(`--version after "--" is an argument, not the flag`)
	}
}

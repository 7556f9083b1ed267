// Command flux-commit-tracker records how long each commit takes from commit to applied by Flux.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"

	"golang.org/x/term"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/app"
)

// Set at build time with -ldflags "-X main.version=… -X main.commit=… -X main.date=…"; see docs/release.md.
var (
	version = "dev"
	commit  = ""
	date    = ""
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	bi, ok := debug.ReadBuildInfo()
	code := run(ctx, os.Args[1:], app.Deps{
		Getenv:     os.Getenv,
		Stdout:     os.Stdout,
		Stderr:     os.Stderr,
		IsTerminal: term.IsTerminal(int(os.Stdout.Fd())),
	}, resolveBuild(version, commit, date, bi, ok))
	stop()
	os.Exit(code)
}

// run answers --version with the full build information, and runs the command line otherwise.
func run(ctx context.Context, args []string, deps app.Deps, b build) int {
	deps.Version = b.Version
	if wantsVersion(args) {
		_, _ = fmt.Fprintln(deps.Stdout, b)
		return 0
	}
	return app.Run(ctx, args, deps)
}

// wantsVersion reports whether --version is among the flags (before a "--").
func wantsVersion(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "--version", "--version=true":
			return true
		}
	}
	return false
}

// build is what the binary knows of how it was built.
type build struct {
	Version, Commit, Date, GoVersion string
}

// String is the --version line: version, commit, build date, Go version, platform.
func (b build) String() string {
	orUnknown := func(s string) string {
		if s == "" {
			return "unknown"
		}
		return s
	}
	return fmt.Sprintf("flux-commit-tracker %s (commit %s, built %s, %s %s/%s)",
		b.Version, orUnknown(b.Commit), orUnknown(b.Date), b.GoVersion, runtime.GOOS, runtime.GOARCH)
}

// resolveBuild takes the -ldflags values, and falls back to what the Go toolchain recorded: the module version
// of `go install …@vX`, and the VCS revision and commit time of a build from a git checkout.
func resolveBuild(version, commit, date string, bi *debug.BuildInfo, ok bool) build {
	b := build{Version: version, Commit: commit, Date: date, GoVersion: runtime.Version()}
	if !ok || bi == nil {
		return b
	}
	if bi.GoVersion != "" {
		b.GoVersion = bi.GoVersion
	}
	if (b.Version == "" || b.Version == "dev") && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		b.Version = bi.Main.Version
	}
	if b.Version == "" {
		b.Version = "dev"
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	if b.Commit == "" && settings["vcs.revision"] != "" {
		b.Commit = settings["vcs.revision"]
		if settings["vcs.modified"] == "true" {
			b.Commit += "-dirty"
		}
	}
	if b.Date == "" {
		b.Date = settings["vcs.time"]
	}
	return b
}

package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/monitoring"
)

func TestRunWritesEveryFile(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "go.mod"), []byte("module example.com/x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run([]string{"-root", root}, io.Discard); err != nil {
		t.Fatal(err)
	}
	files, err := monitoring.Files()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		got, err := os.ReadFile(filepath.Join(root, f.Path))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, f.Content) {
			t.Errorf("%s differs from what the code generates", f.Path)
		}
	}
}

func TestRunRefuses(t *testing.T) {
	for name, tc := range map[string]struct {
		args    []string
		wantErr string
	}{
		"no go.mod":            {nil, "not the repository root"},
		"threshold off bucket": {[]string{"-threshold", "20m", "-out", "x"}, "not a bucket boundary"},
		"objective too high":   {[]string{"-objective", "1.5", "-out", "x"}, "not between 0 and 1"},
		"custom over shipped":  {[]string{"-objective", "0.995"}, "go to -out"},
	} {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			args := append([]string{"-root", root}, tc.args...)
			for i, a := range args {
				if a == "x" {
					args[i] = filepath.Join(root, "x")
				}
			}
			err := run(args, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("run = %v, want an error with %q", err, tc.wantErr)
			}
			if entries, _ := os.ReadDir(root); len(entries) != 0 {
				t.Errorf("run left %d entries", len(entries))
			}
		})
	}
}

func TestRunWritesCustomRules(t *testing.T) {
	out := filepath.Join(t.TempDir(), "rules")
	if err := run([]string{"-objective", "0.995", "-threshold", "10m", "-out", out}, io.Discard); err != nil {
		t.Fatal(err)
	}
	rules, err := os.ReadFile(filepath.Join(out, "rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`le=~"600(\\.0)?"`, "(14.4 * 0.005)", "99.5% of commits applied within 10 minutes"} {
		if !strings.Contains(string(rules), want) {
			t.Errorf("rules.yaml lacks %q", want)
		}
	}
	object, err := os.ReadFile(filepath.Join(out, "prometheusrule.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(object), "kind: PrometheusRule") || !strings.Contains(string(object), "(14.4 * 0.005)") {
		t.Error("prometheusrule.yaml is not the custom PrometheusRule")
	}
}

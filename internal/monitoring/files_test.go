package monitoring

import (
	"bytes"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the generated dashboards and rules from the code")

const repoRoot = "../.."

// TestGeneratedFilesUpToDate fails when a shipped dashboard or rule file is not what the code generates, or
// when a dashboard or a file with the generated header is not generated (one left behind by a rename); -update
// rewrites them. Hand-written files beside them (a kustomization) are left alone.
func TestGeneratedFilesUpToDate(t *testing.T) {
	files, err := Files()
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := Write(repoRoot); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]bool{}
	for _, f := range files {
		want[f.Path] = true
		got, err := os.ReadFile(filepath.Join(repoRoot, f.Path))
		if err != nil {
			t.Errorf("%s: %v; run: go run ./hack/gen-monitoring", f.Path, err)
			continue
		}
		if !bytes.Equal(got, f.Content) {
			t.Errorf("%s is stale (first difference at line %d); run: go run ./hack/gen-monitoring", f.Path, firstDiffLine(got, f.Content))
		}
	}
	for _, dir := range []string{ConfigDir, ChartDir} {
		err := filepath.WalkDir(filepath.Join(repoRoot, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, err := filepath.Rel(repoRoot, path)
			if err != nil {
				return err
			}
			if want[filepath.ToSlash(rel)] {
				return nil
			}
			content, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if filepath.Base(filepath.Dir(path)) == "dashboards" || bytes.HasPrefix(content, []byte(generatedHeader)) {
				t.Errorf("%s looks generated but is not: remove it or generate it", rel)
			}
			return nil
		})
		if err != nil {
			t.Error(err)
		}
	}
}

// firstDiffLine is the 1-based line where a and b first differ.
func firstDiffLine(a, b []byte) int {
	al, bl := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := range min(len(al), len(bl)) {
		if al[i] != bl[i] {
			return i + 1
		}
	}
	return min(len(al), len(bl)) + 1
}

func TestFilesShipTheSameContentTwice(t *testing.T) {
	files, err := Files()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string][]byte{}
	for _, f := range files {
		if !strings.HasPrefix(f.Path, ConfigDir+"/") && !strings.HasPrefix(f.Path, ChartDir+"/") {
			t.Errorf("%s is outside the generated folders", f.Path)
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(f.Path, ConfigDir+"/"), ChartDir+"/")
		if prev, ok := byName[rel]; ok && !bytes.Equal(prev, f.Content) {
			t.Errorf("%s differs between %s and %s", rel, ConfigDir, ChartDir)
		}
		byName[rel] = f.Content
	}
	for _, rel := range []string{"dashboards/commit-delivery.json", "dashboards/flux-cluster.json", "rules.yaml", "prometheusrule.yaml"} {
		if len(byName[rel]) == 0 {
			t.Errorf("no %s generated", rel)
		}
	}
}

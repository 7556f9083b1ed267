package monitoring

import (
	"fmt"
	"os"
	"path/filepath"
)

// File is one generated file: its path from the repository root and its content.
type File struct {
	Path    string
	Content []byte
}

// Where the generated files go: the kustomize-side config and the Helm chart's files.
const (
	ConfigDir = "config/monitoring"
	ChartDir  = "charts/flux-commit-tracker/files"
)

// Files renders the dashboards and the default rules into every file the repository ships.
func Files() ([]File, error) {
	deliveryJSON, err := commitDeliveryJSON()
	if err != nil {
		return nil, err
	}
	clusterJSON, err := fluxClusterJSON()
	if err != nil {
		return nil, err
	}
	spec, err := Rules(DefaultOptions())
	if err != nil {
		return nil, err
	}
	rules, err := RulesFile(spec)
	if err != nil {
		return nil, err
	}
	object, err := PrometheusRuleFile(spec)
	if err != nil {
		return nil, err
	}
	var out []File
	for _, dir := range []string{ConfigDir, ChartDir} {
		out = append(out,
			File{Path: dir + "/dashboards/commit-delivery.json", Content: deliveryJSON},
			File{Path: dir + "/dashboards/flux-cluster.json", Content: clusterJSON},
			File{Path: dir + "/rules.yaml", Content: rules})
	}
	return append(out, File{Path: ConfigDir + "/prometheusrule.yaml", Content: object}), nil
}

// Write writes every file of [Files] under the repository root.
func Write(root string) error {
	files, err := Files()
	if err != nil {
		return err
	}
	for _, f := range files {
		path := filepath.Join(root, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return fmt.Errorf("monitoring: %w", err)
		}
		if err := os.WriteFile(path, f.Content, 0o644); err != nil {
			return fmt.Errorf("monitoring: %w", err)
		}
	}
	return nil
}

// WriteRules writes the rules for o into dir as rules.yaml and prometheusrule.yaml.
func WriteRules(dir string, o Options) error {
	spec, err := Rules(o)
	if err != nil {
		return err
	}
	rules, err := RulesFile(spec)
	if err != nil {
		return err
	}
	object, err := PrometheusRuleFile(spec)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("monitoring: %w", err)
	}
	for name, content := range map[string][]byte{"rules.yaml": rules, "prometheusrule.yaml": object} {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o644); err != nil {
			return fmt.Errorf("monitoring: %w", err)
		}
	}
	return nil
}

// Command gen-monitoring writes the Grafana dashboards and Prometheus rules of internal/monitoring into
// config/monitoring and the Helm chart's files; run it from the repository root (make generate). With SLO
// flags it writes rules for that SLO into -out instead, leaving the shipped files alone.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/monitoring"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "gen-monitoring:", err)
		os.Exit(1)
	}
}

// run writes the shipped files under -root, or with -out the rules for the options given.
func run(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("gen-monitoring", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := monitoring.DefaultOptions()
	root := fs.String("root", ".", "the repository root, where the shipped files go")
	out := fs.String("out", "", "write rules.yaml and prometheusrule.yaml for the options below into this folder instead")
	o := def
	fs.Float64Var(&o.Objective, "objective", def.Objective, "share of commits the delivery SLO wants applied within -threshold")
	fs.DurationVar(&o.Threshold, "threshold", def.Threshold, "commit → applied time of the SLO; a bucket boundary of the reconcile-time histogram")
	fs.DurationVar(&o.StuckAfter, "stuck-after", def.StuckAfter, "alert on a commit waiting, or a revision failing, for longer")
	fs.DurationVar(&o.NotReadyFor, "not-ready-for", def.NotReadyFor, "alert on a Flux object not ready for longer")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := o.Validate(); err != nil {
		return err
	}
	if *out != "" {
		return monitoring.WriteRules(*out, o)
	}
	if o != def {
		return errors.New("rules for other options go to -out: the shipped files keep the defaults")
	}
	if _, err := os.Stat(filepath.Join(*root, "go.mod")); err != nil {
		return fmt.Errorf("%s is not the repository root: %w", *root, err)
	}
	return monitoring.Write(*root)
}

package telemetry

import (
	"flag"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the README metrics region from Definitions")

const (
	beginMarker = "<!-- metrics:begin -->\n"
	endMarker   = "<!-- metrics:end -->"
)

// TestREADMEMetricsTable fails when the README's metrics region is not what
// MarkdownTable renders; -update rewrites it.
func TestREADMEMetricsTable(t *testing.T) {
	const path = "../../README.md"
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	begin := strings.Index(readme, beginMarker)
	end := strings.Index(readme, endMarker)
	if begin < 0 || end < begin {
		t.Fatalf("%s: no %q … %q region", path, strings.TrimSpace(beginMarker), endMarker)
	}
	begin += len(beginMarker)
	want := MarkdownTable()
	if readme[begin:end] == want {
		return
	}
	if *update {
		if err := os.WriteFile(path, []byte(readme[:begin]+want+readme[end:]), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("updated %s", path)
		return
	}
	t.Errorf("%s metrics region is stale; run: go test ./internal/telemetry -run TestREADMEMetricsTable -update\n--- want\n%s", path, want)
}

func TestMarkdownTableRows(t *testing.T) {
	table := MarkdownTable()
	for _, d := range Definitions {
		prom, err := PrometheusName(d)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(table, "| `"+d.Name+"` | `"+prom+"` |") {
			t.Errorf("no row for %s", d.Name)
		}
	}
}

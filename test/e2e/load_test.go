package e2e

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flux-commit-tracker/flux-commit-tracker/test/apptest"
	"github.com/flux-commit-tracker/flux-commit-tracker/test/stack"
)

// BenchmarkFiftyKustomizationsTwentyRevisions runs the tracker binary beside real Flux while 50 Kustomizations on
// one repository apply 20 revisions, and reports the tracker's CPU time and peak RSS and how far each measured
// reconcile time is from the truth (Flux's Ready transition − the commit time written to git).
// Run it with -benchtime=1x: one iteration is the whole scenario.
func BenchmarkFiftyKustomizationsTwentyRevisions(b *testing.B) {
	const objects, revisions = 50, 20
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	bin := filepath.Join(b.TempDir(), "flux-commit-tracker")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "../../cmd/flux-commit-tracker").CombinedOutput(); err != nil {
		b.Fatalf("build tracker: %v\n%s", err, out)
	}
	for range b.N {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "load-"}}
		if err := flux.Client().Create(ctx, ns); err != nil {
			b.Fatal(err)
		}
		repo, err := flux.NewRepo(ns.Name)
		if err != nil {
			b.Fatal(err)
		}
		names := make([]string, objects)
		for i := range names {
			names[i] = fmt.Sprintf("k%02d", i)
		}
		files := func(v int) map[string]string {
			f := map[string]string{}
			for _, n := range names {
				f[n+"/cm.yaml"] = stack.ConfigMapManifest(ns.Name, n, map[string]string{"version": strconv.Itoa(v)})
			}
			return f
		}
		commitTimes := map[string]time.Time{}
		commit := func(v int) string {
			when := time.Now().Add(-2 * time.Second).Truncate(time.Second)
			sha, err := repo.Commit(fmt.Sprint("v", v), files(v), when)
			if err != nil {
				b.Fatal(err)
			}
			commitTimes[sha] = when
			return sha
		}
		c0 := commit(0)
		if err := flux.CreateGitRepository(ctx, ns.Name, "manifests", repo.URL()); err != nil {
			b.Fatal(err)
		}
		for _, n := range names {
			if err := flux.CreateKustomization(ctx, ns.Name, n, "manifests", "./"+n); err != nil {
				b.Fatal(err)
			}
		}
		for _, n := range names {
			if _, err := flux.WaitApplied(ctx, ns.Name, n, c0); err != nil {
				b.Fatal(err)
			}
		}

		out := apptest.NewOutput(objects * revisions * 2)
		cmd := exec.CommandContext(ctx, bin, "--kubeconfig", flux.Kubeconfig(), "--namespace", ns.Name, "--watch-namespace", ns.Name,
			"--git-cache-dir", b.TempDir(), "--metrics-addr", "127.0.0.1:0", "--health-addr", "127.0.0.1:0")
		cmd.Stdout, cmd.Stderr = out, out
		cmd.Env = []string{"HOME=" + b.TempDir()}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		apptest.Eventually(b, 30*time.Second, "baselines", func() bool { return strings.Count(out.String(), "first sight of object") == objects })

		truth := map[string]float64{} // name/sha → seconds
		b.ResetTimer()
		for v := 1; v <= revisions; v++ {
			sha := commit(v)
			if err := flux.RequestReconcile(ctx, ns.Name, "manifests"); err != nil {
				b.Fatal(err)
			}
			for _, n := range names {
				ks, err := flux.WaitApplied(ctx, ns.Name, n, sha)
				if err != nil {
					b.Fatal(err)
				}
				ready := ks.Status.Conditions[0].LastTransitionTime.Time
				for _, c := range ks.Status.Conditions {
					if c.Type == "Ready" {
						ready = c.LastTransitionTime.Time
					}
				}
				truth[n+"/"+sha] = ready.Sub(commitTimes[sha]).Seconds()
			}
		}
		apptest.Eventually(b, time.Minute, "every sample recorded", func() bool { return len(out.Applied()) >= objects*revisions })
		b.StopTimer()
		cpu, rss := procUsage(b, cmd.Process.Pid)
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()

		var errs []float64
		recorded := out.Applied()
		if len(recorded) != objects*revisions {
			b.Fatalf("recorded %d samples, want %d", len(recorded), objects*revisions)
		}
		for _, c := range recorded {
			want, ok := truth[c.Name+"/"+c.Commit]
			if !ok {
				b.Fatalf("sample for unexpected %s/%s", c.Name, c.Commit)
			}
			errs = append(errs, math.Abs(c.ReconcileSeconds-want))
		}
		sort.Float64s(errs)
		b.ReportMetric(errs[len(errs)-1]*1000, "err-max-ms")
		b.ReportMetric(errs[int(0.99*float64(len(errs)))]*1000, "err-p99-ms")
		b.ReportMetric(cpu.Seconds(), "tracker-cpu-s")
		b.ReportMetric(float64(rss)/(1<<20), "tracker-peak-rss-MiB")
		b.ReportMetric(float64(len(recorded)), "samples")
	}
}

// procUsage reads a process's CPU time (user + system) and peak resident set size from /proc.
func procUsage(tb testing.TB, pid int) (time.Duration, int64) {
	tb.Helper()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		tb.Fatal(err)
	}
	// Fields after the parenthesised command name; utime and stime are the 12th and 13th of those, in clock ticks.
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	const ticksPerSecond = 100 // USER_HZ on Linux
	cpu := time.Duration(utime+stime) * time.Second / ticksPerSecond

	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	var rss int64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if kb, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(kb), "kB")), 10, 64)
			rss = n << 10
		}
	}
	return cpu, rss
}

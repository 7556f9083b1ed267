// Command demo runs flux-commit-tracker against a local Flux and prints a live latency table (make demo).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/flux-commit-tracker/flux-commit-tracker/test/demo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	commits := 0
	if v := os.Getenv("DEMO_COMMITS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			fmt.Fprintf(os.Stderr, "demo: DEMO_COMMITS=%q: want a whole number of commits (0 runs until Ctrl-C)\n", v)
			os.Exit(2)
		}
		commits = n
	}
	if err := demo.Run(ctx, demo.Options{Commits: commits, MetricsAddr: "127.0.0.1:8888"}); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		stop()
		os.Exit(1)
	}
}

# flux-commit-tracker build, test and verification targets.
SHELL := /usr/bin/env bash
GO ?= go
BIN := bin/flux-commit-tracker
TOOLS_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/flux-commit-tracker/tools
export TOOLS_DIR
GOLANGCI_LINT_VERSION ?= v2.15.0
GOLANGCI_LINT := $(TOOLS_DIR)/golangci-lint-$(GOLANGCI_LINT_VERSION)
FUZZTIME ?= 30s
PKGS := ./...

.PHONY: all build generate test test-assets demo e2e faults bench-scale lint fuzz fuzz-short verify ci fmt fmt-check vet bench clean

all: build

build: ## Build the tracker binary into bin/.
	$(GO) build -trimpath -o $(BIN) ./cmd/flux-commit-tracker

generate: ## Regenerate the Grafana dashboards and Prometheus rules (config/monitoring, the chart's files) from internal/monitoring.
	$(GO) run ./hack/gen-monitoring

test-assets: ## Install etcd and promtool, build kube-apiserver and the Flux controllers, collect the Flux CRDs (skipped when present).
	@./hack/test-assets.sh >/dev/null
	@./hack/flux-assets.sh >/dev/null
	@./hack/monitoring-assets.sh >/dev/null

# Where the tests find etcd + kube-apiserver, the Flux CRDs and the Flux controllers.
TEST_ENV = KUBEBUILDER_ASSETS="$$(./hack/test-assets.sh)" FLUX_CRDS_DIR="$(TOOLS_DIR)/flux-crds" FLUX_BIN_DIR="$$(./hack/flux-assets.sh)"

test: test-assets fmt-check vet ## Run every test with the race detector: real kube-apiserver + etcd, real Flux controllers.
	$(TEST_ENV) $(GO) test -race -count=1 -timeout 30m $(PKGS)

DEMO_COMMITS ?= 0

demo: test-assets ## Run the tracker against a local Flux with a live latency table; DEMO_COMMITS=N stops after N commits.
	$(TEST_ENV) DEMO_COMMITS=$(DEMO_COMMITS) $(GO) run ./hack/demo

e2e: test-assets ## Run the end-to-end suite against the real Flux controllers (also part of make test).
	$(TEST_ENV) $(GO) test -race -count=1 -timeout 20m ./test/e2e/

faults: test-assets ## The full fault suite (kill -9, two writers, leader failover, apiserver restarts, GitHub faults); figures in docs/reliability.md.
	set -o pipefail; $(TEST_ENV) FAULTS_FULL=1 $(GO) test -count=1 -v -timeout 40m -run . ./test/faults/ | grep -E '^(=== RUN|--- |ok|FAIL|PASS)|faults_test.go'

SCALE_OBJECTS ?= 10000
SCALE_HELMRELEASES ?= 1000
SCALE_CHURN ?= 5m

bench-scale: test-assets ## The scale benchmark: SCALE_OBJECTS Kustomizations and SCALE_HELMRELEASES HelmReleases on a real apiserver, the tracker binary scraped; figures in docs/performance.md.
	set -o pipefail; $(TEST_ENV) SCALE_OBJECTS=$(SCALE_OBJECTS) SCALE_HELMRELEASES=$(SCALE_HELMRELEASES) SCALE_CHURN=$(SCALE_CHURN) SCALE_PROFILE_DIR=$(SCALE_PROFILE_DIR) $(GO) test -count=1 -v -timeout 90m -run TestScale ./test/scale/ | grep -E '^(=== RUN|--- |ok|FAIL|PASS)|scale_test.go'

bench: test-assets ## Run the benchmarks recorded in docs/performance.md.
	$(TEST_ENV) $(GO) test -run '^$$' -bench . -benchmem $(PKGS)

fuzz: test-assets ## Run each fuzz target for FUZZTIME.
	@set -e; for file in $$(git grep -l '^func Fuzz' -- '*_test.go'); do \
		for target in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$file); do \
			echo "fuzz ./$$(dirname $$file) $$target"; \
			$(TEST_ENV) $(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) ./$$(dirname $$file); \
		done; \
	done

# A count, not a duration: Go 1.26's coordinator can report its own -fuzztime deadline as a failure (go.dev/issue/75804).
fuzz-short: ## Run each fuzz target for 20,000 inputs (CI).
	@$(MAKE) --no-print-directory fuzz FUZZTIME=20000x

ci: test verify fuzz-short ## What .ci/run runs: make test, then lint and each fuzz target briefly.

fmt:
	gofmt -w $$(git ls-files '*.go')

fmt-check:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed: run make fmt"; exit 1; }

vet:
	$(GO) vet $(PKGS)

$(GOLANGCI_LINT):
	GOBIN=$(TOOLS_DIR)/golangci-bin $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	mv $(TOOLS_DIR)/golangci-bin/golangci-lint $@

lint: $(GOLANGCI_LINT) ## Lint with the repository's golangci-lint config.
	$(GOLANGCI_LINT) run $(PKGS)

verify: fmt-check vet lint ## Fail on unformatted code, lint findings, an untidy go.mod, a stale README metrics table or stale dashboards and rules.
	$(GO) mod tidy -diff
	$(GO) test ./internal/telemetry -run TestREADMEMetricsTable
	$(GO) test ./internal/monitoring -run TestGeneratedFilesUpToDate
	$(GO) test ./test/deploy -run TestRoleNamesEveryLedgerShard

clean:
	rm -rf bin

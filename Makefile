# orderflow: `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
BIN := bin

.PHONY: help run test build lint fmt bench chaos fuzz clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

run: build ## the embedded default: worker + demo orders, watched until all are terminal; Ctrl-C stops
	@./scripts/demo.sh

# The process-level suites (e2e, chaos) run after the rest, one package at
# a time: they measure quotas and kill processes, and want the cores.
SLOW_PKGS := ./e2e ./internal/chaos
test: ## the whole suite, with -race (REQUIRE_REDIS=1 makes a missing redis-server a failure)
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 10m $$($(GO) list ./... | grep -vE '/(e2e|chaos)$$')
	$(GO) test -race -count=1 -timeout 15m -p 1 $(SLOW_PKGS)
	@for f in $${TMPDIR:-/tmp}/orderflow-console-screens/*.png; do [ -e "$$f" ] && echo "browser screenshot: $$f"; done; true

build: ## build bin/worker, bin/enqueue, bin/providersim
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

lint: ## gofmt, go vet, and golangci-lint when installed
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt: files above need formatting'; exit 1; }
	$(GO) vet ./...
	@if command -v golangci-lint >/dev/null; then golangci-lint run ./...; else echo 'golangci-lint not installed: skipped (go vet and gofmt ran)'; fi

fmt: ## format the code
	gofmt -w $$(git ls-files '*.go')

bench: ## benchmarks against a real redis-server and the simulator, as ratios to same-run baselines; then the console at 10^5 orders
	$(GO) run ./cmd/bench
	ORDERFLOW_SCALE=1 $(GO) test -count=1 -run 'TestConsoleAtScale' -v ./internal/console | grep -E 'at [0-9]+ orders|^(ok|FAIL|---)'


chaos: ## 1,000 orders, 3 workers SIGKILLed in turn, a Redis restart, provider faults; checks nothing lost or doubled
	$(GO) run ./cmd/chaos

FUZZTIME ?= 20s
fuzz: ## run every fuzz target for FUZZTIME each
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; done

clean: ## remove build output
	rm -rf $(BIN)

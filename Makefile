# Targets match the CI steps. `make test` is the whole suite; as root it also
# runs the network-namespace tests against real processes.
GO      ?= go
BIN     := bin
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)
BUILD_DATE ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.buildDate=$(BUILD_DATE)
# FUZZTIME is a count of executions (Nx), not a duration: Go 1.26's fuzz
# coordinator can report a spurious "context deadline exceeded" when a
# duration runs out while a worker is busy (go.dev/issue/75804).
FUZZTIME ?= 10000x
.PHONY: all build test unit fuzz-smoke fuzz bench soak demo deps lint clean

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/overlay-node ./cmd/overlay-node
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/overlay-node-cni ./cmd/overlay-node-cni

# deps installs the Debian tools the tests need when they are missing (root
# only). Each entry is command:package.
DEBIAN_DEPS := \
	ip:iproute2 \
	ping:iputils-ping \
	wg:wireguard-tools \
	promtool:prometheus \
	iperf3:iperf3 \
	dig:bind9-dnsutils \
	nft:nftables \
	etcd:etcd-server \
	conntrack:conntrack \

deps:
	@missing=""; \
	for c in $(DEBIAN_DEPS); do \
		command -v $${c%%:*} >/dev/null 2>&1 || missing="$$missing $${c##*:}"; \
	done; \
	if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing:$$missing"; \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# lint runs gofmt, vet and staticcheck (pinned by the tool directive in go.mod).
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags netbench ./bench/
	$(GO) vet -tags soak ./cmd/overlay-node/
	$(GO) tool staticcheck ./...
	$(GO) tool staticcheck -tags netbench ./bench/

unit:
	$(GO) test -race -short -count=1 ./...

# fuzz-smoke runs every fuzz target for FUZZTIME executions so `make test`
# exercises them.
fuzz-smoke:
	@for pkg in $$($(GO) list ./...); do \
		for t in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
			echo "fuzz $$pkg $$t"; \
			out=$$($(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg 2>&1) || { echo "$$out"; exit 1; }; \
		done; \
	done

test: deps lint build unit fuzz-smoke
	$(GO) test -count=1 -timeout 30m ./...

fuzz:
	$(MAKE) fuzz-smoke FUZZTIME=1000000x

# bench runs the in-process benchmarks, then, as root, the network-namespace
# side-by-side against wireguard-go and Nebula, at its defaults and tuned
# (bench/README.md), which prints its table and writes bench/RESULTS.md.
# BENCH_ROUNDS (5), BENCH_SECONDS (5) and BENCH_PEERS (10000) set its length:
# about 8 minutes in all by default, plus a minute to build Nebula the first time.
BENCH_ENGINE_LOG := $(BIN)/bench-engine.txt
bench: deps
	@mkdir -p $(BIN)
	bash -o pipefail -c "$(GO) test -run '^$$' -bench . -benchmem ./... | tee $(BENCH_ENGINE_LOG)"
	@if [ "$$(id -u)" != 0 ]; then \
		echo "bench: skipping the netns side-by-side against wireguard-go and Nebula: it needs root"; \
	else \
		echo "BENCH_VIA='make bench' $(GO) test -tags netbench -run '^TestSideBySide$$' -v -count=1 -timeout 30m ./bench/"; \
		BENCH_VIA="make bench" BENCH_ENGINE_LOG="$(CURDIR)/$(BENCH_ENGINE_LOG)" \
			$(GO) test -tags netbench -run '^TestSideBySide$$' -v -count=1 -timeout 30m ./bench/; \
	fi

# soak runs two nodes through an impairing relay (3% loss, 3% duplication,
# 5% reordering, jitter) with mixed TCP, UDP and ping for SOAK_DURATION, and
# prints RSS, goroutines and open descriptors over time (root only; not
# part of make test).
SOAK_DURATION ?= 10m
soak: deps
	SOAK_DURATION=$(SOAK_DURATION) $(GO) test -tags soak -run '^TestSoak$$' -v -count=1 -timeout 3h ./cmd/overlay-node/

demo: deps build
	./examples/demo/demo.sh

clean:
	rm -rf $(BIN)

# goroscope — build, test and run. See README.md.
GO        ?= go
BIN       := bin/goroscope
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
DATA_DIR  ?= ./data
LISTEN    ?= 127.0.0.1:7070

# The nested modules: the programs the tests build and run as targets.
MODULES   := $(shell git ls-files '*/go.mod' 2>/dev/null | xargs -r -n1 dirname)
# The packages whose code runs goroutines, atomics and locks: make test runs
# their unit tests (-short) again under the race detector.
RACE_PKGS := ./agent/bpfload ./agent/daemon ./agent/ui ./bpf ./collect/cpu ./collect/exits ./collect/panics ./collect/process \
             ./collect/scrape ./collect/walk ./pkg/inproc ./pkg/store ./push/queue ./push/spool \
             ./test/eventually ./test/faults ./test/receivers

.PHONY: build test test-short vet run demo generate bench kernels lint clean

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./agent

# The one test command: README and .ci/run use it. BPF tests need root; with
# CI=true a BPF test that cannot load its program fails instead of skipping.
# Then the unit tests of the concurrent packages again, under -race.
test: vet
	$(GO) test -count=1 -timeout 25m ./...
	$(GO) test -count=1 -timeout 10m -race -short $(RACE_PKGS)

# The inner loop: go vet and the tests that build and start nothing slow
# (-short), with go test's cache. See CONTRIBUTING.md.
test-short: vet
	$(GO) test -short ./...

vet:
	$(GO) vet ./...
	@for m in $(MODULES); do echo "(cd $$m && $(GO) vet ./...)"; (cd $$m && $(GO) vet ./...) || exit 1; done

# The agent on its embedded default: local store and web UI, no backend.
run: build
	$(BIN) agent --listen $(LISTEN) --data-dir $(DATA_DIR)

# A demo program with a known, slowly growing goroutine population (a
# leak the agent reports as a finding within two minutes), to see
# something in the UI at once. It runs until stopped (Ctrl-C, or kill with
# the pid it prints; make passes a SIGTERM on), in the background too
# (make demo &, nohup make demo &): it does not read stdin. exec makes it
# make's own child, so that signals reach it (go run would not pass them).
demo:
	cd test/targets && $(GO) build -o $(CURDIR)/bin/demo-population ./population
	@echo "demo: a goroutine population that grows by 5 a second; see it in the agent's UI, http://$(LISTEN)/ (start the agent in another terminal: make run, as root)"
	exec $(CURDIR)/bin/demo-population -grow 5 -stdin=false

# Regenerate the BPF objects (needs clang, llvm, bpftool), the runtime
# layout tables (needs the Go toolchains 1.21–1.26 from the module proxy)
# and the Grafana dashboard (deploy/grafana/dashboard).
generate:
	$(GO) generate ./bpf/... ./pkg/golayout/...
	$(GO) generate ./deploy/grafana/dashboard

# Benchmarks: Go benchmarks plus the harness that writes docs/benchmarks.md.
bench: kernels
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./...
	$(GO) run ./test/bench -out docs/benchmarks.md

# The kernel matrix (test/kernels, which make test runs too): the eBPF tests
# on Debian's 6.1 and 6.12 kernels in qemu, and here on the host kernel;
# writes the table to docs/kernel-matrix.md and README.md. Needs root.
kernels:
	$(GO) test -count=1 -timeout 15m -run TestKernelMatrix -v ./test/kernels -update

# gofmt, a tidy go.mod, go vet, and staticcheck and errcheck at the
# versions go.mod pins (its tool block: go get -tool PKG@VERSION to change
# them). errcheck's exclusions, with why, are in .ci/errcheck-excludes.
# .ci/run runs it before make test.
lint: vet
	$(GO) mod tidy -diff
	@out=$$(gofmt -l $$(git ls-files --cached --others --exclude-standard '*.go' | xargs -r ls -d 2>/dev/null)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) tool staticcheck ./...
	$(GO) tool errcheck -exclude .ci/errcheck-excludes ./...

clean:
	rm -rf bin

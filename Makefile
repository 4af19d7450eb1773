# goroscope — build, test and run. See README.md.
GO        ?= go
BIN       := bin/goroscope
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
DATA_DIR  ?= ./data
LISTEN    ?= 127.0.0.1:7070

.PHONY: build test run demo generate bench kernels lint clean

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./agent

# The one test command: README and .ci/run use it. BPF tests need root; with
# CI=true a BPF test that cannot load its program fails instead of skipping.
test:
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 25m ./...

# The agent on its embedded default: local store and web UI, no backend.
run: build
	$(BIN) agent --listen $(LISTEN) --data-dir $(DATA_DIR)

# A demo program with a known, slowly growing goroutine population, to see
# something in the UI at once (run it in a second terminal).
demo:
	cd test/targets && $(GO) run ./population -grow 5

# Regenerate the BPF objects (needs clang, llvm, bpftool) and the runtime
# layout tables (needs the Go toolchains 1.21–1.26 from the module proxy).
generate:
	$(GO) generate ./bpf/... ./pkg/golayout/...

# Benchmarks: Go benchmarks plus the harness that writes docs/benchmarks.md.
bench: kernels
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./...
	$(GO) run ./test/bench -out docs/benchmarks.md

# The kernel matrix (test/kernels, which make test runs too): the eBPF tests
# on Debian's 6.1 and 6.12 kernels in qemu, and here on the host kernel;
# writes the table to docs/kernel-matrix.md and README.md. Needs root.
kernels:
	$(GO) test -count=1 -timeout 15m -run TestKernelMatrix -v ./test/kernels -update

lint:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

clean:
	rm -rf bin

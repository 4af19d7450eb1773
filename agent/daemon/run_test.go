package daemon

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goroscope/goroscope/agent/bpfload"
	"github.com/goroscope/goroscope/agent/bpfload/bpfloadtest"
	"github.com/goroscope/goroscope/collect/discovery"
	"github.com/goroscope/goroscope/test/eventually"
)

// lateScanner counts the scans made after Run returned.
type lateScanner struct {
	discoverer
	returned atomic.Bool
	late     atomic.Int32
}

func (s *lateScanner) Scan() ([]discovery.Process, error) {
	if s.returned.Load() {
		s.late.Add(1)
	}
	return s.discoverer.Scan()
}

// TestRunFailureStopsEverything: when one of Run's goroutines fails (here
// the eBPF walker with --walker ebpf), Run returns its error only after
// every loop has stopped: none scans, walks or writes after Run returned
// and closed the store.
func TestRunFailureStopsEverything(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Listen = freeAddr(t)
	cfg.Walker = "ebpf"
	cfg.CPUFrequency = 0
	cfg.DiscoveryInterval = Duration(100 * time.Millisecond)
	cfg.Discovery = discovery.Rules{Include: []discovery.Match{ownTargets()}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), "dev")
	if err != nil {
		t.Fatal(err)
	}
	g := bpfloadtest.NewGatedLoader[bpfload.EBPFWalker]()
	a.loadWalker = g.Load
	scanner := &lateScanner{discoverer: a.scanner}
	a.scanner = scanner
	// The load fails once the agent serves: the failure stops a running
	// agent, not one still starting.
	go func() {
		if err := eventually.Wait(5*time.Second, func() error {
			if status, _ := tryGet("http://" + cfg.Listen + "/healthz"); status == 0 {
				return errors.New("/healthz does not answer")
			}
			return nil
		}); err != nil {
			t.Error(err) // and fail the load all the same, so that Run returns
		}
		g.Fail <- errors.New("no BPF here")
	}()
	done := make(chan error, 1)
	go func() { done <- a.Run(context.Background()) }()
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after the eBPF walker failed")
	}
	scanner.returned.Store(true)
	if err == nil || !strings.Contains(err.Error(), "--walker ebpf: no BPF here") {
		t.Fatalf("Run = %v, want the walker's failure", err)
	}
	// Watch five discovery intervals for late scans: a wait for nothing to
	// happen, which no condition can end sooner.
	time.Sleep(5 * time.Duration(cfg.DiscoveryInterval))
	if n := scanner.late.Load(); n != 0 {
		t.Errorf("%d discovery scans after Run returned", n)
	}
	if status, _ := tryGet("http://" + cfg.Listen + "/healthz"); status != 0 {
		t.Errorf("still serving after Run returned: /healthz %d", status)
	}
}

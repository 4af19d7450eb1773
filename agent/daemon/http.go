package daemon

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/goroscope/goroscope/agent/ui"
	"github.com/goroscope/goroscope/pkg/store"
)

// handler serves the agent's HTTP endpoints on Config.Listen: the web UI
// and its API behind HTTPConfig.guard, /metrics, /healthz and, when asked
// for, the agent's own /debug/pprof.
func (a *Agent) handler() (http.Handler, error) {
	mux := http.NewServeMux()
	a.serveHealth(mux)
	if a.cfg.HTTP.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.Handle("/", ui.NewWithOptions(agentSource{a}, ui.Options{Log: a.log, Registerer: a.metrics.reg,
		MaxHeavyRequests: a.cfg.HTTP.MaxHeavyRequests, MaxProfileBytes: int64(a.cfg.HTTP.MaxProfileBytes)}))
	guarded, err := a.cfg.HTTP.guard(mux)
	if err != nil {
		return nil, err
	}
	// /healthz answers any client, as probes do not authenticate.
	outer := http.NewServeMux()
	outer.Handle("/healthz", mux)
	outer.Handle("/", guarded)
	return outer, nil
}

// metricsHandler serves /metrics and /healthz alone, for
// HTTPConfig.MetricsListen.
func (a *Agent) metricsHandler() http.Handler {
	mux := http.NewServeMux()
	a.serveHealth(mux)
	return mux
}

// serveHealth adds /metrics and /healthz to mux.
func (a *Agent) serveHealth(mux *http.ServeMux) {
	mux.Handle("/metrics", promhttp.HandlerFor(a.metrics.reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelWarn)}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-a.ready:
			fmt.Fprintln(w, "ok")
		default:
			http.Error(w, "starting: first discovery scan not done", http.StatusServiceUnavailable)
		}
	})
}

// agentSource is the UI's ui.Source: the agent's live view and its store.
type agentSource struct{ a *Agent }

var _ ui.Source = agentSource{}

// Processes lists the watched processes, with the walker each walks
// with and, when not the eBPF walker, why, and the newest read of each
// one's runtime health (a read is never modified once made: the answer
// may share it).
func (s agentSource) Processes() []ui.Process {
	serving, reason := s.a.walkers.Status()
	s.a.mu.Lock()
	defer s.a.mu.Unlock()
	out := make([]ui.Process, 0, len(s.a.procs))
	for _, w := range s.a.procs {
		p := ui.Process{Process: w.storeProcess(), Live: true, Counts: w.counts, LastSnapshot: w.lastAt, Walker: w.snap.Walker(), Error: w.lastErr,
			Findings: w.findings, Runtime: w.runtimeHealth()}
		switch {
		case p.Walker != serving:
			p.WalkerReason = "moving to " + serving + " at the next snapshot"
		case reason != "":
			p.WalkerReason = reason
		}
		out = append(out, p)
	}
	return out
}

func (s agentSource) List(q store.Query) ([]store.Meta, error) { return s.a.store.List(q) }
func (s agentSource) Read(id uint64) ([]byte, error)           { return s.a.store.Read(id) }

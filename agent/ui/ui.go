package ui

import (
	"cmp"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/goroscope/goroscope/pkg/findings"
	"github.com/goroscope/goroscope/pkg/snapshot"
	"github.com/goroscope/goroscope/pkg/store"
)

// Source is what the UI reads: the agent's live view plus the local store.
type Source interface {
	// Processes returns the processes known now (live and recently seen).
	Processes() []Process
	// List returns stored entries (pkg/store).
	List(q store.Query) ([]store.Meta, error)
	// Read returns an entry's payload.
	Read(id uint64) ([]byte, error)
}

// Process is one process as the agent knows it now.
type Process struct {
	store.Process
	// Live is set while the process runs and is watched.
	Live bool `json:"live"`
	// Counts are the goroutines per state in the last snapshot.
	Counts snapshot.Counts `json:"counts"`
	// LastSnapshot is when the last snapshot was taken.
	LastSnapshot time.Time `json:"last_snapshot"`
	// Walker names the walker used ("ebpf", "procmem").
	Walker string `json:"walker,omitempty"`
	// WalkerReason says why Walker is not the eBPF walker: "loading", the
	// kernel's rejection of it, the configuration.
	WalkerReason string `json:"walker_reason,omitempty"`
	// Error is the last collection error, if any.
	Error string `json:"error,omitempty"`
	// Findings are those holding at the last snapshot, the worst first
	// (docs/findings-json.md).
	Findings []findings.Finding `json:"findings,omitempty"`
	// Runtime is the newest read of the live process's runtime settings
	// and health and its cgroup's limits (agent/daemon's runtime_health);
	// absent before the first read, when the reads are off, and for stored
	// processes.
	Runtime *findings.RuntimeHealth `json:"runtime,omitempty"`
}

//go:embed static
var staticFiles embed.FS

// Options tune the UI handler. Zero fields take the defaults.
type Options struct {
	// Log gets the UI's warnings (default: none).
	Log *slog.Logger
	// MaxHeavyRequests bounds the requests that read stored payloads —
	// goroutine tables, flame graphs, diffs, downloads, findings — served at once
	// (default 4). Past it they are refused with 503 and Retry-After.
	MaxHeavyRequests int
	// MaxProfileBytes bounds the decompressed size of a stored pprof
	// profile, which flame graphs, diffs and filtered downloads parse in
	// memory (default 2 MiB). Larger ones are refused with 413. A parsed
	// profile takes 5 (deep stacks) to 18 (a label set per sample) times
	// its encoded size: the default keeps one under about 40 MB.
	MaxProfileBytes int64
	// Registerer gets the UI's metrics (goroscope_ui_requests_refused_total);
	// nil: they are kept but not exported.
	Registerer prometheus.Registerer
}

// Defaults of Options.
const (
	defaultMaxHeavyRequests = 4
	defaultMaxProfileBytes  = 2 << 20
)

// refusedMetric counts the requests the UI refused, by reason.
const refusedMetric = "goroscope_ui_requests_refused_total"

// Reasons of refusedMetric.
const (
	refusedBusy     = "busy"
	refusedTooLarge = "too_large"
)

// server answers the UI's requests.
type server struct {
	src Source
	log *slog.Logger
	// heavy holds a token per heavy request being served.
	heavy           chan struct{}
	maxProfileBytes int64
	refused         *prometheus.CounterVec
	// findingsEntries and findingsReadBytes bound a findings answer's
	// history (maxFindingsEntries, maxFindingsReadBytes; lower in tests).
	findingsEntries   int
	findingsReadBytes int64
}

// New returns the UI handler with the default Options but log: the page at
// /, its assets under /static/ and the JSON API under /api/ (see the
// package documentation).
func New(src Source, log *slog.Logger) http.Handler {
	return NewWithOptions(src, Options{Log: log})
}

// NewWithOptions is New with options. It panics when o.Registerer holds
// a different metric of the UI's name (a programming error).
func NewWithOptions(src Source, o Options) http.Handler {
	return newServer(src, o).handler()
}

// handler is the UI handler of s.
func (s *server) handler() http.Handler {
	static, err := fs.Sub(staticFiles, "static")
	if err != nil { // cannot happen: the directory is embedded
		panic(fmt.Sprintf("ui: embedded static files: %v", err))
	}
	mux := http.NewServeMux()
	files := http.FileServerFS(static)
	mux.Handle("GET /static/", http.StripPrefix("/static/", scriptTypes(files)))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeFileFS(w, r, static, "index.html")
	})
	mux.HandleFunc("GET /api/kinds", s.api(s.kinds))
	mux.HandleFunc("GET /api/processes", s.api(s.processes))
	mux.HandleFunc("GET /api/processes/{pid}/{start}/series", s.api(s.series))
	mux.HandleFunc("GET /api/processes/{pid}/{start}/flame", s.limited(s.api(s.flame)))
	mux.HandleFunc("GET /api/processes/{pid}/{start}/diff", s.limited(s.api(s.diff)))
	mux.HandleFunc("GET /api/processes/{pid}/{start}/goroutines", s.limited(s.api(s.goroutines)))
	mux.HandleFunc("GET /api/processes/{pid}/{start}/goroutines/groups", s.limited(s.api(s.goroutineGroups)))
	mux.HandleFunc("GET /api/processes/{pid}/{start}/download", s.limited(s.download))
	mux.HandleFunc("GET /api/processes/{pid}/{start}/findings", s.limited(s.api(s.findingsAnswer)))
	mux.HandleFunc("GET /api/services/{name...}", s.api(s.service))
	mux.HandleFunc("GET /api/crashes", s.limited(s.api(s.crashes)))
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &httpError{http.StatusNotFound, fmt.Sprintf("no API endpoint %s %s; see the list in package ui's documentation", r.Method, r.URL.Path)})
	})
	return securityHeaders(mux)
}

// newServer returns the server of src with options o, defaults filled in.
func newServer(src Source, o Options) *server {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &server{src: src, log: log,
		heavy:           make(chan struct{}, cmp.Or(max(o.MaxHeavyRequests, 0), defaultMaxHeavyRequests)),
		maxProfileBytes: cmp.Or(max(o.MaxProfileBytes, 0), defaultMaxProfileBytes),
		refused:         refusedCounter(o.Registerer),
		findingsEntries: maxFindingsEntries, findingsReadBytes: maxFindingsReadBytes,
	}
}

// refusedCounter makes the refusal counter, registered with reg unless
// nil; a counter reg already holds (a second handler) is shared.
func refusedCounter(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: refusedMetric,
		Help: "UI and API requests refused: busy (the heavy requests served at once were at their limit; answered 503) or too_large (a stored payload over the UI's size limit; answered 413).",
	}, []string{"reason"})
	c.WithLabelValues(refusedBusy)
	c.WithLabelValues(refusedTooLarge)
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if old, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return old
			}
		}
		panic(fmt.Sprintf("ui: register %s: %v", refusedMetric, err))
	}
	return c
}

// limited serves h while fewer than MaxHeavyRequests heavy requests are
// being served, else answers 503 with Retry-After at once and counts it.
func (s *server) limited(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		select {
		case s.heavy <- struct{}{}:
			defer func() { <-s.heavy }()
			h(w, r)
		default:
			s.refused.WithLabelValues(refusedBusy).Inc()
			s.log.Debug("ui: busy", "path", r.URL.Path, "limit", cap(s.heavy))
			w.Header().Set("Retry-After", "1")
			writeError(w, &httpError{http.StatusServiceUnavailable, fmt.Sprintf(
				"busy: the agent is serving %d goroutine tables, flame graphs, diffs, downloads and findings already, its limit (MaxHeavyRequests); retry in a moment", cap(s.heavy))})
		}
	}
}

// scriptTypes answers .js files as JavaScript whatever the host's
// mime.types says: the page loads them as ES modules, which browsers run
// only when served with a JavaScript type (and nosniff is set).
func scriptTypes(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, ".js") || strings.HasSuffix(r.URL.Path, ".mjs") {
			w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		}
		h.ServeHTTP(w, r)
	})
}

// securityHeaders keeps the UI's pages from being framed, sniffed or made
// to run scripts from elsewhere.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Referrer-Policy", "no-referrer")
		// Scripts only from the embedded files; inline styles are set by
		// the flame graph and chart libraries.
		w.Header().Set("Content-Security-Policy",
			"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'")
		h.ServeHTTP(w, r)
	})
}

// httpError is an error with the status to answer it with.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &httpError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) error {
	return &httpError{http.StatusNotFound, fmt.Sprintf(format, args...)}
}

// api adapts a handler returning a value to JSON.
func (s *server) api(fn func(r *http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := fn(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		enc := json.NewEncoder(w)
		if err := enc.Encode(v); err != nil {
			s.log.Debug("ui: write response", "path", r.URL.Path, "err", err)
		}
	}
}

// fail answers a request with err, logs it and counts a refusal for size.
func (s *server) fail(w http.ResponseWriter, r *http.Request, err error) {
	s.logError(r, err)
	if statusOf(err) == http.StatusRequestEntityTooLarge {
		s.refused.WithLabelValues(refusedTooLarge).Inc()
	}
	writeError(w, err)
}

func (s *server) logError(r *http.Request, err error) {
	switch {
	case errors.Is(err, context.Canceled):
		s.log.Debug("ui: request canceled", "path", r.URL.Path, "err", err)
	case statusOf(err) < 500:
		s.log.Debug("ui: bad request", "path", r.URL.Path, "err", err)
	default:
		s.log.Warn("ui: request failed", "path", r.URL.Path, "query", r.URL.RawQuery, "err", err)
	}
}

// statusOf is the HTTP status to answer err with: an httpError's, else 500.
func statusOf(err error) int {
	var he *httpError
	if errors.As(err, &he) {
		return he.status
	}
	return http.StatusInternalServerError
}

func writeError(w http.ResponseWriter, err error) {
	status := statusOf(err)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}

// processKey reads {pid}/{start} from the path.
func processKey(r *http.Request) (store.ProcessKey, error) {
	pid, err := strconv.Atoi(r.PathValue("pid"))
	if err != nil || pid <= 0 {
		return store.ProcessKey{}, badRequest("process id %q: want a positive number", r.PathValue("pid"))
	}
	start, err := strconv.ParseUint(r.PathValue("start"), 10, 64)
	if err != nil {
		return store.ProcessKey{}, badRequest("process start time %q: want clock ticks after boot, a number", r.PathValue("start"))
	}
	return store.ProcessKey{PID: pid, StartTime: start}, nil
}

// parseRange reads the from and to query parameters.
func parseRange(r *http.Request) (from, to time.Time, err error) {
	if from, err = parseTime(r, "from"); err != nil {
		return from, to, err
	}
	to, err = parseTime(r, "to")
	return from, to, err
}

// parseTime reads an optional RFC 3339 time parameter.
func parseTime(r *http.Request, name string) (time.Time, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, badRequest("%s=%q: want an RFC 3339 time like 2026-01-02T15:04:05Z", name, v)
	}
	return t, nil
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/goroscope/goroscope/bpf"
)

// oneShotWait is how long snapshot waits for the eBPF walker to load before
// it walks with procmem instead.
const oneShotWait = time.Second

// loadGrace is how long a stopping agent waits for a BPF load still in the
// kernel verifier, which nothing can interrupt; the process exit ends it.
const loadGrace = 2 * time.Second

// bpfLoad is one BPF object loading on its own goroutine. The kernel's
// verifier may take tens of seconds over a program and cannot be
// interrupted, so nobody waits for it longer than they choose: wait bounds
// the wait, and a load nobody will take is closed when it ends (drop).
type bpfLoad[T io.Closer] struct {
	done chan struct{} // closed when val or err is set

	mu      sync.Mutex
	val     T
	err     error
	taken   bool
	dropped bool
}

// startLoad runs load on a new goroutine, which the returned bpfLoad owns:
// it ends when load returns. load should return when ctx ends; the real
// loaders cannot (a program in the verifier), and their late result is
// closed if dropped.
func startLoad[T io.Closer](ctx context.Context, load func(context.Context) (T, error)) *bpfLoad[T] {
	l := &bpfLoad[T]{done: make(chan struct{})}
	go func() {
		v, err := load(ctx)
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.dropped && err == nil {
			v.Close()
			var zero T
			v = zero
		}
		l.val, l.err = v, err
		close(l.done)
	}()
	return l
}

// failedLoad is a load whose answer is known without loading.
func failedLoad[T io.Closer](err error) *bpfLoad[T] {
	l := &bpfLoad[T]{done: make(chan struct{}), err: err}
	close(l.done)
	return l
}

// wait waits for the load until ctx ends. It returns the loaded value,
// which the caller owns from then on (later calls return errTaken), or
// the load's error, or errNotLoaded when ctx ended first.
func (l *bpfLoad[T]) wait(ctx context.Context) (T, error) {
	var zero T
	select {
	case <-l.done:
	case <-ctx.Done():
		select {
		case <-l.done: // both ready: the answer wins
		default:
			return zero, errNotLoaded
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return zero, l.err
	}
	if l.taken || l.dropped {
		return zero, errTaken
	}
	l.taken = true
	return l.val, nil
}

var (
	// errTaken: the loaded value was handed out already.
	errTaken = errors.New("BPF object already taken")
	// errNotLoaded: the wait ended before the load.
	errNotLoaded = errors.New("BPF object still loading")
)

// drop gives up the load: its value, now or when it arrives, is closed
// unless it was taken.
func (l *bpfLoad[T]) drop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dropped {
		return
	}
	l.dropped = true
	select {
	case <-l.done:
		if !l.taken && l.err == nil {
			l.val.Close()
		}
	default:
	}
}

// loading says whether the load is still running.
func (l *bpfLoad[T]) loading() bool {
	select {
	case <-l.done:
		return false
	default:
		return true
	}
}

// bpfObject loads one embedded BPF object with a memory of the verifier's
// rejections: a rejection remembered for this kernel build and these bytes
// is answered at once, without loading, and a new one is remembered.
type bpfObject[T io.Closer] struct {
	what     string // for messages: "goroutine walker", "CPU sampler"
	obj      bpf.Object
	kernel   string // bpf.KernelBuild()
	verdicts *verdicts
	load     func(context.Context) (T, error)
}

// start begins the load; a remembered rejection is its answer without one.
func (o *bpfObject[T]) start(ctx context.Context) *bpfLoad[T] {
	if err := o.cached(); err != nil {
		return failedLoad[T](err)
	}
	return startLoad(ctx, o.loadAndRemember)
}

// cached is the remembered rejection of the object on this kernel, if any.
func (o *bpfObject[T]) cached() error {
	r, ok := o.verdicts.lookup(o.obj, o.kernel)
	if !ok {
		return nil
	}
	return &rejection{what: o.what, cause: r.Cause, cached: true, at: r.At, logPath: r.VerifierLog, cachePath: o.verdicts.path}
}

// loadAndRemember loads the object; a rejection by the verifier is
// remembered, with its verifier log beside the cache.
func (o *bpfObject[T]) loadAndRemember(ctx context.Context) (T, error) {
	v, err := o.load(ctx)
	var le *bpf.LoadError
	if err == nil || !errors.As(err, &le) || !le.Rejected {
		return v, err
	}
	rj := &rejection{what: o.what, cause: le.Cause, at: time.Now(), cachePath: o.verdicts.path, err: err}
	rj.logPath = o.verdicts.writeLog(o.obj, o.kernel, le)
	o.verdicts.remember(verdict{Object: o.obj.Name, Hash: o.obj.Hash, Kernel: o.kernel, Cause: le.Cause, VerifierLog: rj.logPath, At: rj.at})
	return v, rj
}

// rejection is the kernel verifier's refusal of an object, now or before.
type rejection struct {
	what      string
	cause     string // bpf.LoadError.Cause
	cached    bool   // remembered from an earlier load
	at        time.Time
	logPath   string // the verifier log, if written
	cachePath string
	err       error // the load's error (not cached)
}

func (r *rejection) Error() string {
	var msg string
	if r.cached {
		msg = fmt.Sprintf("load %s: cached rejection: %s (this kernel build's verifier rejected this object on %s; delete %s to load it again)",
			r.what, r.cause, r.at.Format(time.DateOnly), r.cachePath)
	} else {
		msg = r.err.Error()
	}
	if r.logPath != "" {
		msg += " (verifier log: " + r.logPath + ")"
	}
	return msg
}

func (r *rejection) Unwrap() error { return r.err }

// loadCause is a failed load's cause in one line, for a log line or a
// metric label: the verifier's verdict, "cached rejection: " and it, or the
// error.
func loadCause(err error) string {
	var rj *rejection
	if errors.As(err, &rj) {
		if rj.cached {
			return "cached rejection: " + rj.cause
		}
		return rj.cause
	}
	var le *bpf.LoadError
	if errors.As(err, &le) {
		return le.Cause
	}
	return err.Error()
}

// logLoadFailure logs a failed load once: why, and where the verifier's
// log is; a remembered rejection at level cached.
func logLoadFailure(log *slog.Logger, cached slog.Level, msg string, err error) {
	level := slog.LevelInfo
	attrs := []any{"reason", loadCause(err)}
	var rj *rejection
	if errors.As(err, &rj) {
		if rj.cached {
			level = cached
			attrs = append(attrs, "cache", rj.cachePath)
		}
		if rj.logPath != "" {
			attrs = append(attrs, "verifier_log", rj.logPath)
		}
	}
	log.Log(context.Background(), level, msg, attrs...)
}

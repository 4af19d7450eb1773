package bpfload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/goroscope/goroscope/bpf"
	"github.com/goroscope/goroscope/collect/cpu"
)

// Object loads one embedded BPF object with a memory of the verifier's
// rejections: a rejection remembered for this kernel build and these bytes
// is answered at once, without loading, and a new one is remembered.
type Object[T io.Closer] struct {
	what     string // for messages: "goroutine walker", "CPU sampler"
	obj      bpf.Object
	kernel   string // bpf.KernelBuild()
	verdicts *Verdicts
	load     func(context.Context) (T, error)
}

// CPUSamplerObject is the CPU sampler's object, loaded with options o by
// load and remembered in v when the verifier rejects it.
func CPUSamplerObject(v *Verdicts, o cpu.Options, load func(context.Context, cpu.Options) (*cpu.Sampler, error)) *Object[*cpu.Sampler] {
	return &Object[*cpu.Sampler]{what: "CPU sampler", obj: bpf.CPUObject(), kernel: bpf.KernelBuild(), verdicts: v,
		load: func(ctx context.Context) (*cpu.Sampler, error) { return load(ctx, o) }}
}

// Start begins the load; a remembered rejection is its answer without one.
func (o *Object[T]) Start(ctx context.Context) *Load[T] {
	if err := o.Cached(); err != nil {
		return failedLoad[T](err)
	}
	return Start(ctx, o.loadAndRemember)
}

// Cached is the remembered rejection of the object on this kernel, if any.
func (o *Object[T]) Cached() error {
	r, ok := o.verdicts.lookup(o.obj, o.kernel)
	if !ok {
		return nil
	}
	return &rejection{what: o.what, cause: r.Cause, cached: true, at: r.At, logPath: r.VerifierLog, cachePath: o.verdicts.path}
}

// loadAndRemember loads the object; a rejection by the verifier is
// remembered, with its verifier log beside the cache.
func (o *Object[T]) loadAndRemember(ctx context.Context) (T, error) {
	v, err := o.load(ctx)
	var le *bpf.LoadError
	if err == nil || !errors.As(err, &le) || !le.Rejected {
		return v, err
	}
	rj := &rejection{what: o.what, cause: le.Cause, at: time.Now(), cachePath: o.verdicts.path, err: err}
	rj.logPath = o.verdicts.writeLog(o.obj, o.kernel, le)
	o.verdicts.Remember(Verdict{Object: o.obj.Name, Hash: o.obj.Hash, Kernel: o.kernel, Cause: le.Cause, VerifierLog: rj.logPath, At: rj.at})
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

// Cause is a failed load's cause in one line, for a log line or a metric
// label: the verifier's verdict, "cached rejection: " and it, or the error.
func Cause(err error) string {
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

// LogFailure logs a failed load once: why, and where the verifier's log
// is; a remembered rejection at level cached, anything else at info.
func LogFailure(ctx context.Context, log *slog.Logger, cached slog.Level, msg string, err error) {
	level := slog.LevelInfo
	attrs := []any{"reason", Cause(err)}
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
	log.Log(ctx, level, msg, attrs...)
}

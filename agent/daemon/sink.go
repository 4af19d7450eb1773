package daemon

import (
	"context"
	"errors"
	"time"

	"github.com/goroscope/goroscope/pkg/fold"
	"github.com/goroscope/goroscope/pkg/store"
)

// Appender is the sink stage: it takes what one collection produced for
// one process. The daemon writes every Output (walked snapshots, CPU
// windows, scrapes) to one Appender, a fan-out over the local store's and
// the push endpoints'. Append may keep o's slices and maps; nobody changes
// them after. Append is called from the snapshot, CPU and scrape loops at
// once, and must not block on the network: the push appender enqueues.
type Appender interface {
	Append(ctx context.Context, o Output) error
}

// Output is what one collection produced for one process, folded and
// encoded, ready for the sinks.
type Output struct {
	Process store.Process
	// Labels go on every pushed profile (service_name, pid or instance).
	Labels map[string]string
	Time   time.Time
	// Summary is stored with every entry (the UI's chart numbers).
	Summary  map[string]float64
	Series   []fold.Series
	Profiles []Profile
	// Snapshot is the gzipped binary snapshot, if any.
	Snapshot []byte
	// Findings is the gzipped JSON of the findings holding at the
	// snapshot, if any (docs/findings-json.md).
	Findings []byte
}

// Profile is one gzipped pprof profile.
type Profile struct {
	// Name is the profile's name: its store kind and Pyroscope __name__.
	Name string
	Data []byte
	// Duration is the interval the profile covers (0 for an instant).
	Duration time.Duration
	// Labels are extra push labels for this profile alone (__delta__).
	Labels map[string]string
}

// fanout is an Appender handing each output to every sink in order: a
// failing sink keeps it from no other. Its error joins a *sinkError per
// failing sink.
type fanout []namedSink

// namedSink is one sink of a fan-out; its name labels its failures
// (goroscope_errors_total{reason=name}).
type namedSink struct {
	name string
	Appender
}

var _ Appender = fanout(nil)

// Append implements Appender.
func (f fanout) Append(ctx context.Context, o Output) error {
	var errs []error
	for _, s := range f {
		if err := s.Append(ctx, o); err != nil {
			errs = append(errs, &sinkError{sink: s.name, err: err})
		}
	}
	return errors.Join(errs...)
}

// sinkError is one sink's failure to take an output.
type sinkError struct {
	sink string
	err  error
}

func (e *sinkError) Error() string { return e.sink + ": " + e.err.Error() }
func (e *sinkError) Unwrap() error { return e.err }

// record hands an output to the sink; failures are counted and logged by
// sink, never fatal.
func (a *Agent) record(ctx context.Context, o Output) {
	err := a.sink.Append(ctx, o)
	if err == nil {
		return
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	for _, err := range errs {
		reason := "sink"
		if se, ok := err.(*sinkError); ok {
			reason, err = se.sink, se.err
		}
		a.metrics.errors.WithLabelValues(reason).Inc()
		a.log.Warn(reason, "pid", o.Process.PID, "service_name", o.Process.ServiceName, "err", err)
	}
}

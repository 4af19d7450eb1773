package main

import (
	"errors"
	"io"
	"time"

	"github.com/google/pprof/profile"

	"github.com/goroscope/goroscope/pkg/fold"
	"github.com/goroscope/goroscope/pkg/snapshot"
	"github.com/goroscope/goroscope/pkg/store"
)

// output is what one collection produced for one process, ready for the
// sinks: the local store and the push endpoints.
type output struct {
	proc store.Process
	// labels go on every pushed profile (service_name, pid or instance).
	labels map[string]string
	at     time.Time
	// summary is stored with every entry (chart numbers).
	summary  map[string]float64
	series   []fold.Series
	profiles []encodedProfile
	// snapshot is the gzipped binary snapshot, if any.
	snapshot []byte
}

// encodedProfile is one gzipped pprof profile.
type encodedProfile struct {
	// name is the profile's name: its store kind and Pyroscope __name__.
	name string
	data []byte
	// dur is the interval the profile covers (0 for an instant).
	dur time.Duration
	// labels are extra push labels for this profile alone (__delta__).
	labels map[string]string
}

// encodeProfiles gzips each named profile with enc; failures are returned
// joined, the others kept.
func encodeProfiles(enc *encoder, profs []namedProfile) ([]encodedProfile, error) {
	out := make([]encodedProfile, 0, len(profs))
	var errs []error
	for _, p := range profs {
		gz, err := enc.gzip(p.name+" profile", p.p.WriteUncompressed)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, encodedProfile{name: p.name, data: gz, dur: p.dur, labels: p.labels})
	}
	return out, errors.Join(errs...)
}

// namedProfile is a profile to encode.
type namedProfile struct {
	name   string
	p      *profile.Profile
	dur    time.Duration
	labels map[string]string
}

// snapshotOutput folds a snapshot into its goroutines and goroutine_wall
// profiles and encodes them and the snapshot with enc. onCPU, when not
// nil, is the process's sampled on-CPU time over the interval. exe, when
// its File is set, is the profiles' main mapping (else the snapshot's path).
func snapshotOutput(enc *encoder, buf *[]byte, proc store.Process, labels map[string]string, s *snapshot.Snapshot, interval time.Duration, onCPU []fold.OnCPU, exe fold.Executable) (output, error) {
	var goroutines, wall *profile.Profile
	if onCPU != nil {
		goroutines, wall = fold.ProfilesOnCPU(s, interval, onCPU)
	} else {
		goroutines, wall = fold.Profiles(s, interval)
	}
	if exe.File != "" {
		fold.SetExecutable(goroutines, exe)
		fold.SetExecutable(wall, exe)
	}
	profs, err := encodeProfiles(enc, []namedProfile{
		{name: store.KindGoroutines, p: goroutines},
		{name: store.KindGoroutineWall, p: wall, dur: interval},
	})
	snap, serr := enc.gzip("snapshot", func(w io.Writer) error {
		*buf = snapshot.AppendBinary((*buf)[:0], s)
		_, err := w.Write(*buf)
		return err
	})
	return output{proc: proc, labels: labels, at: s.Time, summary: fold.Summary(s), series: fold.ProcessSeries(s, labels), profiles: profs, snapshot: snap},
		errors.Join(err, serr)
}

// record hands an output to the store and the push endpoints; failures
// are counted and logged, never fatal.
func (a *Agent) record(o output) {
	var errs []error
	for _, p := range o.profiles {
		if _, err := a.store.Append(store.Entry{Process: o.proc, Kind: p.name, Time: o.at, Duration: p.dur, Summary: o.summary, Data: p.data}); err != nil {
			errs = append(errs, err)
		}
	}
	if o.snapshot != nil {
		if _, err := a.store.Append(store.Entry{Process: o.proc, Kind: store.KindSnapshot, Time: o.at, Summary: o.summary, Data: o.snapshot}); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		a.metrics.errors.WithLabelValues("store").Inc()
		a.log.Warn("store", "pid", o.proc.PID, "service_name", o.proc.ServiceName, "err", err)
	}
	if err := a.push.push(o.series, o.at, o.profiles, o.labels); err != nil {
		a.metrics.errors.WithLabelValues("push").Inc()
		a.log.Warn("push", "pid", o.proc.PID, "service_name", o.proc.ServiceName, "err", err)
	}
}

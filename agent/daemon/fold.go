package daemon

import (
	"errors"
	"io"
	"time"

	"github.com/google/pprof/profile"

	"github.com/goroscope/goroscope/pkg/fold"
	"github.com/goroscope/goroscope/pkg/snapshot"
	"github.com/goroscope/goroscope/pkg/store"
)

// foldSnapshot is the fold stage: it folds a snapshot into its goroutines
// and goroutine_wall profiles and its series, and encodes the profiles and
// the snapshot with enc (buf is the binary snapshot's reused buffer).
// onCPU, when not nil, is the process's sampled on-CPU time over the
// interval. lim bounds the target pprof labels (fold.ProfilesLimited; nil:
// as they are); the caller counts its overflows. exe, when its File is set, is the profiles' main mapping (else
// the snapshot's path). An encoding failure is returned with the output
// of what did encode.
func foldSnapshot(enc *encoder, buf *[]byte, proc store.Process, labels map[string]string, s *snapshot.Snapshot, interval time.Duration, onCPU []fold.OnCPU, lim *fold.LabelLimiter, exe fold.Executable) (Output, error) {
	goroutines, wall := fold.ProfilesLimited(s, interval, onCPU, lim)
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
	return Output{Process: proc, Labels: labels, Time: s.Time, Summary: fold.Summary(s), Series: fold.ProcessSeries(s, labels), Profiles: profs, Snapshot: snap},
		errors.Join(err, serr)
}

// namedProfile is a profile to encode.
type namedProfile struct {
	name   string
	p      *profile.Profile
	dur    time.Duration
	labels map[string]string
}

// encodeProfiles gzips each named profile with enc; failures are returned
// joined, the others kept.
func encodeProfiles(enc *encoder, profs []namedProfile) ([]Profile, error) {
	out := make([]Profile, 0, len(profs))
	var errs []error
	for _, p := range profs {
		gz, err := enc.gzip(p.name+" profile", p.p.WriteUncompressed)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, Profile{Name: p.name, Data: gz, Duration: p.dur, Labels: p.labels})
	}
	return out, errors.Join(errs...)
}

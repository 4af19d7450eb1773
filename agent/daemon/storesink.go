package daemon

import (
	"context"
	"errors"

	"github.com/goroscope/goroscope/pkg/store"
)

// storeSink is the Appender of the local store: each profile and the
// snapshot become one entry each, with the output's summary.
type storeSink struct{ st *store.Store }

var _ Appender = storeSink{}

// Append implements Appender.
func (s storeSink) Append(_ context.Context, o Output) error {
	var errs []error
	for _, p := range o.Profiles {
		if _, err := s.st.Append(store.Entry{Process: o.Process, Kind: p.Name, Time: o.Time, Duration: p.Duration, Summary: o.Summary, Data: p.Data}); err != nil {
			errs = append(errs, err)
		}
	}
	if o.Findings != nil {
		if _, err := s.st.Append(store.Entry{Process: o.Process, Kind: store.KindFindings, Time: o.Time, Summary: o.Summary, Data: o.Findings}); err != nil {
			errs = append(errs, err)
		}
	}
	if o.Snapshot != nil {
		if _, err := s.st.Append(store.Entry{Process: o.Process, Kind: store.KindSnapshot, Time: o.Time, Summary: o.Summary, Data: o.Snapshot}); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

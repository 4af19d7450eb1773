package faults

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"connectrpc.com/connect"
	"github.com/golang/snappy"
	"github.com/google/pprof/profile"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	"github.com/klauspost/compress/gzip"
	"github.com/prometheus/prometheus/prompb"
)

// decodeWrite decodes a remote-write 1.0 request as a receiver must
// (snappy block format, protobuf, valid sorted labels, samples in time
// order) and returns the identity of every sample.
func decodeWrite(h http.Header, body []byte) ([]string, error) {
	if ce := h.Get("Content-Encoding"); ce != "snappy" {
		return nil, fmt.Errorf("remote-write: Content-Encoding %q, want snappy", ce)
	}
	if ct := h.Get("Content-Type"); ct != "application/x-protobuf" {
		return nil, fmt.Errorf("remote-write: Content-Type %q, want application/x-protobuf", ct)
	}
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		return nil, fmt.Errorf("remote-write: snappy: %w", err)
	}
	var req prompb.WriteRequest
	if err := req.Unmarshal(raw); err != nil {
		return nil, fmt.Errorf("remote-write: protobuf: %w", err)
	}
	var keys []string
	for i, ts := range req.Timeseries {
		if err := checkLabels(ts.Labels); err != nil {
			return nil, fmt.Errorf("remote-write: series %d: %w", i, err)
		}
		if len(ts.Samples) == 0 {
			return nil, fmt.Errorf("remote-write: series %d has no samples", i)
		}
		series := seriesKey(len(ts.Labels), func(j int) (string, string) { return ts.Labels[j].Name, ts.Labels[j].Value })
		for j, smp := range ts.Samples {
			if j > 0 && smp.Timestamp <= ts.Samples[j-1].Timestamp {
				return nil, fmt.Errorf("remote-write: series %s: samples out of order at %d", series, smp.Timestamp)
			}
			keys = append(keys, series+"@"+strconv.FormatInt(smp.Timestamp, 10))
		}
	}
	return keys, nil
}

// checkLabels enforces what the remote-write specification requires of a
// series' labels.
func checkLabels(ls []prompb.Label) error {
	hasName := false
	for i, l := range ls {
		if i > 0 && ls[i-1].Name >= l.Name {
			return fmt.Errorf("labels not sorted or repeated at %q", l.Name)
		}
		if l.Value == "" {
			return fmt.Errorf("label %q has an empty value", l.Name)
		}
		hasName = hasName || l.Name == "__name__"
	}
	if !hasName {
		return errors.New("no __name__ label")
	}
	return nil
}

// seriesKey renders n labels as {a="b", ...} in the given (sorted) order.
func seriesKey(n int, label func(int) (string, string)) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := range n {
		name, value := label(i)
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s=%q", name, value)
	}
	b.WriteByte('}')
	return b.String()
}

// requestKey carries requestInfo from ServeHTTP to the push handler.
type requestKey struct{}

type requestInfo struct {
	reject bool
	bytes  int
}

// pusher is the push service: it decodes every profile of a request before
// recording any, so a request is ingested whole or not at all.
type pusher struct {
	pushv1connect.UnimplementedPusherServiceHandler
	s *Server
}

func (p *pusher) Push(ctx context.Context, req *connect.Request[pushv1.PushRequest]) (*connect.Response[pushv1.PushResponse], error) {
	info, _ := ctx.Value(requestKey{}).(requestInfo)
	var keys, ids []string
	for i, series := range req.Msg.Series {
		ls := slices.Clone(series.Labels)
		slices.SortFunc(ls, func(a, b *typesv1.LabelPair) int { return strings.Compare(a.Name, b.Name) })
		for j, l := range ls {
			if j > 0 && ls[j-1].Name == l.Name {
				return nil, p.invalid(fmt.Errorf("push: series %d: label %q twice", i, l.Name))
			}
		}
		if len(series.Samples) == 0 {
			return nil, p.invalid(fmt.Errorf("push: series %d has no profiles", i))
		}
		key := seriesKey(len(ls), func(j int) (string, string) { return ls[j].Name, ls[j].Value })
		for j, smp := range series.Samples {
			prof, err := decodePprof(smp.RawProfile)
			if err != nil {
				return nil, p.invalid(fmt.Errorf("push: series %s profile %d: %w", key, j, err))
			}
			keys = append(keys, key+"@"+strconv.FormatInt(prof.TimeNanos, 10))
			ids = append(ids, smp.ID)
		}
	}
	if info.reject {
		p.s.rec.reject(&p.s.mu, nil, keys)
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("injected rejection: bad request"))
	}
	p.s.rec.ingest(&p.s.mu, nil, keys, ids, info.bytes)
	return connect.NewResponse(&pushv1.PushResponse{}), nil
}

func (p *pusher) invalid(err error) error {
	p.s.rec.addError(&p.s.mu, err)
	return connect.NewError(connect.CodeInvalidArgument, err)
}

// maxProfile bounds one decompressed profile.
const maxProfile = 256 << 20

// decodePprof gunzips a push API profile and parses it, checking its
// consistency and that it has a time.
func decodePprof(raw []byte) (*profile.Profile, error) {
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("gunzip: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(zr, maxProfile))
	if err != nil {
		return nil, fmt.Errorf("gunzip: %w", err)
	}
	prof, err := profile.ParseData(data)
	if err != nil {
		return nil, fmt.Errorf("parse pprof: %w", err)
	}
	if err := prof.CheckValid(); err != nil {
		return nil, fmt.Errorf("invalid pprof: %w", err)
	}
	if len(prof.SampleType) == 0 || prof.TimeNanos == 0 {
		return nil, errors.New("pprof without sample types or time")
	}
	return prof, nil
}

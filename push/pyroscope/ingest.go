package pyroscope

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"

	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"

	"github.com/goroscope/goroscope/push/senderr"
)

// ingest sends every profile of req to the legacy /ingest endpoint, one
// POST each: ?name=<service_name>{k=v,...}&spyName=goroscope with a
// multipart form holding the profile as file "profile" and, where the
// profile's name needs one, a "sample_type_config" file.
//
// The request is what Grafana Pyroscope's ingest handler reads as pprof
// (pkg/ingester/pyroscope/ingest_handler.go, readInputRawDataFromRequest):
// a multipart/form-data content type and no "format" parameter. With
// format=pprof the handler takes the whole body for one raw pprof message
// before it looks at the content type, and refuses the multipart body with
// HTTP 422 ("proto: wrong wireType = 5 for field Function").
//
// The legacy name carries the labels other than service_name and __name__:
// the server names the profile from its sample types and the sample type
// config (pkg/og/convert/pprof/profile.go, metricName), not from __name__.
func (c *Client) ingest(ctx context.Context, req *pushv1.PushRequest) error {
	for _, s := range req.Series {
		name := LegacyName(s.Labels)
		config := legacySampleTypeConfig(labelValue(s.Labels, LabelProfileName))
		for _, smp := range s.Samples {
			if err := c.ingestOne(ctx, name, smp.RawProfile, config); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *Client) ingestOne(ctx context.Context, name string, profile, config []byte) error {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, err := mw.CreateFormFile("profile", "profile.pprof")
	if err == nil {
		_, err = fw.Write(profile)
	}
	if err == nil && config != nil {
		if fw, err = mw.CreateFormFile("sample_type_config", "sample_type_config.json"); err == nil {
			_, err = fw.Write(config)
		}
	}
	if err == nil {
		err = mw.Close()
	}
	if err != nil {
		return &senderr.SendError{Err: fmt.Errorf("%s: build ingest form: %w", c.name, err)}
	}
	q := url.Values{"name": {name}, "spyName": {"goroscope"}}
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/ingest?"+q.Encode(), &body)
	if err != nil {
		return &senderr.SendError{Err: fmt.Errorf("%s: %w", c.name, err)}
	}
	r.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := c.http.Do(r)
	if err := senderr.Classify(resp, err); err != nil {
		var se *senderr.SendError
		if errors.As(err, &se) {
			se.Err = fmt.Errorf("%s: ingest %s: %w", c.name, name, se.Err)
		}
		return err
	}
	return nil
}

// legacySampleType is one entry of the ingest form's sample_type_config
// (the JSON of pyroscope-go's upstream.SampleType).
type legacySampleType struct {
	Units       string `json:"units,omitempty"`
	Aggregation string `json:"aggregation,omitempty"`
	DisplayName string `json:"display-name,omitempty"`
}

// legacySampleTypeConfig returns the sample_type_config that makes the
// server name a profile pushed as name the same through /ingest as through
// the push API, or nil where its default mapping already does. The server
// derives the name from the sample types' display names
// (pkg/og/convert/pprof/profile.go, metricName; the defaults are
// pkg/og/storage/tree/pprof.go, DefaultSampleTypeMapping):
//   - "goroutine" (goroutine/count): the default display name "goroutines"
//     gives "goroutines"; display name "goroutine" gives "goroutine";
//   - "block" (contentions, delay): the defaults name them mutex_count and
//     mutex_duration, which gives "mutex"; block_* gives "block".
//
// process_cpu, memory, mutex and goroutineleak come out right by default.
// goroutine_wall cannot: a "wall" sample type is named "wall" before any
// display name is read.
func legacySampleTypeConfig(name string) []byte {
	var cfg map[string]legacySampleType
	switch name {
	case "goroutine":
		cfg = map[string]legacySampleType{"goroutine": {DisplayName: "goroutine", Units: "goroutines", Aggregation: "average"}}
	case "block":
		cfg = map[string]legacySampleType{
			"contentions": {DisplayName: "block_count", Units: "lock_samples"},
			"delay":       {DisplayName: "block_duration", Units: "lock_nanoseconds"},
		}
	default:
		return nil
	}
	b, _ := json.Marshal(cfg) // a map of plain structs: cannot fail
	return b
}

func labelValue(ls []*typesv1.LabelPair, name string) string {
	for _, l := range ls {
		if l.Name == name {
			return l.Value
		}
	}
	return ""
}

// LegacyName renders labels as the legacy application name
// "<service_name>{k=v,...}", leaving out __name__ and __delta__. The
// server's parser (github.com/grafana/pyroscope/api/model/labelset, Parse)
// ends a value at ',' or '}' and allows only [a-zA-Z0-9_.-/] in the
// service name, so those characters of values, and any other of the
// service name, are replaced by '_'.
func LegacyName(ls []*typesv1.LabelPair) string {
	var app string
	var tags []string
	for _, l := range ls {
		switch l.Name {
		case LabelServiceName:
			app = l.Value
		case LabelProfileName, LabelDelta:
		default:
			tags = append(tags, l.Name+"="+legacyValue.Replace(l.Value))
		}
	}
	return legacyServiceName(app) + "{" + strings.Join(tags, ",") + "}"
}

var legacyValue = strings.NewReplacer(",", "_", "{", "_", "}", "_", "=", "_")

// legacyServiceName replaces the characters the server refuses in a
// service name (labelset.IsServiceNameRuneAllowed) by '_'.
func legacyServiceName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_.-/", r) {
			return r
		}
		return '_'
	}, s)
}

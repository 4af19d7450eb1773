package pyroscope

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"

	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"

	"github.com/goroscope/goroscope/push/httpconf"
)

// ingest sends every profile of req to the legacy /ingest endpoint, one
// POST each: ?name=<service_name>{k=v,...}&format=pprof with the profile as
// multipart form file "profile". The legacy name carries the labels other
// than service_name and __name__ (the server names the profile from its
// sample types).
func (c *Client) ingest(ctx context.Context, req *pushv1.PushRequest) error {
	for _, s := range req.Series {
		name := LegacyName(s.Labels)
		for _, smp := range s.Samples {
			if err := c.ingestOne(ctx, name, smp.RawProfile); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *Client) ingestOne(ctx context.Context, name string, profile []byte) error {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, err := mw.CreateFormFile("profile", "profile.pprof")
	if err == nil {
		_, err = fw.Write(profile)
	}
	if err == nil {
		err = mw.Close()
	}
	if err != nil {
		return &httpconf.SendError{Err: fmt.Errorf("%s: build ingest form: %w", c.name, err)}
	}
	q := url.Values{"name": {name}, "format": {"pprof"}, "spyName": {"goroscope"}}
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/ingest?"+q.Encode(), &body)
	if err != nil {
		return &httpconf.SendError{Err: fmt.Errorf("%s: %w", c.name, err)}
	}
	r.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := c.http.Do(r)
	if err := httpconf.Classify(resp, err); err != nil {
		var se *httpconf.SendError
		if errors.As(err, &se) {
			se.Err = fmt.Errorf("%s: ingest %s: %w", c.name, name, se.Err)
		}
		return err
	}
	return nil
}

// LegacyName renders labels as the legacy application name
// "<service_name>{k=v,...}", leaving out __name__, with characters the
// legacy key syntax reserves (",{}=") in values replaced by '_'.
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
	return legacyValue.Replace(app) + "{" + strings.Join(tags, ",") + "}"
}

var legacyValue = strings.NewReplacer(",", "_", "{", "_", "}", "_", "=", "_")

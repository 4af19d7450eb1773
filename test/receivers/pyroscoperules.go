package receivers

// This file mirrors what Grafana Pyroscope does with an upload, decision by
// decision, as its source says (github.com/grafana/pyroscope; files and
// functions are cited at each step). It decodes every request fully and
// refuses what the server refuses, with the server's status and message,
// so that tests hold goroscope's requests to the real server's rules rather
// than to a fake's idea of them. Where the server uses code of
// github.com/grafana/pyroscope/api (the label set parser, the pprof
// protobuf decoder), that very code is used here.
//
// Source read (the Go module proxy does not serve the server module, so
// from the repository's history):
//   - pkg/ingester/pyroscope/ingest_handler.go at 0f459000dcfe (the v2
//     module): ServeHTTP, parseInputMetadataFromRequest,
//     readInputRawDataFromRequest;
//   - pkg/ingester/pyroscope/ingest_adapter.go at 0d740813769 (v2): Ingest,
//     parseToPprof, Put, convertMetadata;
//   - pkg/og/convert/pprof/profile.go at 7faadde03a80: ParseToPprof,
//     handleRawData, loadPprofFromForm, metricName, createLabels;
//   - pkg/og/storage/tree/pprof.go at 0946c044d31c: DefaultSampleTypeMapping;
//   - pkg/og/convert/parser.go at 29b496c616ce (v2) and
//     pkg/og/convert/profile/profile.go at 1b40cd518d43: the collapsed and
//     lines formats;
//   - pkg/validation/validate.go at 009f211f3b29 and limits.go: the
//     distributor's checks and default limits; pkg/model: LabelsForProfile,
//     IsLabelAllowedForIngestion; pkg/pprof: RawFromBytes; pkg/og/util/form.
//
// What is not mirrored: authentication, tenants, rate limits, the
// relabelling and sampling rules a server may be configured with, and the
// trie, tree, jfr and speedscope formats (goroscope sends none of them;
// they are refused here).

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"connectrpc.com/connect"
	"github.com/google/pprof/profile"
	profilev1 "github.com/grafana/pyroscope/api/gen/proto/go/google/v1"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/model/labelset"
	"github.com/prometheus/common/model"
)

// The server's default limits (pkg/validation/limits.go, RegisterFlags).
const (
	serverMaxLabelNamesPerSeries = 30
	serverMaxLabelNameLength     = 1024
	serverMaxLabelValueLength    = 2048
	serverMaxProfileSizeBytes    = 4 << 20 // uncompressed
	serverMaxProfileSamples      = 16000
	serverMaxSampleLabels        = 100
	// serverMaxFormMemory is ReadForm's bound in loadPprofFromForm.
	serverMaxFormMemory = 32 << 20
)

// ServerSeries is one series as the server stores it: one per sample type
// of a profile (pkg/model, LabelsForProfile).
type ServerSeries struct {
	// Labels are the series labels the distributor gets (__name__,
	// service_name, __delta__, pyroscope_spy, the upload's labels), before
	// it adds __type__, __unit__, __period_type__, __period_unit__ and
	// __profile_type__.
	Labels map[string]string
	// ProfileTypeID is __profile_type__, the ID Grafana lists the profile
	// under: <__name__>:<sample type>:<unit>:<period type>:<period unit>.
	ProfileTypeID string
	// Profile is the profile the series comes from.
	Profile *profile.Profile
}

// IngestVerdict is what the server does with one /ingest request.
type IngestVerdict struct {
	// Status is the HTTP status the server answers with; Message its
	// error text when Status is not 200. Status 0 means the checker does
	// not mirror the request's format (and refuses it).
	Status  int
	Message string
	// Path names the branch readInputRawDataFromRequest took: "pprof
	// (multipart)", "pprof (raw body)", "groups", "lines", or the
	// unmirrored "trie", "tree", "jfr", "speedscope".
	Path string
	// Series is what was stored; empty when nothing was, even with 200
	// (an empty profile field, a profile_id label).
	Series []ServerSeries
	// SampleTypeConfig is the form's sample_type_config, if any.
	SampleTypeConfig map[string]*SampleTypeConfig
}

// Err is nil when the server answers 200 and stores something.
func (v IngestVerdict) Err() error {
	switch {
	case v.Status != http.StatusOK:
		return fmt.Errorf("server answers HTTP %d (%s): %s", v.Status, v.Path, v.Message)
	case len(v.Series) == 0:
		return fmt.Errorf("server answers 200 but stores nothing (%s)", v.Path)
	}
	return nil
}

// ProfileTypeIDs returns the IDs of the stored series, sorted.
func (v IngestVerdict) ProfileTypeIDs() []string { return profileTypeIDs(v.Series) }

func profileTypeIDs(ss []ServerSeries) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.ProfileTypeID)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// SampleTypeConfig is one entry of a form's sample_type_config
// (pkg/og/storage/tree/pprof.go, SampleTypeConfig).
type SampleTypeConfig struct {
	Units       string `json:"units,omitempty"`
	DisplayName string `json:"display-name,omitempty"`
	Aggregation string `json:"aggregation,omitempty"`
	Cumulative  bool   `json:"cumulative,omitempty"`
	Sampled     bool   `json:"sampled,omitempty"`
}

// defaultSampleTypeMapping is the server's mapping when an upload has no
// sample_type_config (pkg/og/storage/tree/pprof.go,
// DefaultSampleTypeMapping); only the display names matter here.
func defaultSampleTypeMapping() map[string]*SampleTypeConfig {
	return map[string]*SampleTypeConfig{
		"samples":       {DisplayName: "cpu", Units: "samples", Sampled: true},
		"inuse_objects": {Units: "objects", Aggregation: "average"},
		"alloc_objects": {Units: "objects", Cumulative: true},
		"inuse_space":   {Units: "bytes", Aggregation: "average"},
		"alloc_space":   {Units: "bytes", Cumulative: true},
		"goroutine":     {DisplayName: "goroutines", Units: "goroutines", Aggregation: "average"},
		"contentions":   {DisplayName: "mutex_count", Units: "lock_samples", Cumulative: true},
		"delay":         {DisplayName: "mutex_duration", Units: "lock_nanoseconds", Cumulative: true},
	}
}

// CheckIngest reads r's body and returns what the server does with r.
func CheckIngest(r *http.Request) IngestVerdict {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return IngestVerdict{Status: http.StatusRequestTimeout, Message: fmt.Sprintf("error reading request body bytes_read %d: %v", len(body), err)}
	}
	return CheckIngestRequest(r.Method, r.URL.Query(), r.Header.Get("Content-Type"), body)
}

// ingestMetadata is what parseInputMetadataFromRequest takes from the query.
type ingestMetadata struct {
	// labels is the parsed name; the service name is under "__name__".
	labels     map[string]string
	spyName    string
	sampleRate uint32
}

// CheckIngestRequest returns what the server does with POST /ingest?query
// with the given Content-Type and body
// (pkg/ingester/pyroscope/ingest_handler.go, ingestHandler.ServeHTTP).
func CheckIngestRequest(method string, query url.Values, contentType string, body []byte) IngestVerdict {
	if method != http.MethodPost {
		return IngestVerdict{Status: http.StatusMethodNotAllowed, Message: "method " + method + " not allowed; /ingest takes POST"}
	}
	// parseInputMetadataFromRequest: a name the label set parser refuses
	// is a 400; from/until, units and aggregationType do not refuse.
	ls, err := labelset.Parse(query.Get("name"))
	if err != nil {
		return IngestVerdict{Status: http.StatusBadRequest, Message: "name: " + err.Error()}
	}
	md := ingestMetadata{labels: ls.Labels(), spyName: "unknown", sampleRate: 100}
	if sn := query.Get("spyName"); sn != "" {
		md.spyName = sn
	}
	if sr := query.Get("sampleRate"); sr != "" {
		if n, err := strconv.Atoi(sr); err == nil {
			md.sampleRate = uint32(n)
		} // else the server logs it and keeps the default
	}

	// readInputRawDataFromRequest: the first case that matches wins, and
	// the format parameter is looked at before the content type.
	format := query.Get("format")
	v := IngestVerdict{Status: http.StatusOK}
	switch {
	default:
		v.Path = "groups"
	case format == "trie", contentType == "binary/octet-stream+trie":
		v.Path = "trie"
	case format == "tree", contentType == "binary/octet-stream+tree":
		v.Path = "tree"
	case format == "lines":
		v.Path = "lines"
	case format == "jfr":
		v.Path = "jfr"
	case format == "pprof":
		// The whole body is one pprof message, whatever the content type.
		v.Path = "pprof (raw body)"
		contentType = ""
	case format == "speedscope":
		v.Path = "speedscope"
	case strings.Contains(contentType, "multipart/form-data"):
		v.Path = "pprof (multipart)"
	}

	switch v.Path {
	case "pprof (raw body)", "pprof (multipart)":
		// pyroscopeIngesterAdapter.Ingest: pprof uploads are
		// ParseableToPprof. Their errors are not ingestion.Errors: 422.
		// The distributor's checks (PushBatch) run inside, in seriesOf.
		series, stc, err := parseToPprof(body, contentType, md)
		v.SampleTypeConfig = stc
		if err != nil {
			return IngestVerdict{Status: http.StatusUnprocessableEntity, Message: "parsing IngestInput-pprof failed " + err.Error(), Path: v.Path, SampleTypeConfig: stc}
		}
		v.Series = series
	case "groups", "lines":
		series, status, err := parseStacks(v.Path, body, md)
		if err != nil {
			return IngestVerdict{Status: status, Message: err.Error(), Path: v.Path}
		}
		v.Series = series
	default:
		return IngestVerdict{Status: 0, Message: "format " + v.Path + " is not mirrored by this checker; goroscope never sends it", Path: v.Path}
	}
	return v
}

// parseToPprof mirrors pkg/og/convert/pprof/profile.go, RawProfile.
// ParseToPprof (with handleRawData, loadPprofFromForm, metricName and
// createLabels).
func parseToPprof(body []byte, formContentType string, md ingestMetadata) ([]ServerSeries, map[string]*SampleTypeConfig, error) {
	raw := body
	var stc map[string]*SampleTypeConfig
	if formContentType != "" {
		var err error
		if raw, stc, err = loadPprofFromForm(body, formContentType); err != nil {
			return nil, nil, fmt.Errorf("failed to parse pprof /ingest multipart form %w", err)
		}
	}
	if len(raw) == 0 {
		return nil, stc, nil // "empty profile": 200, nothing stored
	}
	p, size, err := rawFromBytes(raw)
	if err != nil {
		return nil, stc, connect.NewError(connect.CodeInvalidArgument, err)
	}
	labels := map[string]string{}
	var dup []string
	add := func(k, v string) {
		if _, ok := labels[k]; ok {
			dup = append(dup, k)
		}
		labels[k] = v
	}
	add(model.MetricNameLabel, metricName(p, stc))
	add("__delta__", "false")
	add("service_name", md.labels[labelset.ReservedLabelNameName])
	add("pyroscope_spy", md.spyName)
	for _, k := range slices.Sorted(maps.Keys(md.labels)) {
		if allowedForIngestion(k) {
			add(k, md.labels[k])
		}
	}
	if len(dup) > 0 {
		// The distributor's ValidateLabels refuses duplicate names.
		return nil, stc, fmt.Errorf("profile with labels %v has duplicate label name: '%s'", labels, dup[0])
	}
	series, err := seriesOf(p, size, labels)
	return series, stc, err
}

// loadPprofFromForm mirrors RawProfile.loadPprofFromForm and the form
// helpers of pkg/og/util/form (ParseBoundary, ReadField).
func loadPprofFromForm(body []byte, contentType string) ([]byte, map[string]*SampleTypeConfig, error) {
	_, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return nil, nil, err
	}
	boundary, ok := params["boundary"]
	if !ok {
		return nil, nil, errors.New("malformed multipart content type header")
	}
	f, err := multipart.NewReader(bytes.NewReader(body), boundary).ReadForm(serverMaxFormMemory)
	if err != nil {
		return nil, nil, err
	}
	defer func() { _ = f.RemoveAll() }()
	prof, err := readField(f, "profile")
	if err != nil {
		return nil, nil, err
	}
	prev, err := readField(f, "prev_profile")
	if err != nil {
		return nil, nil, err
	}
	if prev != nil {
		return nil, nil, errors.New("unsupported client version. Please update github.com/grafana/pyroscope-go to the latest version")
	}
	r, err := readField(f, "sample_type_config")
	if err != nil || r == nil {
		return prof, nil, err
	}
	var config map[string]*SampleTypeConfig
	if err := json.Unmarshal(r, &config); err != nil {
		return nil, nil, err
	}
	return prof, config, nil
}

// readField mirrors form.ReadField: only file parts count, and an empty
// one is no field.
func readField(f *multipart.Form, name string) ([]byte, error) {
	files, ok := f.File[name]
	if !ok || len(files) == 0 || files[0].Size == 0 {
		return nil, nil
	}
	r, err := files[0].Open()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// rawFromBytes mirrors pkg/pprof, RawFromBytes: gunzip when the data is
// gzip (anything else that is not gzip is taken as is), then the
// vtproto decoder of the API module, as the server uses it. It returns the
// profile as github.com/google/pprof reads it, for the tests, and the
// uncompressed size.
func rawFromBytes(raw []byte) (*profilev1.Profile, int, error) {
	data := raw
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	switch {
	case errors.Is(err, gzip.ErrHeader):
	case err != nil:
		return nil, 0, fmt.Errorf("gzip reset: %w", err)
	default:
		if data, err = io.ReadAll(zr); err != nil {
			return nil, 0, fmt.Errorf("copy to buffer: %w", err)
		}
	}
	p := new(profilev1.Profile)
	if err := p.UnmarshalVT(data); err != nil {
		return nil, 0, err
	}
	return p, len(data), nil
}

// metricName mirrors RawProfile.metricName: a sample type "wall" names
// the profile "wall"; otherwise the first sample type whose display name
// (from the form's sample_type_config, else the defaults) contains "cpu",
// "alloc_"/"inuse_" (or is "space"/"objects"), "mutex_", "block_" or
// "goroutines" names it process_cpu, memory, mutex, block or goroutines;
// failing all, the last sample type's display name is the name.
func metricName(p *profilev1.Profile, stc map[string]*SampleTypeConfig) string {
	configs := stc
	if configs == nil {
		configs = defaultSampleTypeMapping()
	}
	str := func(i int64) string {
		if i < 0 || int(i) >= len(p.StringTable) {
			return ""
		}
		return p.StringTable[i]
	}
	var st string
	for _, vt := range p.SampleType {
		if st = str(vt.Type); st == "wall" {
			return st
		}
	}
	for _, vt := range p.SampleType {
		st = str(vt.Type)
		if c := configs[st]; c != nil && c.DisplayName != "" {
			st = c.DisplayName
		}
		switch {
		case strings.Contains(st, "cpu"):
			return "process_cpu"
		case strings.Contains(st, "alloc_") || strings.Contains(st, "inuse_") || st == "space" || st == "objects":
			return "memory"
		case strings.Contains(st, "mutex_"):
			return "mutex"
		case strings.Contains(st, "block_"):
			return "block"
		case strings.Contains(st, "goroutines"):
			return "goroutines"
		}
	}
	return st
}

// allowedForIngestion mirrors pkg/model, IsLabelAllowedForIngestion: no
// "__" names but __session_id__.
func allowedForIngestion(name string) bool {
	return !strings.HasPrefix(name, "__") || name == "__session_id__"
}

// seriesOf checks a decoded profile as the distributor does
// (pkg/validation/validate.go, ValidateLabels and ValidateProfile) and
// returns its series, one per sample type, with the IDs of pkg/model,
// LabelsForProfile.
func seriesOf(p *profilev1.Profile, size int, labels map[string]string) ([]ServerSeries, error) {
	if err := validateLabels(labels); err != nil {
		return nil, err
	}
	if err := validateProfile(p, size, labels); err != nil {
		return nil, err
	}
	gp, err := toGoogle(p)
	if err != nil {
		return nil, err
	}
	str := func(i int64) string { return p.StringTable[i] }
	var periodType, periodUnit string
	if p.PeriodType != nil {
		periodType, periodUnit = str(p.PeriodType.Type), str(p.PeriodType.Unit)
	}
	var out []ServerSeries
	for _, st := range p.SampleType {
		id := strings.Join([]string{labels[model.MetricNameLabel], str(st.Type), str(st.Unit), periodType, periodUnit}, ":")
		out = append(out, ServerSeries{Labels: maps.Clone(labels), ProfileTypeID: id, Profile: gp})
	}
	return out, nil
}

// toGoogle re-reads a decoded profile with github.com/google/pprof, for the
// tests' content checks.
func toGoogle(p *profilev1.Profile) (*profile.Profile, error) {
	b, err := p.MarshalVT()
	if err != nil {
		return nil, err
	}
	gp, err := profile.ParseData(b)
	if err != nil {
		return nil, fmt.Errorf("the server accepts it, but github.com/google/pprof cannot read it: %w", err)
	}
	return gp, nil
}

// validateLabels mirrors pkg/validation/validate.go, ValidateLabels, with
// the default limits. Names and the metric name are checked with
// prometheus/common's model, as the server checks them (its default,
// UTF-8 validation).
func validateLabels(ls map[string]string) error {
	if len(ls) == 0 {
		return errors.New("error at least one label pair is required per profile")
	}
	if len(ls) > serverMaxLabelNamesPerSeries {
		return fmt.Errorf("profile series '%v' has %d label names; limit %d", ls, len(ls), serverMaxLabelNamesPerSeries)
	}
	if !model.UTF8Validation.IsValidMetricName(ls[model.MetricNameLabel]) {
		return fmt.Errorf("invalid labels '%v' with error: invalid metric name", ls)
	}
	if ls["service_name"] == "" {
		return fmt.Errorf("invalid labels '%v' with error: service name is not provided", ls)
	}
	for _, k := range slices.Sorted(maps.Keys(ls)) {
		v := ls[k]
		switch {
		case len(k) > serverMaxLabelNameLength:
			return fmt.Errorf("profile with labels '%v' has label name too long: '%s'", ls, k)
		case len(v) > serverMaxLabelValueLength:
			return fmt.Errorf("profile with labels '%v' has label value too long: '%s'", ls, v)
		case !model.UTF8Validation.IsValidLabelName(k):
			return fmt.Errorf("invalid labels '%v' with error: invalid label name '%s'", ls, k)
		case !model.LabelValue(v).IsValid():
			return fmt.Errorf("invalid labels '%v' with error: invalid label value '%s'", ls, v)
		}
	}
	return nil
}

// validateProfile mirrors pkg/validation/validate.go, ValidateProfile, with
// the default limits (the depth and symbol limits truncate, not refuse).
func validateProfile(p *profilev1.Profile, size int, ls map[string]string) error {
	if size > serverMaxProfileSizeBytes {
		return fmt.Errorf("the profile with labels '%v' exceeds the size limit (max_profile_size_byte, actual: %d, limit: %d)", ls, size, serverMaxProfileSizeBytes)
	}
	if n := len(p.Sample); n > serverMaxProfileSamples {
		return fmt.Errorf("the profile with labels '%v' exceeds the samples count limit (max_profile_stacktrace_samples, actual: %d, limit: %d)", ls, n, serverMaxProfileSamples)
	}
	for _, s := range p.Sample {
		if len(s.Label) > serverMaxSampleLabels {
			return fmt.Errorf("the profile with labels '%v' exceeds the sample labels limit (max_profile_stacktrace_sample_labels, actual: %d, limit: %d)", ls, len(s.Label), serverMaxSampleLabels)
		}
	}
	for _, l := range p.Location {
		if l.Id == 0 {
			return errors.New("location id is 0")
		}
	}
	for _, f := range p.Function {
		if f.Id == 0 {
			return errors.New("function id is 0")
		}
	}
	for _, st := range p.SampleType {
		if st.Type < 0 || int(st.Type) >= len(p.StringTable) || st.Unit < 0 || int(st.Unit) >= len(p.StringTable) {
			return errors.New("sample type refers past the string table")
		}
		if strings.Contains(p.StringTable[st.Type], "-") {
			return errors.New("sample type contains -")
		}
	}
	if p.PeriodType != nil && (p.PeriodType.Type < 0 || int(p.PeriodType.Type) >= len(p.StringTable) || p.PeriodType.Unit < 0 || int(p.PeriodType.Unit) >= len(p.StringTable)) {
		return errors.New("period type refers past the string table")
	}
	return nil
}

// CheckPush returns what the distributor stores of a push.v1 request, or
// the error it refuses it with (pkg/distributor, Push: every sample is
// decoded with RawFromBytes, then ValidateLabels and ValidateProfile; a
// request without profiles is refused).
func CheckPush(req *pushv1.PushRequest) ([]ServerSeries, error) {
	var out []ServerSeries
	for i, s := range req.Series {
		labels := map[string]string{}
		for _, l := range s.Labels {
			if _, dup := labels[l.Name]; dup {
				return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("series %d: profile with labels '%v' has duplicate label name: '%s'", i, s.Labels, l.Name))
			}
			labels[l.Name] = l.Value
		}
		for j, smp := range s.Samples {
			p, size, err := rawFromBytes(smp.RawProfile)
			if err != nil {
				return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("series %d sample %d: %w", i, j, err))
			}
			ss, err := seriesOf(p, size, labels)
			if err != nil {
				return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("series %d sample %d: %w", i, j, err))
			}
			out = append(out, ss...)
		}
	}
	if len(out) == 0 {
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("no profiles received"))
	}
	return out, nil
}

// parseStacks mirrors the non-pprof path for the "groups" (collapsed
// stacks, "a;b;c 12" per line) and "lines" (one stack per line) formats:
// pkg/og/convert/profile/profile.go, RawProfile.Parse, with
// pkg/og/convert/parser.go (ParseGroups, ParseIndividualLines), then the
// adapter's Put (pkg/ingester/pyroscope/ingest_adapter.go), which names the
// profile from the service name's last dot-separated part
// (convertMetadata). It returns the status of a refusal: 422 for a parse
// error, 400 for Put's (ingestion.Error, mapped from connect's
// invalid_argument).
func parseStacks(format string, body []byte, md ingestMetadata) ([]ServerSeries, int, error) {
	counts := map[string]int64{}
	var order []string
	insert := func(stack string, n int64) {
		if _, ok := counts[stack]; !ok {
			order = append(order, stack)
		}
		counts[stack] += n
	}
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if format == "lines" {
			if line != "" {
				insert(line, 1)
			}
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		n, err := strconv.Atoi(line[i+1:])
		if err != nil {
			return nil, http.StatusUnprocessableEntity, err
		}
		insert(line[:i], int64(n))
	}
	if err := sc.Err(); err != nil {
		return nil, http.StatusUnprocessableEntity, err
	}
	if _, ok := md.labels["profile_id"]; ok {
		return nil, http.StatusOK, nil // Put skips profiles carrying a profile ID
	}
	metric, stType, stUnit, app, err := convertMetadata(md.labels[labelset.ReservedLabelNameName])
	if err != nil {
		return nil, http.StatusBadRequest, fmt.Errorf("invalid_argument: pyroscopeIngesterAdapter failed to convert metadata: %w", err)
	}
	p := &profile.Profile{SampleType: []*profile.ValueType{{Type: stType, Unit: stUnit}}}
	scale := int64(1)
	if md.sampleRate != 0 && (metric == "wall" || metric == "process_cpu") {
		scale = 1e9 / int64(md.sampleRate)
		p.Period = scale
		p.PeriodType = &profile.ValueType{Type: "cpu", Unit: "nanoseconds"}
		p.SampleType[0] = &profile.ValueType{Type: map[bool]string{true: "wall", false: "cpu"}[metric == "wall"], Unit: "nanoseconds"}
	}
	fns := map[string]*profile.Function{}
	for _, stack := range order {
		var locs []*profile.Location
		frames := strings.Split(stack, ";")
		for i := len(frames) - 1; i >= 0; i-- { // leaf first
			fn := fns[frames[i]]
			if fn == nil {
				fn = &profile.Function{ID: uint64(len(p.Function) + 1), Name: frames[i]}
				p.Function = append(p.Function, fn)
				p.Location = append(p.Location, &profile.Location{ID: fn.ID, Line: []profile.Line{{Function: fn}}})
				fns[frames[i]] = fn
			}
			locs = append(locs, p.Location[fn.ID-1])
		}
		p.Sample = append(p.Sample, &profile.Sample{Location: locs, Value: []int64{counts[stack] * scale}})
	}
	labels := map[string]string{model.MetricNameLabel: metric, "__delta__": "false"}
	if md.spyName != "" {
		labels["pyroscope_spy"] = md.spyName
	}
	for k, v := range md.labels {
		if allowedForIngestion(k) {
			labels[k] = v
		}
	}
	if _, ok := labels["service_name"]; !ok {
		labels["service_name"] = app
	} else if _, ok := labels["app_name"]; !ok {
		labels["app_name"] = app
	}
	var buf bytes.Buffer
	if err := p.WriteUncompressed(&buf); err != nil {
		return nil, http.StatusBadRequest, err
	}
	pv, size, err := rawFromBytes(buf.Bytes())
	if err == nil {
		var ss []ServerSeries
		if ss, err = seriesOf(pv, size, labels); err == nil {
			return ss, http.StatusOK, nil
		}
	}
	return nil, http.StatusBadRequest, fmt.Errorf("pyroscopeIngesterAdapter failed to push: %w", err)
}

// convertMetadata mirrors the adapter's convertMetadata: the service
// name's last dot-separated part is the profile type ("cpu" when there is
// no dot).
func convertMetadata(name string) (metric, stType, stUnit, app string, err error) {
	app = name
	parts := strings.Split(name, ".")
	if len(parts) <= 1 {
		stType = "cpu"
	} else {
		stType = parts[len(parts)-1]
		app = strings.Join(parts[:len(parts)-1], ".")
	}
	type m struct{ metric, typ, unit string }
	table := map[string]m{
		"cpu":                        {"process_cpu", "samples", "count"},
		"wall":                       {"wall", "samples", "count"},
		"inuse_objects":              {"memory", "inuse_objects", "count"},
		"inuse_space":                {"memory", "inuse_space", "bytes"},
		"alloc_objects":              {"memory", "alloc_objects", "count"},
		"alloc_space":                {"memory", "alloc_space", "bytes"},
		"goroutines":                 {"goroutine", "goroutines", "count"},
		"mutex_count":                {"mutex", "contentions", "count"},
		"mutex_duration":             {"mutex", "delay", "nanoseconds"},
		"block_count":                {"block", "contentions", "count"},
		"block_duration":             {"block", "delay", "nanoseconds"},
		"itimer":                     {"process_cpu", "samples", "count"},
		"alloc_in_new_tlab_objects":  {"memory", "alloc_in_new_tlab_objects", "count"},
		"alloc_in_new_tlab_bytes":    {"memory", "alloc_in_new_tlab_bytes", "bytes"},
		"alloc_outside_tlab_objects": {"memory", "alloc_outside_tlab_objects", "count"},
		"alloc_outside_tlab_bytes":   {"memory", "alloc_outside_tlab_bytes", "bytes"},
		"lock_count":                 {"block", "contentions", "count"},
		"lock_duration":              {"block", "delay", "nanoseconds"},
		"live":                       {"memory", "live", "count"},
		"exceptions":                 {"exceptions", "samples", "count"},
		"seconds":                    {"wall", "samples", "count"},
		"nanoseconds":                {"wall", "samples", "count"},
		"microseconds":               {"wall", "samples", "count"},
		"milliseconds":               {"wall", "samples", "count"},
		"bytes":                      {"memory", "samples", "bytes"},
	}
	e, ok := table[stType]
	if !ok {
		return "", "", "", "", fmt.Errorf("unknown profile type: %s", stType)
	}
	return e.metric, e.typ, e.unit, app, nil
}

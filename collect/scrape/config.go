package scrape

import (
	"cmp"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/goroscope/goroscope/pkg/httpconf"
	"github.com/goroscope/goroscope/pkg/label"
)

// Defaults and limits of the configuration.
const (
	// DefaultInterval is the collection interval when Config.Interval is 0
	// (Grafana Alloy's pyroscope.scrape default too).
	DefaultInterval = 15 * time.Second
	// DefaultTimeout bounds one request when no timeout is set; a CPU
	// profile request gets its profiling duration on top.
	DefaultTimeout = 10 * time.Second
	// DefaultConcurrency bounds the profiles being read and decoded at once
	// over all targets.
	DefaultConcurrency = 8
	// MaxTargets bounds the targets of one configuration.
	MaxTargets = 1000
	// MaxConcurrency bounds Config.Concurrency.
	MaxConcurrency = 256
)

// Config is the pprof scrape section of the agent configuration: the
// targets and what to collect from them. Zero values take the defaults;
// per-target values override the section's.
type Config struct {
	// Interval is the collection interval (key "interval"), default 15s.
	Interval time.Duration `yaml:"interval"`
	// Timeout bounds each request (key "timeout"), default 10s; a CPU
	// profile request may take cpu_duration longer.
	Timeout time.Duration `yaml:"timeout"`
	// CPUDuration is how long each CPU profile records (key
	// "cpu_duration"): whole seconds, at least 1s and at most interval-1s;
	// default interval-1s, so consecutive profiles cover almost all the time.
	CPUDuration time.Duration `yaml:"cpu_duration"`
	// Concurrency bounds the responses being read and decoded at once, over
	// all targets (key "concurrency"), default 8. Requests waiting for the
	// target (a CPU profile recording, a hung server) do not count.
	Concurrency int `yaml:"concurrency"`
	// MaxProfileBytes bounds a profile once decompressed (key
	// "max_profile_bytes"), default DefaultMaxProfileBytes (64 MiB), from
	// MinProfileBytes to MaxProfileBytes: a larger one (a gzip bomb) is
	// refused, reason too_large, before it is held whole.
	MaxProfileBytes int64 `yaml:"max_profile_bytes"`
	// Profiles to collect (key "profiles"): cpu, heap, mutex, block,
	// goroutine, goroutineleak. Default: all of them.
	Profiles []string `yaml:"profiles"`
	// Targets are the programs to scrape (key "targets").
	Targets []TargetConfig `yaml:"targets"`
}

// TargetConfig is one program serving net/http/pprof.
type TargetConfig struct {
	// URL is the base address (key "url"), e.g. http://10.0.0.5:6060; the
	// endpoints /debug/pprof/... are appended to its path, so a server that
	// mounts pprof under /internal is http://host:port/internal.
	URL string `yaml:"url"`
	// Name identifies the target in metrics, logs and the "instance" label
	// (key "name"); default: the URL's host:port, plus its path if any.
	Name string `yaml:"name"`
	// ServiceName is the service_name label (key "service_name"); default:
	// the executable's base name from /debug/pprof/cmdline, else Name.
	ServiceName string `yaml:"service_name"`
	// Labels are added to every profile of the target (key "labels").
	Labels map[string]string `yaml:"labels"`
	// Profiles and CPUDuration override the section's values.
	Profiles    []string      `yaml:"profiles"`
	CPUDuration time.Duration `yaml:"cpu_duration"`
	// MaxProfileBytes overrides the section's max_profile_bytes.
	MaxProfileBytes int64 `yaml:"max_profile_bytes"`
	// HTTPClientConfig is how to reach the target, the same keys as for
	// push endpoints (pkg/httpconf, inlined): basic_auth or bearer_token(_file)
	// (secrets from files are re-read when they change), headers, tls,
	// proxy_url, and timeout, which overrides the section's.
	httpconf.HTTPClientConfig `yaml:",inline"`
}

var targetNameRE = regexp.MustCompile(`^[A-Za-z0-9_.:/\[\]-]{1,128}$`)

// reservedLabels are set by the scraper itself.
var reservedLabels = []string{"service_name", "instance"}

// Validate checks the configuration and returns every problem at once, each
// naming its key ("targets[1].url: ...") and the fix.
func (c *Config) Validate() error {
	_, _, err := c.resolve()
	return err
}

// resolved is a validated target with every default filled in.
type resolved struct {
	TargetConfig
	base        *url.URL
	kinds       []Kind
	cpuDuration time.Duration
	timeout     time.Duration
	maxProfile  int64
	http        httpconf.HTTPClientConfig
}

// settings are the section's values with defaults filled in.
type settings struct {
	interval    time.Duration
	concurrency int
}

func (c *Config) resolve() (settings, []resolved, error) {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	s := settings{interval: c.Interval, concurrency: c.Concurrency}
	if s.interval == 0 {
		s.interval = DefaultInterval
	}
	if s.concurrency == 0 {
		s.concurrency = DefaultConcurrency
	}
	if s.interval < time.Second {
		bad("interval", "%s is too short; use at least 1s (2s or more to collect CPU profiles)", s.interval)
	}
	if c.Timeout < 0 {
		bad("timeout", "%s is negative; use a positive duration such as 10s, or 0 for the default", c.Timeout)
	}
	if s.concurrency < 1 || s.concurrency > MaxConcurrency {
		bad("concurrency", "%d is out of range; use 1 to %d, or 0 for the default %d", c.Concurrency, MaxConcurrency, DefaultConcurrency)
	}
	if c.MaxProfileBytes != 0 {
		if err := checkMaxProfile(c.MaxProfileBytes); err != nil {
			bad("max_profile_bytes", "%v", err)
		}
	}
	defKinds, err := parseKinds(c.Profiles)
	if err != nil {
		bad("profiles", "%v", err)
	}
	if len(c.Targets) > MaxTargets {
		bad("targets", "%d targets, more than %d; split them over several agents", len(c.Targets), MaxTargets)
	}
	out := make([]resolved, 0, len(c.Targets))
	names := map[string]int{}
	for i := range c.Targets {
		r, terrs := c.resolveTarget(i, s.interval, defKinds)
		errs = append(errs, terrs...)
		if len(terrs) > 0 {
			continue
		}
		if j, dup := names[r.Name]; dup {
			bad(fmt.Sprintf("targets[%d].name", i), "%q is also the name of targets[%d]; give each target its own name", r.Name, j)
			continue
		}
		names[r.Name] = i
		out = append(out, r)
	}
	if len(errs) > 0 {
		return s, nil, errors.Join(errs...)
	}
	return s, out, nil
}

func (c *Config) resolveTarget(i int, interval time.Duration, defKinds []Kind) (resolved, []error) {
	t := c.Targets[i]
	key := fmt.Sprintf("targets[%d]", i)
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", key, field, fmt.Sprintf(format, args...)))
	}
	r := resolved{TargetConfig: t, kinds: defKinds, timeout: c.Timeout, cpuDuration: c.CPUDuration}
	if t.Profiles != nil {
		ks, err := parseKinds(t.Profiles)
		if err != nil {
			bad("profiles", "%v", err)
		}
		r.kinds = ks
	}
	if t.Timeout != 0 {
		r.timeout = t.Timeout
	}
	r.maxProfile = cmp.Or(t.MaxProfileBytes, c.MaxProfileBytes, DefaultMaxProfileBytes)
	if t.MaxProfileBytes != 0 {
		if err := checkMaxProfile(t.MaxProfileBytes); err != nil {
			bad("max_profile_bytes", "%v", err)
		}
	}
	if r.timeout <= 0 { // a negative timeout is reported with the section's or the client config's keys
		r.timeout = DefaultTimeout
	}
	if t.CPUDuration != 0 {
		r.cpuDuration = t.CPUDuration
	}
	if slices.Contains(r.kinds, KindCPU) {
		if r.cpuDuration == 0 {
			r.cpuDuration = (interval - time.Second).Truncate(time.Second)
		}
		switch {
		case r.cpuDuration < time.Second:
			bad("cpu_duration", "%s is too short (the runtime profiles whole seconds); use at least 1s, with an interval of at least 2s", r.cpuDuration)
		case r.cpuDuration%time.Second != 0:
			bad("cpu_duration", "%s is not whole seconds (net/http/pprof takes ?seconds=N); use e.g. %s", r.cpuDuration, r.cpuDuration.Truncate(time.Second))
		case r.cpuDuration > interval-time.Second:
			bad("cpu_duration", "%s leaves no room in the %s interval; use at most %s (interval minus 1s)", r.cpuDuration, interval, interval-time.Second)
		}
	}

	if t.URL == "" {
		bad("url", "missing; set it to the program's pprof base address, e.g. http://127.0.0.1:6060")
	} else if u, err := httpconf.ParseURL(t.URL); err != nil {
		errs = append(errs, under(key, err)...)
	} else {
		switch {
		case u.RawQuery != "" || u.Fragment != "":
			bad("url", "%q has a query or fragment; give the base address only (the scraper adds /debug/pprof/... and its parameters)", t.URL)
		case strings.HasSuffix(strings.TrimSuffix(u.Path, "/"), "/debug/pprof"):
			bad("url", "%q ends in /debug/pprof; give the base address (the scraper appends /debug/pprof/...)", t.URL)
		}
		u.Path = strings.TrimSuffix(u.Path, "/")
		r.base = u
		if r.Name == "" {
			r.Name = u.Host + u.Path
		}
	}
	if r.Name != "" && !targetNameRE.MatchString(r.Name) {
		bad("name", "%q: use letters, digits and . _ - : / [ ] (at most 128)", r.Name)
	}
	if t.ServiceName != "" && !labelValueOK(t.ServiceName) {
		bad("service_name", "%q is not a valid label value; use at most %d bytes of UTF-8 without control characters", t.ServiceName, label.MaxValueBytes)
	}
	for k, v := range t.Labels {
		switch {
		case !label.ValidName(k) || strings.HasPrefix(k, "__"):
			bad("labels."+k, "label name must match [a-zA-Z_][a-zA-Z0-9_]* and not start with __; rename it")
		case slices.Contains(reservedLabels, k):
			bad("labels."+k, "%s is set by the scraper; use the service_name or name key instead", k)
		case !labelValueOK(v):
			bad("labels."+k, "value is empty or not valid UTF-8 of at most %d bytes; fix it", label.MaxValueBytes)
		}
	}

	if err := t.HTTPClientConfig.Validate(r.base); err != nil {
		errs = append(errs, under(key, err)...)
	}
	r.http = t.HTTPClientConfig
	// Per-request deadlines are shorter; this bounds the longest one.
	r.http.Timeout = r.timeout + r.cpuDuration
	return r, errs
}

// checkMaxProfile checks a max_profile_bytes value.
func checkMaxProfile(n int64) error {
	if n < MinProfileBytes || n > MaxProfileBytes {
		return fmt.Errorf("%d is out of range; use %d (64 KiB) to %d (512 MiB) bytes, or 0 for the default %d (64 MiB)", n, MinProfileBytes, MaxProfileBytes, DefaultMaxProfileBytes)
	}
	return nil
}

// parseKinds parses a profiles list; nil or empty means every kind.
func parseKinds(names []string) ([]Kind, error) {
	if len(names) == 0 {
		return AllKinds, nil
	}
	var errs []error
	var out []Kind
	for _, n := range names {
		k, err := ParseKind(n)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if slices.Contains(out, k) {
			errs = append(errs, fmt.Errorf("%q is listed twice; list it once", n))
			continue
		}
		out = append(out, k)
	}
	// Keep the collection order whatever the list's order.
	slices.SortFunc(out, func(a, b Kind) int { return slices.Index(AllKinds, a) - slices.Index(AllKinds, b) })
	return out, errors.Join(errs...)
}

func labelValueOK(v string) bool {
	if v == "" || len(v) > label.MaxValueBytes || !utf8.ValidString(v) {
		return false
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// under puts the errors of err (an errors.Join result, each naming a key)
// under key: "targets[1]." + "tls: ...".
func under(key string, err error) []error {
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = fmt.Errorf("%s.%w", key, e)
	}
	return out
}

package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/goroscope/goroscope/collect/discovery"
	"github.com/goroscope/goroscope/collect/scrape"
	"github.com/goroscope/goroscope/pkg/findings"
	"github.com/goroscope/goroscope/pkg/fold"
)

// Config is everything the agent can be told. Flags set the common fields;
// the YAML file (--config) sets any. See configs/goroscope.yaml.
type Config struct {
	// Listen is the address of the web UI and its API, /metrics, /healthz
	// and (with HTTP.Pprof) /debug/pprof.
	Listen string `yaml:"listen"`
	// HTTP bounds and guards the HTTP servers: timeouts, a connection cap,
	// a token for the UI, a separate metrics address.
	HTTP HTTPConfig `yaml:"http"`
	// DataDir holds the local store.
	DataDir           string   `yaml:"data_dir"`
	SnapshotInterval  Duration `yaml:"snapshot_interval"`
	DiscoveryInterval Duration `yaml:"discovery_interval"`
	// CycleBudget bounds the agent time spent walking per snapshot interval;
	// processes that do not fit are walked in a later cycle, and counted.
	CycleBudget Duration `yaml:"cycle_budget"`
	// Walker is auto, ebpf or procmem.
	Walker string `yaml:"walker"`
	// CPUFrequency is the eBPF CPU sampler's rate in Hz (19-999); 0 turns
	// CPU sampling off. CPUKernelFrames adds kernel frames to CPU stacks.
	CPUFrequency    int             `yaml:"cpu_frequency"`
	CPUKernelFrames bool            `yaml:"cpu_kernel_frames"`
	Log             LogConfig       `yaml:"log"`
	Store           StoreConfig     `yaml:"store"`
	Discovery       discovery.Rules `yaml:"discovery"`
	// RemoteWrite endpoints receive the series (Prometheus, Mimir, Thanos,
	// VictoriaMetrics); Pyroscope endpoints the profiles.
	RemoteWrite []EndpointConfig `yaml:"remote_write"`
	Pyroscope   []EndpointConfig `yaml:"pyroscope"`
	// PprofScrape lists programs serving net/http/pprof to collect CPU,
	// heap, mutex, block and goroutine profiles from (docs/scrape.md).
	PprofScrape scrape.Config `yaml:"pprof_scrape"`
	// Limits bound the memory the agent takes, whatever the programs it
	// watches do.
	Limits LimitsConfig `yaml:"limits"`
	// Findings sets the thresholds of the findings: leak, stuck, all-asleep
	// and the runtime ones (docs/findings-json.md).
	Findings FindingsConfig `yaml:"findings"`
	// RuntimeHealth sets the reads of each process's runtime settings and
	// health and of its cgroup's limits.
	RuntimeHealth RuntimeHealthConfig `yaml:"runtime_health"`
}

// LimitsConfig bounds what the agent holds for the programs it watches.
type LimitsConfig struct {
	// Memory is the agent's soft memory limit (the Go runtime's
	// GOMEMLIMIT): "auto" sets MemoryRatio of the limit of the agent's own
	// memory cgroup (v1 or v2) when it has one, "off" sets none, or a size
	// ("200MiB"). A GOMEMLIMIT in the environment wins over it.
	Memory string `yaml:"memory"`
	// MaxGoroutines bounds the goroutines one snapshot keeps in detail: a
	// process with more has every k-th kept, each counted k times in the
	// profiles, and its per-state counts stay exact.
	MaxGoroutines int `yaml:"max_goroutines"`
	// LabelKeys and LabelValues bound the target pprof labels of each
	// process: keys past LabelKeys are left out, values past LabelValues
	// per key become "other"; both are counted in
	// goroscope_label_values_overflow_total.
	LabelKeys   int `yaml:"label_keys"`
	LabelValues int `yaml:"label_values"`
}

// MemoryRatio is the part of its cgroup's memory limit the agent's soft
// limit takes with limits.memory "auto": the rest is for what the Go
// runtime does not count but the cgroup charges, above all the eBPF maps
// (about 35 MB, preallocated), and the page cache of the store.
const MemoryRatio = 0.7

// DefaultMaxGoroutines is limits.max_goroutines by default: a walk keeps
// about 770 bytes per goroutine kept in detail, so 100k take about 80 MB.
const DefaultMaxGoroutines = 100_000

// labelLimits are the label bounds the limits set.
func (l LimitsConfig) labelLimits() fold.LabelLimits {
	return fold.LabelLimits{MaxKeys: l.LabelKeys, MaxValues: l.LabelValues}
}

// LogConfig sets the agent's logging.
type LogConfig struct {
	Format string `yaml:"format"` // text or json
	Level  string `yaml:"level"`  // debug, info, warn, error
}

// StoreConfig bounds the local store.
type StoreConfig struct {
	MaxAge   Duration `yaml:"max_age"`
	MaxBytes ByteSize `yaml:"max_bytes"`
}

// DefaultConfig is the embedded default: local store and UI, no backend.
func DefaultConfig() Config {
	return Config{
		Listen:            "127.0.0.1:7070",
		HTTP:              defaultHTTP(),
		DataDir:           "/var/lib/goroscope",
		SnapshotInterval:  Duration(10 * time.Second),
		DiscoveryInterval: Duration(10 * time.Second),
		Walker:            "auto",
		CPUFrequency:      99,
		Log:               LogConfig{Format: "text", Level: "info"},
		Store:             StoreConfig{MaxAge: Duration(24 * time.Hour), MaxBytes: 1 << 30},
		Limits: LimitsConfig{Memory: "auto", MaxGoroutines: DefaultMaxGoroutines,
			LabelKeys: fold.DefaultMaxLabelKeys, LabelValues: fold.DefaultMaxLabelValues},
		Findings:      FindingsConfig{Config: findings.DefaultConfig(), TopGroups: DefaultTopGroups},
		RuntimeHealth: RuntimeHealthConfig{Enabled: true, MaxCostPercent: DefaultHealthCostPercent},
	}
}

// Duration is a time.Duration written as "10s", "5m".
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return &valueError{line: n.Line, msg: notDuration(n.Value)}
	}
	*d = Duration(v)
	return nil
}

// String implements flag.Value.
func (d *Duration) String() string { return time.Duration(*d).String() }

// Set implements flag.Value.
func (d *Duration) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return errors.New(notDuration(s))
	}
	*d = Duration(v)
	return nil
}

// notDuration says that v is not a duration and how to write one.
func notDuration(v string) string {
	if _, err := strconv.ParseFloat(v, 64); err == nil {
		return fmt.Sprintf("%q has no unit: write %ss (or %sm, %sh)", v, v, v, v)
	}
	return fmt.Sprintf("%q is not a duration (write e.g. 10s, 5m, 1h)", v)
}

// ByteSize is a size written as 1073741824, "512MiB", "1GB".
type ByteSize int64

var sizeRE = regexp.MustCompile(`^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*$`)

// ParseByteSize parses "512MiB", "1GB", "1000".
func ParseByteSize(s string) (ByteSize, error) {
	m := sizeRE.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%q is not a size (write e.g. 512MiB, 1GB)", s)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size: %w", s, err)
	}
	mult := map[string]float64{"": 1, "B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
		"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}[m[2]]
	return ByteSize(v * mult), nil
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return &valueError{line: n.Line, msg: err.Error()}
	}
	*b = v
	return nil
}

// valueError is a bad value at a line of the config file.
type valueError struct {
	line int
	msg  string
}

func (e *valueError) Error() string { return fmt.Sprintf("line %d: %s", e.line, e.msg) }

// envRef matches ${NAME} references in config values.
var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// LoadConfig reads a YAML config file over the defaults. Unknown keys, bad
// values and references to unset environment variables are errors that
// name the file, the line and the key.
func LoadConfig(path string, base Config) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return base, fmt.Errorf("config: %w", err)
	}
	cfg, err := parseConfig(data, base)
	if err != nil {
		return base, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

func parseConfig(data []byte, cfg Config) (Config, error) {
	data, err := expandEnv(data)
	if err != nil {
		return cfg, err
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return cfg, nil // empty file: the defaults
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			// The parser names where a block began, not the line that
			// broke it: find a line indented as no open block is.
			if bad := badIndent(data); bad != "" {
				return cfg, errors.New(bad)
			}
		}
		return cfg, rewordYAML(err)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

var (
	unknownField = regexp.MustCompile(`^line (\d+): field (\S+) not found in type \S+$`)
	// badDuration is the decoder's error for a time.Duration field (the
	// HTTP client config's and the scrape section's).
	badDuration = regexp.MustCompile("^line (\\d+): cannot unmarshal !!\\w+ `(.*)` into time.Duration$")
)

// rewordYAML turns the YAML decoder's errors into ones naming the line and key.
func rewordYAML(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs := make([]string, 0, len(te.Errors))
		for _, e := range te.Errors {
			if m := unknownField.FindStringSubmatch(e); m != nil {
				e = fmt.Sprintf("line %s: unknown key %q (configs/goroscope.yaml lists the keys)", m[1], m[2])
			} else if m := badDuration.FindStringSubmatch(e); m != nil {
				e = fmt.Sprintf("line %s: %s", m[1], notDuration(m[2]))
			}
			msgs = append(msgs, e)
		}
		return errors.New(strings.Join(msgs, "; "))
	}
	var ve *valueError
	if errors.As(err, &ve) {
		return ve
	}
	return errors.New(strings.TrimPrefix(err.Error(), "yaml: "))
}

// badIndent finds the first line of a YAML file indented with a tab, or
// as no open block is, and says so; "" if none is. It knows block
// mappings and sequences, which is all a goroscope config uses.
func badIndent(data []byte) string {
	type block struct {
		indent int
		// item is the mapping inside a list item ("- key: value"): its
		// keys line up after the dash, and a dash there is out of place.
		item bool
	}
	var open []block // the enclosing blocks, innermost last
	prev := ""       // the last significant line
	for i, line := range strings.Split(string(data), "\n") {
		text := strings.TrimLeft(line, " ")
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		if strings.HasPrefix(text, "\t") {
			return fmt.Sprintf("line %d: indented with a tab; YAML indents with spaces", i+1)
		}
		indent := len(line) - len(text)
		popped := -1
		for len(open) > 0 && open[len(open)-1].indent > indent {
			popped = open[len(open)-1].indent
			open = open[:len(open)-1]
		}
		if popped >= 0 && (len(open) == 0 || open[len(open)-1].indent < indent) {
			return fmt.Sprintf("line %d: indented %d spaces, less than the block it ends (%d) but more than the one it would continue: align it with its siblings", i+1, indent, popped)
		}
		dash := strings.HasPrefix(text, "- ") || text == "-"
		switch top := len(open) - 1; {
		case top >= 0 && open[top].indent == indent:
			if dash && open[top].item {
				return fmt.Sprintf("line %d: a list item where a key of the item above is expected: indent it deeper, or align the dash with the one above", i+1)
			}
		case top >= 0 && open[top].item && strings.HasPrefix(prev, "- ") && strings.Contains(prev, ": "):
			return fmt.Sprintf("line %d: indented %d spaces, which matches no enclosing block: the keys of the list item above are at %d", i+1, indent, open[top].indent)
		case top >= 0 && !opensBlock(prev):
			return fmt.Sprintf("line %d: indented %d spaces, deeper than the line above, which opens no block: align it with the key above", i+1, indent)
		case top >= 0 && open[top].indent > indent:
			return fmt.Sprintf("line %d: indented %d spaces, which matches no enclosing block", i+1, indent)
		default:
			open = append(open, block{indent: indent})
		}
		if dash && strings.Contains(text, ": ") {
			open = append(open, block{indent: indent + 2, item: true})
		}
		prev = strings.TrimSpace(text)
	}
	return ""
}

// opensBlock reports whether a YAML line may be followed by a deeper one:
// a key without a value, a list item, or a value continuing.
func opensBlock(line string) bool {
	if i := strings.Index(line, " #"); i >= 0 {
		line = strings.TrimSpace(line[:i])
	}
	return strings.HasSuffix(line, ":") || strings.HasPrefix(line, "- ") || line == "-" ||
		strings.HasSuffix(line, "|") || strings.HasSuffix(line, ">") || !strings.Contains(line, ": ")
}

// expandEnv replaces ${NAME} with the environment variable NAME, line by
// line so that line numbers stay true; comment lines are left alone.
func expandEnv(data []byte) ([]byte, error) {
	lines := bytes.Split(data, []byte("\n"))
	for i, line := range lines {
		if bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			continue
		}
		var missing string
		lines[i] = envRef.ReplaceAllFunc(line, func(ref []byte) []byte {
			name := string(envRef.FindSubmatch(ref)[1])
			v, ok := os.LookupEnv(name)
			if !ok && missing == "" {
				missing = name
			}
			return []byte(v)
		})
		if missing != "" {
			key, _, _ := strings.Cut(strings.TrimSpace(string(line)), ":")
			return nil, fmt.Errorf("line %d: key %q refers to ${%s}, which is not set in the environment", i+1, key, missing)
		}
	}
	return bytes.Join(lines, []byte("\n")), nil
}

// Validate checks values that decode but make no sense, and names the
// push endpoints that have no name. LoadConfig validates what it loads;
// call it after changing a Config.
func (c *Config) Validate() error {
	var errs []string
	if time.Duration(c.SnapshotInterval) < 100*time.Millisecond {
		errs = append(errs, fmt.Sprintf("snapshot_interval %s is too short (at least 100ms)", c.SnapshotInterval.String()))
	}
	if time.Duration(c.DiscoveryInterval) < 100*time.Millisecond {
		errs = append(errs, fmt.Sprintf("discovery_interval %s is too short (at least 100ms)", c.DiscoveryInterval.String()))
	}
	if c.CycleBudget < 0 {
		errs = append(errs, "cycle_budget is negative")
	}
	switch c.Walker {
	case "auto", "ebpf", "procmem":
	default:
		errs = append(errs, fmt.Sprintf("walker %q: want auto, ebpf or procmem", c.Walker))
	}
	if c.CPUFrequency != 0 && (c.CPUFrequency < 19 || c.CPUFrequency > 999) {
		errs = append(errs, fmt.Sprintf("cpu_frequency %d: want 19 to 999 Hz, or 0 to turn CPU sampling off", c.CPUFrequency))
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		errs = append(errs, fmt.Sprintf("log.format %q: want text or json", c.Log.Format))
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Sprintf("log.level %q: want debug, info, warn or error", c.Log.Level))
	}
	if c.Listen == "" {
		errs = append(errs, "listen is empty (e.g. 127.0.0.1:7070)")
	}
	errs = append(errs, c.HTTP.validate(c.Listen)...)
	if c.DataDir == "" {
		errs = append(errs, "data_dir is empty")
	}
	if c.Store.MaxBytes < 1<<20 {
		errs = append(errs, fmt.Sprintf("store.max_bytes %d is below 1MiB", c.Store.MaxBytes))
	}
	errs = append(errs, c.Limits.validate()...)
	errs = append(errs, c.Findings.validate()...)
	errs = append(errs, c.RuntimeHealth.validate()...)
	if err := c.Discovery.Compile(); err != nil {
		errs = append(errs, "discovery."+err.Error())
	}
	if len(c.PprofScrape.Targets) > 0 {
		if err := c.PprofScrape.Validate(); err != nil {
			errs = append(errs, "pprof_scrape: "+err.Error())
		}
	}
	used := map[string]bool{}
	if err := endpointNames("remote_write", c.RemoteWrite, used); err != nil {
		errs = append(errs, err.Error())
	}
	if err := endpointNames("pyroscope", c.Pyroscope, used); err != nil {
		errs = append(errs, err.Error())
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// validate names what is wrong with the limits.
func (l LimitsConfig) validate() []string {
	var errs []string
	if _, _, err := l.memoryLimit(); err != nil {
		errs = append(errs, err.Error())
	}
	if l.MaxGoroutines < 1000 {
		errs = append(errs, fmt.Sprintf("limits.max_goroutines %d: want at least 1000", l.MaxGoroutines))
	}
	if l.LabelKeys < 1 || l.LabelValues < 1 {
		errs = append(errs, fmt.Sprintf("limits.label_keys %d and limits.label_values %d: want at least 1 each", l.LabelKeys, l.LabelValues))
	}
	return errs
}

// memoryLimit reads limits.memory: auto, or off, or a size of at least
// 32MiB.
func (l LimitsConfig) memoryLimit() (auto bool, size int64, err error) {
	switch l.Memory {
	case "auto", "":
		return true, 0, nil
	case "off":
		return false, 0, nil
	}
	n, err := ParseByteSize(l.Memory)
	if err != nil {
		return false, 0, fmt.Errorf("limits.memory %q: want auto, off or a size such as 200MiB", l.Memory)
	}
	if n < 32<<20 {
		return false, 0, fmt.Errorf("limits.memory %q is below 32MiB: the agent cannot run in it", l.Memory)
	}
	return false, int64(n), nil
}

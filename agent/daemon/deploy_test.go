package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"

	"github.com/goroscope/goroscope/pkg/fold"
	"github.com/goroscope/goroscope/push/queue"
)

// The deploy/ files these tests check.
const (
	rulesFile     = "../../deploy/alerts/goroscope-rules.yaml"
	rulesTestFile = "../../deploy/alerts/goroscope-rules.test.yaml"
	dashboardFile = "../../deploy/grafana/goroscope-dashboard.json"
)

// promtool finds Prometheus' promtool; CI installs it with the prometheus package.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("promtool not found (apt-get install prometheus): %v", err)
		}
		t.Skipf("promtool not found (apt-get install prometheus): %v", err)
	}
	return p
}

// exportedMetrics is every metric name the agent serves: its registries'
// descriptions, the per-process series and the histogram suffixes.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	reg := newSelfMetrics(&Agent{}).reg
	if _, err := queue.NewMetrics(reg); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	add := func(n string) {
		for _, suffix := range []string{"", "_bucket", "_sum", "_count"} {
			names[n+suffix] = true
		}
	}
	ch := make(chan *prometheus.Desc, 256)
	go func() {
		for _, c := range []prometheus.Collector{reg} {
			c.Describe(ch)
		}
		close(ch)
	}()
	fq := regexp.MustCompile(`fqName: "([^"]+)"`)
	for d := range ch {
		if m := fq.FindStringSubmatch(d.String()); m != nil {
			add(m[1])
		}
	}
	for _, d := range []*prometheus.Desc{descInterval, descWatched} {
		add(fq.FindStringSubmatch(d.String())[1])
	}
	for _, n := range []string{fold.MetricGoroutines, fold.MetricBlockedSeconds, fold.MetricProcessInfo, MetricGroupGoroutines, MetricFindings} {
		add(n)
	}
	for n := range healthMetrics {
		add(n)
	}
	if !names["goroscope_push_sent_items_total"] || !names["goroscope_snapshot_duration_seconds_bucket"] || !names["process_cpu_seconds_total"] {
		t.Fatalf("metric names incomplete: %v", names)
	}
	return names
}

// metricRefs finds the metric names a PromQL expression refers to: every
// identifier of goroscope's, Go's or the process collector's namespaces.
var metricRefs = regexp.MustCompile(`\b(goroscope[_:][a-zA-Z0-9_:]*|process_[a-z_]+|go_[a-z_]+)\b`)

// quoted matches PromQL string literals, which name no metric.
var quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

// checkRefs fails for names expr uses that nothing defines.
func checkRefs(t *testing.T, where, expr string, known map[string]bool) {
	t.Helper()
	for _, n := range metricRefs.FindAllString(quoted.ReplaceAllString(expr, `""`), -1) {
		if !known[n] {
			t.Errorf("%s: %s is not a metric the agent serves nor a recording rule: %s", where, n, expr)
		}
	}
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Record string `yaml:"record"`
			Alert  string `yaml:"alert"`
			Expr   string `yaml:"expr"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// TestAlertRules: the rules are valid, their unit tests (a leaking process
// fires, a steady pool does not) pass, and they use only real metrics.
func TestAlertRules(t *testing.T) {
	pt := promtool(t)
	for _, args := range [][]string{{"check", "rules", rulesFile}, {"test", "rules", rulesTestFile}} {
		out, err := exec.Command(pt, args...).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "SUCCESS") {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	known := exportedMetrics(t)
	raw, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.Unmarshal(raw, &rf); err != nil {
		t.Fatal(err)
	}
	alerts := 0
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				known[r.Record] = true
			}
		}
	}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			checkRefs(t, "rule "+r.Record+r.Alert, r.Expr, known)
			if r.Alert != "" {
				alerts++
			}
		}
	}
	if alerts < 5 {
		t.Errorf("%d alerts, want at least 5", alerts)
	}
}

type dashboard struct {
	UID    string `json:"uid"`
	Panels []struct {
		Type       string `json:"type"`
		Title      string `json:"title"`
		Datasource *struct {
			Type string `json:"type"`
			UID  string `json:"uid"`
		} `json:"datasource"`
		Targets []struct {
			Expr          string `json:"expr"`
			ProfileTypeID string `json:"profileTypeId"`
		} `json:"targets"`
	} `json:"panels"`
	Templating struct {
		List []struct {
			Name string `json:"name"`
		} `json:"list"`
	} `json:"templating"`
}

// grafanaVars are the dashboard's variables as they appear in queries.
var grafanaVars = regexp.MustCompile(`\$\{?([a-z_]+)\}?`)

// TestDashboard: every query of the Grafana dashboard is valid PromQL once
// its variables are filled in, uses only metrics the agent serves, and only
// variables the dashboard defines; the flame graphs ask for the profile
// types the agent pushes.
func TestDashboard(t *testing.T) {
	pt := promtool(t)
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	vars := map[string]bool{"__all": true}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
	}
	known := exportedMetrics(t)
	known["goroscope:goroutines_blocked_over_10m"] = true
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	queries, flames := 0, map[string]bool{}
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil {
			t.Errorf("panel %q has no datasource", p.Title)
			continue
		}
		for _, tg := range p.Targets {
			for _, m := range grafanaVars.FindAllStringSubmatch(tg.Expr+p.Datasource.UID, -1) {
				if !vars[m[1]] {
					t.Errorf("panel %q uses $%s, which the dashboard does not define", p.Title, m[1])
				}
			}
			if p.Type == "flamegraph" {
				flames[tg.ProfileTypeID] = true
				continue
			}
			checkRefs(t, fmt.Sprintf("panel %q", p.Title), tg.Expr, known)
			expr := grafanaVars.ReplaceAllString(tg.Expr, "x")
			fmt.Fprintf(&rules, "      - record: dashboard:query_%d\n        expr: %q\n", queries, expr)
			queries++
		}
	}
	if queries < 10 {
		t.Errorf("%d queries, want at least 10", queries)
	}
	for _, want := range []string{"goroutine:goroutine:count:goroutine:count", "goroutine_wall:wall:nanoseconds:wall:nanoseconds"} {
		if !flames[want] {
			t.Errorf("no flame graph of %s (have %v)", want, flames)
		}
	}
	path := filepath.Join(t.TempDir(), "dashboard-queries.yaml")
	if err := os.WriteFile(path, []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(pt, "check", "rules", path).CombinedOutput(); err != nil {
		t.Errorf("dashboard queries are not valid PromQL: %v\n%s", err, out)
	}
}

// The deploy/ files the hardening tests check.
const (
	unitFile      = "../../deploy/goroscope.service"
	daemonSetFile = "../../deploy/daemonset.yaml"
	// maxExposure is the highest `systemd-analyze security` exposure the
	// unit may have (0 is locked down, 10 is unprotected).
	maxExposure = 3.0
)

// TestDeploySystemdUnit checks that the unit stays sandboxed: its exposure
// under `systemd-analyze security` is at most maxExposure, and it holds no
// capability beyond the ones the agent needs.
func TestDeploySystemdUnit(t *testing.T) {
	unit, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	directives := map[string][]string{}
	for line := range strings.Lines(string(unit)) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if ok && !strings.HasPrefix(k, "#") {
			directives[k] = append(directives[k], v)
		}
	}
	wantCaps := "CAP_BPF CAP_PERFMON CAP_SYS_PTRACE CAP_DAC_READ_SEARCH"
	for _, tc := range []struct{ key, want string }{
		{"CapabilityBoundingSet", wantCaps},
		{"AmbientCapabilities", wantCaps},
		{"NoNewPrivileges", "yes"},
		{"ProtectSystem", "strict"},
		{"StateDirectory", "goroscope"},
		{"ProtectKernelTunables", "yes"},
		{"ProtectKernelModules", "yes"},
		{"ProtectControlGroups", "yes"},
		{"RestrictNamespaces", "yes"},
		{"RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"},
		{"SystemCallArchitectures", "native"},
		{"MemoryDenyWriteExecute", "yes"},
		{"MemoryMax", "256M"},
	} {
		if got := directives[tc.key]; len(got) != 1 || got[0] != tc.want {
			t.Errorf("%s: %s=%q, want %q", unitFile, tc.key, got, tc.want)
		}
	}
	if f := directives["SystemCallFilter"]; len(f) == 0 || !strings.HasPrefix(f[0], "@system-service ") {
		t.Errorf("%s: SystemCallFilter=%q, want an allow list starting with @system-service", unitFile, f)
	}

	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("systemd-analyze not found (apt-get install systemd): %v", err)
		}
		t.Skipf("systemd-analyze not found (apt-get install systemd): %v", err)
	}
	// --offline=true analyses the file as it is, not a loaded unit;
	// --threshold makes the exit status non-zero above it.
	cmd := exec.Command(sa, "security", "--no-pager", "--offline=true",
		fmt.Sprintf("--threshold=%d", int(maxExposure*10)), unitFile)
	out, runErr := cmd.CombinedOutput()
	m := regexp.MustCompile(`Overall exposure level for \S+: (\d+\.\d+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security printed no exposure (%v):\n%s", runErr, out)
	}
	var exposure float64
	if _, err := fmt.Sscan(string(m[1]), &exposure); err != nil {
		t.Fatal(err)
	}
	if exposure > maxExposure || runErr != nil {
		t.Errorf("%s: exposure %.1f, want at most %.1f (%v):\n%s", unitFile, exposure, maxExposure, runErr, out)
	}
	t.Logf("%s: exposure %.1f", unitFile, exposure)
}

// k8sObject is the part of a Kubernetes manifest the tests read.
type k8sObject struct {
	Kind     string                `yaml:"kind"`
	Metadata struct{ Name string } `yaml:"metadata"`
	Data     map[string]string     `yaml:"data"`
	Spec     yaml.Node             `yaml:"spec"`
}

// daemonSetObjects reads every object of deploy/daemonset.yaml, by kind.
func daemonSetObjects(t *testing.T) map[string]k8sObject {
	t.Helper()
	f, err := os.Open(daemonSetFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	objs := map[string]k8sObject{}
	dec := yaml.NewDecoder(f)
	for {
		var o k8sObject
		if err := dec.Decode(&o); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatalf("%s: %v", daemonSetFile, err)
		}
		if _, dup := objs[o.Kind]; dup {
			t.Fatalf("%s: two %s objects", daemonSetFile, o.Kind)
		}
		objs[o.Kind] = o
	}
	for _, k := range []string{"ConfigMap", "DaemonSet", "NetworkPolicy"} {
		if _, ok := objs[k]; !ok {
			t.Fatalf("%s: no %s", daemonSetFile, k)
		}
	}
	return objs
}

type podSpec struct {
	HostPID                      bool  `yaml:"hostPID"`
	HostNetwork                  bool  `yaml:"hostNetwork"`
	AutomountServiceAccountToken *bool `yaml:"automountServiceAccountToken"`
	SecurityContext              struct {
		SeccompProfile struct {
			Type             string `yaml:"type"`
			LocalhostProfile string `yaml:"localhostProfile"`
		} `yaml:"seccompProfile"`
	} `yaml:"securityContext"`
	Containers []struct {
		Name  string   `yaml:"name"`
		Args  []string `yaml:"args"`
		Ports []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
			HostPort      int    `yaml:"hostPort"`
		} `yaml:"ports"`
		SecurityContext struct {
			Privileged               *bool `yaml:"privileged"`
			AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
			ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
			Capabilities             struct {
				Add  []string `yaml:"add"`
				Drop []string `yaml:"drop"`
			} `yaml:"capabilities"`
			SeccompProfile *struct {
				Type string `yaml:"type"`
			} `yaml:"seccompProfile"`
		} `yaml:"securityContext"`
	} `yaml:"containers"`
}

// TestDeployDaemonSet checks the DaemonSet's pod: host PID namespace but
// not host network, no service account token, the RuntimeDefault seccomp
// profile, and a container that drops every capability but the agent's
// four, cannot gain privileges and cannot write its root file system.
func TestDeployDaemonSet(t *testing.T) {
	ds := daemonSetObjects(t)["DaemonSet"]
	var spec struct {
		Template struct {
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
	}
	if err := ds.Spec.Decode(&spec); err != nil {
		t.Fatal(err)
	}
	pod := spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	isFalse := func(b *bool) bool { return b != nil && !*b }
	isTrue := func(b *bool) bool { return b != nil && *b }
	val := func(b *bool) any {
		if b == nil {
			return "unset"
		}
		return *b
	}
	seccomp := pod.SecurityContext.SeccompProfile.Type
	if c.SecurityContext.SeccompProfile != nil {
		seccomp = c.SecurityContext.SeccompProfile.Type
	}
	for _, tc := range []struct {
		name string
		ok   bool
		got  any
	}{
		{"hostPID: true", pod.HostPID, pod.HostPID},
		{"no hostNetwork", !pod.HostNetwork, pod.HostNetwork},
		{"automountServiceAccountToken: false", isFalse(pod.AutomountServiceAccountToken), val(pod.AutomountServiceAccountToken)},
		{"seccompProfile RuntimeDefault", seccomp == "RuntimeDefault", seccomp},
		{"privileged not true", !isTrue(sc.Privileged), val(sc.Privileged)},
		{"allowPrivilegeEscalation: false", isFalse(sc.AllowPrivilegeEscalation), val(sc.AllowPrivilegeEscalation)},
		{"readOnlyRootFilesystem: true", isTrue(sc.ReadOnlyRootFilesystem), val(sc.ReadOnlyRootFilesystem)},
		{"capabilities drop [ALL]", slices.Equal(sc.Capabilities.Drop, []string{"ALL"}), sc.Capabilities.Drop},
		{"capabilities add BPF PERFMON SYS_PTRACE DAC_READ_SEARCH", slices.Equal(slices.Sorted(slices.Values(sc.Capabilities.Add)),
			[]string{"BPF", "DAC_READ_SEARCH", "PERFMON", "SYS_PTRACE"}), sc.Capabilities.Add},
		{"no --listen flag (the config sets it)", !slices.ContainsFunc(c.Args, func(a string) bool { return strings.HasPrefix(a, "--listen") }), c.Args},
		{"no hostPort", !slices.ContainsFunc(c.Ports, func(p struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
			HostPort      int    `yaml:"hostPort"`
		}) bool {
			return p.HostPort != 0
		}), c.Ports},
	} {
		if !tc.ok {
			t.Errorf("%s: want %s, got %v", daemonSetFile, tc.name, tc.got)
		}
	}
}

// TestDeployConfig checks the config the DaemonSet's ConfigMap gives the
// agent: valid, the UI on loopback (or behind a token), and /metrics on a
// listener of its own that the NetworkPolicy admits.
func TestDeployConfig(t *testing.T) {
	objs := daemonSetObjects(t)
	data, ok := objs["ConfigMap"].Data["goroscope.yaml"]
	if !ok {
		t.Fatalf("%s: ConfigMap has no goroscope.yaml", daemonSetFile)
	}
	path := filepath.Join(t.TempDir(), "goroscope.yaml")
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(path, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	host, _, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		t.Fatal(err)
	}
	if ip := net.ParseIP(host); (ip == nil || !ip.IsLoopback()) && cfg.HTTP.BearerTokenFile == "" {
		t.Errorf("listen %s: want the UI on loopback or http.bearer_token_file set", cfg.Listen)
	}
	if cfg.HTTP.AllowUnauthenticated {
		t.Error("http.allow_unauthenticated is set")
	}
	_, metricsPort, err := net.SplitHostPort(cfg.HTTP.MetricsListen)
	if err != nil {
		t.Fatalf("http.metrics_listen %q: %v", cfg.HTTP.MetricsListen, err)
	}
	_, uiPort, _ := net.SplitHostPort(cfg.Listen)
	ingress := networkPolicy(t, objs["NetworkPolicy"])
	if !ingress[metricsPort] {
		t.Errorf("NetworkPolicy admits ports %v, not the metrics port %s", ingress, metricsPort)
	}
	if ingress[uiPort] {
		t.Errorf("NetworkPolicy admits the UI port %s", uiPort)
	}
}

// networkPolicy checks that np restricts both directions of the agent's
// pods, every ingress and egress rule names its ports and sources or
// destinations, and returns the ingress ports.
func networkPolicy(t *testing.T, np k8sObject) map[string]bool {
	t.Helper()
	type peer = map[string]any
	type rule struct {
		From  []peer `yaml:"from"`
		To    []peer `yaml:"to"`
		Ports []struct {
			Protocol string    `yaml:"protocol"`
			Port     yaml.Node `yaml:"port"`
		} `yaml:"ports"`
	}
	var spec struct {
		PodSelector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"podSelector"`
		PolicyTypes []string `yaml:"policyTypes"`
		Ingress     []rule   `yaml:"ingress"`
		Egress      []rule   `yaml:"egress"`
	}
	if err := np.Spec.Decode(&spec); err != nil {
		t.Fatal(err)
	}
	if spec.PodSelector.MatchLabels["app.kubernetes.io/name"] != "goroscope" {
		t.Errorf("NetworkPolicy selects %v, not the goroscope pods", spec.PodSelector.MatchLabels)
	}
	if !slices.Contains(spec.PolicyTypes, "Ingress") || !slices.Contains(spec.PolicyTypes, "Egress") {
		t.Errorf("NetworkPolicy policyTypes %v, want Ingress and Egress", spec.PolicyTypes)
	}
	ports := map[string]bool{}
	for i, r := range spec.Ingress {
		if len(r.From) == 0 || len(r.Ports) == 0 {
			t.Errorf("NetworkPolicy ingress rule %d admits any source or port", i)
		}
		for _, p := range r.Ports {
			ports[p.Port.Value] = true
		}
	}
	if len(spec.Egress) == 0 {
		t.Error("NetworkPolicy has no egress rule (DNS, push endpoints)")
	}
	for i, r := range spec.Egress {
		if len(r.To) == 0 || len(r.Ports) == 0 {
			t.Errorf("NetworkPolicy egress rule %d allows any destination or port", i)
		}
	}
	return ports
}

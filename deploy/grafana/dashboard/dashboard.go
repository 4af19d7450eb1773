package main

// The SDK deprecates its dashboard package for dashboardv2, Grafana 12's
// v2 resource, which no earlier Grafana imports; the classic JSON every
// version imports is this package's.
//
//lint:file-ignore SA1019 the classic dashboard JSON is the one all Grafana versions import

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/grafanapyroscope"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// The dashboard's identity: links, provisioning and imports find it by
// UID, so neither changes.
const (
	UID   = "goroscope-goroutines"
	Title = "goroscope: goroutines"
)

// The data sources, chosen with the dashboard's datasource variables.
var (
	promDS = ds("prometheus", "${datasource}")
	pyroDS = ds("grafana-pyroscope-datasource", "${profiles}")
)

func ds(typ, uid string) common.DataSourceRef {
	return common.DataSourceRef{Type: &typ, Uid: &uid}
}

// The selectors of the panels: per-process series by the service and pid
// variables, the agent's own by its instance.
const (
	proc  = `service_name=~"$service_name", pid=~"$pid"`
	agent = `instance=~"$instance"`
)

// Descriptions of the series the findings panels read (docs/findings-json.md).
const (
	siteDoc = `site is where the goroutines are in the program: the first frame outside the runtime and sync, where they block, ` +
		`then ← and the go statement that created them, as function:line (e.g. main.handle:40 ← main.serve:31).`
	groupsDoc = `From goroscope_goroutine_group_goroutines{service_name, pid, site, state, wait_reason}: the goroutines of each group, ` +
		`a group being the goroutines of one process at one site in one state and wait reason. ` + siteDoc +
		` Each process has a series for each of its findings.top_groups (20 by default) largest groups; ` +
		`the rest are summed per state and wait reason with site="other".`
	findingsDoc = `From goroscope_findings{service_name, pid, kind, site}: one series per finding holding now, ` +
		`valued by the goroutines involved, absent otherwise. kind is leak (a parked group that keeps growing while its goroutines stay), ` +
		`stuck (many goroutines waiting on one object, a channel or a semaphore, for long; site is the largest group of them) or ` +
		`all-asleep (every goroutine of the program parked where only another goroutine can wake it: a deadlock the runtime does not report), ` +
		`or one of the runtime findings, judged from the process's runtime settings against its cgroup's limits, which have no site and count 1 ` +
		`(runqueue-backlog: the goroutines waiting to run): gomaxprocs-over-quota, no-memory-limit, gc-off-unbounded, runqueue-backlog, godebug-left-on. ` +
		siteDoc + ` The alerts GoroutineLeak, GoroutinesStuck, GoroutinesAllAsleep and the Go* runtime ones fire on these series; ` +
		`goroscope's UI and goroscope diagnose --pid PID show each finding's evidence (stacks, objects waited on, labels; for the runtime findings, what to change).`
	runtimeDoc = `From the series of the runtime health the agent reads of each Go process (goroscope_go_*: its runtime's own settings and figures, ` +
		`read from its memory) and of its cgroup (goroscope_cgroup_*: the limits in force, the tightest of the cgroup's ancestors', and the kernel's counters), ` +
		`labelled service_name and pid. A process is read at a snapshot when the reads so far took under runtime_health.max_cost_percent (5%) of its walks: ` +
		`a small process is read every few snapshots.`
)

// promQuery is a Prometheus query of the panel's data source.
func promQuery(ref, expr, legend string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().
		RefId(ref).
		Datasource(promDS).
		Expr(expr).
		LegendFormat(legend)
}

// tableQuery is an instant Prometheus query whose result is a table, one
// row per series.
func tableQuery(expr string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().
		RefId("A").
		Datasource(promDS).
		Expr(expr).
		Instant().
		Format(prometheus.PromQueryFormatTable)
}

// graph is a time series panel with the dashboard's legend and tooltip,
// its lines neither stacked nor filled.
func graph(id uint32, title, unit, description string, w uint32, queries ...*prometheus.DataqueryBuilder) *timeseries.PanelBuilder {
	p := timeseries.NewPanelBuilder().
		Id(id).
		Title(title).
		Description(description).
		Datasource(promDS).
		Span(w).
		Height(8).
		Unit(unit).
		Stacking(common.NewStackingConfigBuilder().Mode(common.StackingModeNone).Group("A")).
		FillOpacity(0).
		Legend(common.NewVizLegendOptionsBuilder().
			ShowLegend(true).
			DisplayMode(common.LegendDisplayModeTable).
			Placement(common.LegendPlacementRight).
			Calcs([]string{"lastNotNull", "max"})).
		Tooltip(common.NewVizTooltipOptionsBuilder().
			Mode(common.TooltipDisplayModeMulti).
			Sort(common.SortOrderDescending))
	for _, q := range queries {
		p.WithTarget(q)
	}
	return p
}

// stacked is graph with its series stacked and filled.
func stacked(p *timeseries.PanelBuilder) *timeseries.PanelBuilder {
	return p.Stacking(common.NewStackingConfigBuilder().Mode(common.StackingModeNormal).Group("A")).
		FillOpacity(20)
}

// organize is the table transformation that drops the Time column, orders
// the columns and renames them.
func organize(columns []string, rename map[string]string) dashboard.DataTransformerConfig {
	index := map[string]int{}
	for i, c := range columns {
		index[c] = i
	}
	return dashboard.DataTransformerConfig{
		Id: "organize",
		Options: map[string]any{
			"excludeByName": map[string]bool{"Time": true},
			"indexByName":   index,
			"renameByName":  rename,
		},
	}
}

// sortBy sorts a table by a column, largest first.
func sortBy(column string) []cog.Builder[common.TableSortByFieldState] {
	return []cog.Builder[common.TableSortByFieldState]{
		common.NewTableSortByFieldStateBuilder().DisplayName(column).Desc(true),
	}
}

// noFooter is a table without footer, as Grafana's default.
func noFooter() *common.TableFooterOptionsBuilder {
	return common.NewTableFooterOptionsBuilder().Show(false).Reducer([]string{"sum"}).CountRows(false)
}

// kindColors colors the kinds of finding by severity.
func kindColors() []dashboard.DynamicConfigValue {
	color := func(text, c string, index int32) dashboard.ValueMappingResult {
		return dashboard.ValueMappingResult{Text: &text, Color: &c, Index: &index}
	}
	return []dashboard.DynamicConfigValue{
		{Id: "mappings", Value: []dashboard.ValueMapping{{ValueMap: &dashboard.ValueMap{
			Type: dashboard.MappingTypeValueToText,
			Options: map[string]dashboard.ValueMappingResult{
				"all-asleep":            color("all-asleep", "red", 0),
				"leak":                  color("leak", "orange", 1),
				"gc-off-unbounded":      color("gc-off-unbounded", "orange", 2),
				"no-memory-limit":       color("no-memory-limit", "orange", 3),
				"stuck":                 color("stuck", "yellow", 4),
				"gomaxprocs-over-quota": color("gomaxprocs-over-quota", "yellow", 5),
				"runqueue-backlog":      color("runqueue-backlog", "yellow", 6),
				"godebug-left-on":       color("godebug-left-on", "blue", 7),
			},
		}}}},
		{Id: "custom.cellOptions", Value: map[string]any{"type": string(common.TableCellDisplayModeColorBackground)}},
	}
}

// findingsRow: what the agent concluded, and the groups it judged.
func findingsRow(d *dashboard.DashboardBuilder) {
	d.WithRow(dashboard.NewRowBuilder("Findings").Id(21))

	d.WithPanel(stat.NewPanelBuilder().
		Id(22).
		Title("Findings by kind").
		Description("Active findings of the selected processes, counted by kind. " + findingsDoc).
		Datasource(promDS).
		Span(6).
		Height(8).
		Unit("short").
		NoValue("0").
		Thresholds(dashboard.NewThresholdsConfigBuilder().
			Mode(dashboard.ThresholdsModeAbsolute).
			Steps([]dashboard.Threshold{{Color: "green"}, {Value: cog.ToPtr(1.0), Color: "red"}})).
		Orientation(common.VizOrientationAuto).
		GraphMode(common.BigValueGraphModeArea).
		ColorMode(common.BigValueColorModeValue).
		TextMode(common.BigValueTextModeValueAndName).
		ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}).Values(false)).
		WithTarget(promQuery("A", `count by (kind) (goroscope_findings{`+proc+`})`, "{{kind}}")))

	d.WithPanel(table.NewPanelBuilder().
		Id(23).
		Title("Findings").
		Description("Every active finding of the selected processes, the most goroutines first. "+findingsDoc).
		Datasource(promDS).
		Span(18).
		Height(8).
		Unit("short").
		NoValue("no findings").
		WithTransformation(organize(
			[]string{"kind", "service_name", "pid", "site", "Value"},
			map[string]string{"service_name": "service", "Value": "goroutines"})).
		SortBy(sortBy("goroutines")).
		Footer(noFooter()).
		OverrideByName("kind", kindColors()).
		WithTarget(tableQuery(`sum by (kind, service_name, pid, site) (goroscope_findings{` + proc + `})`)))

	d.WithPanel(graph(24, "Largest goroutine groups by site", "short",
		"For each service, the 10 sites with the most goroutines at each moment, its processes summed; site=\"other\" (the groups beyond each process's largest) left out. "+
			"A line that only climbs is a group that grows: a leak finding when its goroutines also stay. "+groupsDoc, 12,
		promQuery("A", `topk by (service_name) (10, sum by (service_name, site) (goroscope_goroutine_group_goroutines{`+proc+`, site!="other"}))`,
			"{{service_name}}: {{site}}")).
		Height(10))

	d.WithPanel(table.NewPanelBuilder().
		Id(25).
		Title("Largest goroutine groups now").
		Description("The 20 largest groups of the selected processes at the end of the range, with their state and wait reason; " +
			"site=\"other\" rows are the rest of a process's goroutines. " + groupsDoc).
		Datasource(promDS).
		Span(12).
		Height(10).
		Unit("short").
		WithTransformation(organize(
			[]string{"service_name", "pid", "site", "state", "wait_reason", "Value"},
			map[string]string{"service_name": "service", "wait_reason": "wait reason", "Value": "goroutines"})).
		SortBy(sortBy("goroutines")).
		Footer(noFooter()).
		WithTarget(tableQuery(`topk(20, sum by (service_name, pid, site, state, wait_reason) (goroscope_goroutine_group_goroutines{` + proc + `}))`)))
}

// goroutinesRow: the goroutine populations by state, wait reason and time
// blocked.
func goroutinesRow(d *dashboard.DashboardBuilder) {
	d.WithRow(dashboard.NewRowBuilder("Goroutines").Id(2))
	d.WithPanel(stacked(graph(3, "Goroutines by state", "short",
		"Every goroutine of the selected processes, by scheduling state, as goroscope's snapshots saw them.", 12,
		promQuery("A", `sum by (state) (goroscope_goroutines{`+proc+`})`, "{{state}}"))))
	d.WithPanel(stacked(graph(4, "Waiting goroutines by wait reason", "short",
		"What waiting goroutines wait on (the runtime's wait reason).", 12,
		promQuery("A", `sum by (wait_reason) (goroscope_goroutines{`+proc+`, state="waiting"})`, "{{wait_reason}}"))))
	d.WithPanel(graph(5, "Goroutines blocked over 10 minutes (leak suspects)", "short",
		"Goroutines that have waited more than 10 minutes at the same place, by process and wait reason: the usual shape of a goroutine leak. "+
			"The Findings row says which of them goroscope judged a leak or stuck.", 12,
		promQuery("A", `sum by (service_name, pid, wait_reason) (goroscope_goroutine_blocked_seconds_count{`+proc+`})`+
			` - sum by (service_name, pid, wait_reason) (goroscope_goroutine_blocked_seconds_bucket{`+proc+`, le="600"})`,
			"{{service_name}} {{pid}} {{wait_reason}}")))
	d.WithPanel(graph(6, "Goroutine growth per minute", "short",
		"Change of each process's goroutine count per minute over 15 minutes; a line that stays above zero is a population that only grows.", 12,
		promQuery("A", `deriv(sum by (service_name, pid) (goroscope_goroutines{`+proc+`})[15m:1m]) * 60`, "{{service_name}} {{pid}}")))
	d.WithPanel(graph(7, "Time blocked, 99th percentile by wait reason", "s",
		"From the blocked-time distribution of the latest snapshot (bucket bounds 1s, 10s, 1m, 10m, 1h).", 12,
		promQuery("A", `histogram_quantile(0.99, sum by (wait_reason, le) (goroscope_goroutine_blocked_seconds_bucket{`+proc+`}))`, "{{wait_reason}}")))
	d.WithPanel(graph(8, "Goroutines per process", "short",
		"Total goroutines of each watched process.", 12,
		promQuery("A", `sum by (service_name, pid) (goroscope_goroutines{`+proc+`})`, "{{service_name}} {{pid}}")))
}

// runtimeRow: the runtime's settings and health against the cgroup's
// limits, per process.
func runtimeRow(d *dashboard.DashboardBuilder) {
	d.WithRow(dashboard.NewRowBuilder("Runtime and cgroup limits").Id(26))
	d.WithPanel(graph(27, "GOMAXPROCS and the CPU quota", "short",
		"GOMAXPROCS of each process (goroscope_go_gomaxprocs) and the CPU quota of its cgroup in cores (goroscope_cgroup_cpu_quota_cores). "+
			"GOMAXPROCS above the quota rounded up makes the kernel throttle the process: the gomaxprocs-over-quota finding. "+runtimeDoc, 12,
		promQuery("A", `goroscope_go_gomaxprocs{`+proc+`}`, "GOMAXPROCS {{service_name}} {{pid}}"),
		promQuery("B", `goroscope_cgroup_cpu_quota_cores{`+proc+`}`, "quota {{service_name}} {{pid}}")))
	d.WithPanel(graph(28, "CPU throttling", "percentunit",
		"The part of its cgroup's CPU periods in which the kernel throttled each process (goroscope_cgroup_cpu_throttled_periods_total over goroscope_cgroup_cpu_periods_total), "+
			"and the time its threads were held back per second (goroscope_cgroup_cpu_throttled_seconds_total). "+runtimeDoc, 12,
		promQuery("A", `rate(goroscope_cgroup_cpu_throttled_periods_total{`+proc+`}[5m]) / rate(goroscope_cgroup_cpu_periods_total{`+proc+`}[5m])`,
			"periods throttled {{service_name}} {{pid}}"),
		promQuery("B", `rate(goroscope_cgroup_cpu_throttled_seconds_total{`+proc+`}[5m])`, "held back s/s {{service_name}} {{pid}}")))
	d.WithPanel(graph(29, "Heap and memory limits", "bytes",
		"The heap marked live by the last GC (goroscope_go_heap_live_bytes) and the current cycle's goal (goroscope_go_heap_goal_bytes) against "+
			"GOMEMLIMIT (goroscope_go_memory_limit_bytes, when one is set) and the cgroup's memory limit and usage (goroscope_cgroup_memory_*). "+
			"A goal above the cgroup's limit ends in an OOM kill: the no-memory-limit finding. "+runtimeDoc, 12,
		promQuery("A", `goroscope_go_heap_live_bytes{`+proc+`}`, "heap live {{service_name}} {{pid}}"),
		promQuery("B", `goroscope_go_heap_goal_bytes{`+proc+`} < 9e18`, "heap goal {{service_name}} {{pid}}"),
		promQuery("C", `goroscope_go_memory_limit_bytes{`+proc+`} < 9e18`, "GOMEMLIMIT {{service_name}} {{pid}}"),
		promQuery("D", `goroscope_cgroup_memory_limit_bytes{`+proc+`}`, "cgroup limit {{service_name}} {{pid}}"),
		promQuery("E", `goroscope_cgroup_memory_usage_bytes{`+proc+`}`, "cgroup usage {{service_name}} {{pid}}")))
	d.WithPanel(graph(30, "GC cycles per minute and GOGC", "short",
		"GC cycles each process completes per minute (goroscope_go_gc_cycles_total) and its GOGC (goroscope_go_gogc_percent; -1 when the GC is off). "+runtimeDoc, 12,
		promQuery("A", `rate(goroscope_go_gc_cycles_total{`+proc+`}[5m]) * 60`, "cycles/min {{service_name}} {{pid}}"),
		promQuery("B", `goroscope_go_gogc_percent{`+proc+`}`, "GOGC {{service_name}} {{pid}}")))
	d.WithPanel(graph(31, "Run queue per P", "short",
		"Goroutines ready to run and waiting for a P, per P (goroscope_go_runqueue_goroutines over goroscope_go_gomaxprocs): "+
			"a lasting backlog is the runqueue-backlog finding. "+runtimeDoc, 12,
		promQuery("A", `goroscope_go_runqueue_goroutines{`+proc+`} / goroscope_go_gomaxprocs{`+proc+`}`, "{{service_name}} {{pid}}")))
	d.WithPanel(graph(32, "OOM kills and threads", "short",
		"Processes of each process's cgroup the OOM killer killed over the last hour (goroscope_cgroup_oom_kills_total), and each process's threads (goroscope_go_threads). "+runtimeDoc, 12,
		promQuery("A", `increase(goroscope_cgroup_oom_kills_total{`+proc+`}[1h])`, "OOM kills {{service_name}} {{pid}}"),
		promQuery("B", `goroscope_go_threads{`+proc+`}`, "threads {{service_name}} {{pid}}")))
}

// flame is a flame graph of one profile type from the Pyroscope data source.
func flame(id uint32, title, profileType, description string) *dashboard.PanelBuilder {
	return dashboard.NewPanelBuilder().
		Type("flamegraph").
		Id(id).
		Title(title).
		Description(description).
		Datasource(pyroDS).
		Span(12).
		Height(12).
		WithTarget(grafanapyroscope.NewDataqueryBuilder().
			RefId("A").
			Datasource(pyroDS).
			QueryType("profile").
			ProfileTypeId(profileType).
			LabelSelector(`{service_name=~"$service_name"}`).
			GroupBy([]string{}))
}

// flameRow: the profiles goroscope pushes to Pyroscope.
func flameRow(d *dashboard.DashboardBuilder) {
	d.WithRow(dashboard.NewRowBuilder("Flame graphs (Pyroscope)").Id(9))
	d.WithPanel(flame(11, "Where goroutine time goes (goroutine_wall)", "goroutine_wall:wall:nanoseconds:wall:nanoseconds",
		"Each goroutine counts for the time it was observed in its state and stack, so over the dashboard's range the graph sums to goroutine-seconds: "+
			"on-CPU and off-CPU time together. This is the flame graph for time ranges; add {state=\"waiting\"} or a wait_reason to the query to see where goroutines wait. "+
			"Running goroutines show their sampled CPU stacks (eBPF sampler) or the frame (running: stack is live)."))
	d.WithPanel(flame(10, "Goroutines per stack, summed over snapshots (goroutine)", "goroutine:goroutine:count:goroutine:count",
		"One sample per goroutine per snapshot: stacks by state, wait reason, wait duration and pprof labels. "+
			"Over a time range Pyroscope adds up every snapshot in it, as for any scraped goroutine profile (200 goroutines over 10 snapshots show as 2,000): "+
			"read it over a range of one snapshot interval, or use the goroutine_wall graph (goroutine-seconds) or the goroscope_goroutines series for time ranges."))
}

// agentRow: the agent's own health and cost.
func agentRow(d *dashboard.DashboardBuilder) {
	d.WithRow(dashboard.NewRowBuilder("Agent").Id(12))
	d.WithPanel(graph(13, "Snapshot duration, 99th percentile", "s",
		"Time to walk and decode one process's goroutines, by walker.", 8,
		promQuery("A", `histogram_quantile(0.99, sum by (walker, le) (rate(goroscope_snapshot_duration_seconds_bucket{`+agent+`}[5m])))`, "{{walker}}")))
	d.WithPanel(graph(14, "Snapshot errors and skips", "ops",
		"Failed snapshots by reason, and snapshots skipped because a cycle's time budget ran out.", 8,
		promQuery("A", `sum by (reason) (rate(goroscope_errors_total{`+agent+`}[5m]))`, "error {{reason}}"),
		promQuery("B", `sum by (reason) (rate(goroscope_snapshot_skipped_total{`+agent+`}[5m]))`, "skipped {{reason}}")))
	d.WithPanel(graph(15, "Processes watched", "short",
		"Go processes each agent watches.", 8,
		promQuery("A", `goroscope_processes_watched{`+agent+`}`, "{{instance}}")))
	d.WithPanel(graph(16, "Push: items sent and dropped", "ops",
		"Items delivered to each endpoint, and items given up on by reason.", 8,
		promQuery("A", `sum by (endpoint) (rate(goroscope_push_sent_items_total{`+agent+`}[5m]))`, "sent {{endpoint}}"),
		promQuery("B", `sum by (endpoint, reason) (rate(goroscope_push_dropped_items_total{`+agent+`}[5m]))`, "dropped {{endpoint}} {{reason}}")))
	d.WithPanel(graph(17, "Push: queue and spool", "short",
		"Items waiting for each endpoint and bytes spooled to disk while it fails.", 8,
		promQuery("A", `sum by (endpoint) (goroscope_push_queue_items{`+agent+`})`, "items {{endpoint}}"),
		promQuery("B", `sum by (endpoint) (goroscope_push_spool_bytes{`+agent+`})`, "spool bytes {{endpoint}}")))
	d.WithPanel(graph(18, "Push: seconds since last success", "s",
		"Per endpoint; grows while an endpoint is down.", 8,
		promQuery("A", `time() - (max by (endpoint) (goroscope_push_last_success_timestamp_seconds{`+agent+`}) > 0)`, "{{endpoint}}")))
	d.WithPanel(graph(19, "Local store", "short",
		"Bytes and entries in the agent's local store, and entries dropped by reason (age, size, disk_full, corrupt).", 12,
		promQuery("A", `goroscope_store_bytes{`+agent+`}`, "bytes {{instance}}"),
		promQuery("B", `sum by (reason) (rate(goroscope_store_dropped_total{`+agent+`}[5m]))`, "dropped {{reason}}")))
	d.WithPanel(graph(20, "Agent CPU and memory", "short",
		"The agent's own cost (process_* metrics of its Go client).", 12,
		promQuery("A", `rate(process_cpu_seconds_total{job=~"$job", `+agent+`}[5m])`, "CPU cores {{instance}}"),
		promQuery("B", `process_resident_memory_bytes{job=~"$job", `+agent+`} / 1e6`, "RSS MB {{instance}}")))
}

// all selects every value of a multi-value variable.
func all() dashboard.VariableOption {
	return dashboard.VariableOption{
		Selected: cog.ToPtr(true),
		Text:     dashboard.StringOrArrayOfString{ArrayOfString: []string{"All"}},
		Value:    dashboard.StringOrArrayOfString{ArrayOfString: []string{"$__all"}},
	}
}

// labelValues is a multi-value variable of the values of a label,
// refreshed with the time range, all selected at first.
func labelValues(name, label, query string) *dashboard.QueryVariableBuilder {
	return dashboard.NewQueryVariableBuilder(name).
		Label(label).
		Datasource(promDS).
		Query(dashboard.StringOrMap{Map: map[string]any{"query": query, "refId": "V"}}).
		Definition(query).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		IncludeAll(true).
		Multi(true).
		AllValue(".*").
		Current(all()).
		Sort(dashboard.VariableSortAlphabeticalAsc)
}

// builtinAnnotations is Grafana's own annotation query, which every
// dashboard it saves has: annotations and alert state changes.
func builtinAnnotations() *dashboard.AnnotationQueryBuilder {
	return dashboard.NewAnnotationQueryBuilder().
		Name("Annotations & Alerts").
		Datasource(ds("grafana", "-- Grafana --")).
		Enable(true).
		Hide(true).
		IconColor("rgba(0, 211, 255, 1)").
		Type("dashboard").
		BuiltIn(1)
}

// Build is the dashboard.
func Build() (dashboard.Dashboard, error) {
	d := dashboard.NewDashboardBuilder(Title).
		Uid(UID).
		Description("What every goroutine of every Go process is doing, from goroscope's series (Prometheus) and profiles (Pyroscope). "+
			"Generated by deploy/grafana/dashboard: edit its Go code, not this JSON.").
		Tags([]string{"go", "goroutines", "goroscope"}).
		Editable().
		Version(1).
		Time("now-1h", "now").
		Refresh("30s").
		Annotation(builtinAnnotations()).
		WithVariable(dashboard.NewDatasourceVariableBuilder("datasource").Label("Prometheus").Type("prometheus").Hide(dashboard.VariableHideDontHide)).
		WithVariable(dashboard.NewDatasourceVariableBuilder("profiles").Label("Pyroscope").Type("grafana-pyroscope-datasource").Hide(dashboard.VariableHideDontHide)).
		WithVariable(labelValues("job", "Agent job", `label_values(goroscope_processes_watched, job)`)).
		WithVariable(labelValues("instance", "Agent", `label_values(goroscope_processes_watched{job=~"$job"}, instance)`)).
		WithVariable(labelValues("service_name", "Service", `label_values(goroscope_process_info, service_name)`)).
		WithVariable(labelValues("pid", "PID", `label_values(goroscope_process_info{service_name=~"$service_name"}, pid)`))
	findingsRow(d)
	goroutinesRow(d)
	runtimeRow(d)
	flameRow(d)
	agentRow(d)
	return d.Build()
}

// Render is the dashboard as the JSON Grafana imports: indented, and with
// PromQL's <, > and & as they are rather than \u003c, \u003e and \u0026.
func Render() ([]byte, error) {
	d, err := Build()
	if err != nil {
		return nil, err
	}
	raw, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, err
	}
	out := strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace(string(raw)) + "\n"
	// The escapes only ever stand for those characters inside strings, but
	// check it: the two must decode to the same dashboard.
	var a, b any
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(out), &b); err != nil || !reflect.DeepEqual(a, b) {
		return nil, fmt.Errorf("unescaping <, > and & changed the dashboard (%v)", err)
	}
	return []byte(out), nil
}

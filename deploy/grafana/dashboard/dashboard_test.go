package main

// The SDK deprecates its dashboard package: see dashboard.go.
//
//lint:file-ignore SA1019 the classic dashboard JSON is the one all Grafana versions import

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// dashboardFile is the generated dashboard, as committed.
const dashboardFile = "../goroscope-dashboard.json"

// regenerate is the command that rewrites dashboardFile.
const regenerate = "go generate ./deploy/grafana/dashboard (or: go run ./deploy/grafana/dashboard -o deploy/grafana/goroscope-dashboard.json)"

// TestGenerated fails when the committed JSON is not what the Go code
// generates: someone edited the JSON by hand, or the code without
// regenerating.
func TestGenerated(t *testing.T) {
	want, err := Render()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatalf("%v; run %s", err, regenerate)
	}
	if bytes.Equal(got, want) {
		return
	}
	gotLines, wantLines := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	line := 0
	for line < len(gotLines) && line < len(wantLines) && gotLines[line] == wantLines[line] {
		line++
	}
	at := func(lines []string) string {
		if line < len(lines) {
			return lines[line]
		}
		return "(end of file)"
	}
	t.Errorf("deploy/grafana/goroscope-dashboard.json is not what deploy/grafana/dashboard generates; edit the Go code, not the JSON, and run\n\t%s\n"+
		"first difference, line %d:\n\tfile:      %s\n\tgenerated: %s",
		regenerate, line+1, strings.TrimSpace(at(gotLines)), strings.TrimSpace(at(wantLines)))
}

// imported is the part of the dashboard JSON Grafana needs to show it.
type imported struct {
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Panels     []importedPanel
	Templating struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type importedPanel struct {
	Type       string `json:"type"`
	ID         *int   `json:"id"`
	Title      string `json:"title"`
	GridPos    *struct{ X, Y, W, H int }
	Datasource *datasource `json:"datasource"`
	Panels     []importedPanel
	Targets    []struct {
		RefID         string      `json:"refId"`
		Datasource    *datasource `json:"datasource"`
		Expr          string      `json:"expr"`
		ProfileTypeID string      `json:"profileTypeId"`
		LabelSelector string      `json:"labelSelector"`
	} `json:"targets"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// variables matches the uses of dashboard variables: $name or ${name}.
var variables = regexp.MustCompile(`\$\{?(\w+)\}?`)

// TestImportable checks what Grafana needs to import the dashboard and run
// its queries: valid JSON that the SDK's strict decoder reads back, the
// stable uid and title, panels with unique ids on the grid, and every
// panel with a data source the dashboard's variables name and queries
// that use only the variables it defines.
func TestImportable(t *testing.T) {
	raw, err := Render()
	if err != nil {
		t.Fatal(err)
	}
	var d imported
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	plugins.RegisterDefaultPlugins()
	var strict dashboard.Dashboard
	// It returns its errors as cog.BuildErrors, nil or not.
	if err := strict.UnmarshalJSONStrict(raw); err != nil {
		if errs, ok := err.(cog.BuildErrors); !ok || len(errs) > 0 {
			t.Errorf("the SDK's strict decoder refuses the dashboard: %v", err)
		}
	}

	// Links, provisioning and alert annotations find the dashboard by uid.
	if d.UID != "goroscope-goroutines" || d.Title != "goroscope: goroutines" {
		t.Errorf("uid %q, title %q: want goroscope-goroutines, goroscope: goroutines", d.UID, d.Title)
	}

	// The datasource variables by name, with their plugin type.
	vars := map[string]string{"__all": ""}
	for _, v := range d.Templating.List {
		if _, dup := vars[v.Name]; dup {
			t.Errorf("variable %s defined twice", v.Name)
		}
		vars[v.Name] = ""
		if v.Type == "datasource" {
			if err := json.Unmarshal(v.Query, new(string)); err != nil {
				t.Errorf("datasource variable %s: query %s is not a plugin type", v.Name, v.Query)
			}
			vars[v.Name] = strings.Trim(string(v.Query), `"`)
		}
	}
	for _, name := range []string{"datasource", "profiles", "job", "instance", "service_name", "pid"} {
		if _, ok := vars[name]; !ok {
			t.Errorf("no variable %s", name)
		}
	}
	checkVars := func(where, s string) {
		t.Helper()
		for _, m := range variables.FindAllStringSubmatch(s, -1) {
			if _, ok := vars[m[1]]; !ok {
				t.Errorf("%s uses $%s, which the dashboard does not define", where, m[1])
			}
		}
	}
	for _, v := range d.Templating.List {
		checkVars("variable "+v.Name, string(v.Query))
	}
	// The data source a panel or query names: a variable of the right type.
	checkDS := func(where string, ds *datasource) {
		t.Helper()
		if ds == nil || ds.Type == "" || ds.UID == "" {
			t.Errorf("%s: no datasource", where)
			return
		}
		m := variables.FindStringSubmatch(ds.UID)
		if m == nil || m[0] != ds.UID {
			t.Errorf("%s: datasource uid %q is not a variable: the dashboard would only work in one Grafana", where, ds.UID)
		} else if vars[m[1]] != ds.Type {
			t.Errorf("%s: datasource %s is a %q variable, not %q", where, ds.UID, vars[m[1]], ds.Type)
		}
	}

	ids := map[int]string{}
	var grid [][24]string // the grid cells, which panel fills each
	var promQueries []string
	panels := 0
	var check func(p importedPanel)
	check = func(p importedPanel) {
		where := fmt.Sprintf("%s panel %q", p.Type, p.Title)
		if p.Title == "" {
			t.Errorf("%s: no title", where)
		}
		if p.ID == nil || *p.ID == 0 {
			t.Errorf("%s: no id", where)
		} else if other, dup := ids[*p.ID]; dup {
			t.Errorf("%s: id %d is %s's too", where, *p.ID, other)
		} else {
			ids[*p.ID] = where
		}
		if g := p.GridPos; g == nil || g.W < 1 || g.H < 1 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
			t.Errorf("%s: gridPos %+v off the 24-column grid", where, p.GridPos)
		} else {
			for y := g.Y; y < g.Y+g.H; y++ {
				for len(grid) <= y {
					grid = append(grid, [24]string{})
				}
				for x := g.X; x < g.X+g.W; x++ {
					if grid[y][x] != "" {
						t.Errorf("%s overlaps %s at x=%d y=%d", where, grid[y][x], x, y)
					}
					grid[y][x] = where
				}
			}
		}
		for _, c := range p.Panels {
			check(c)
		}
		if p.Type == "row" {
			return
		}
		panels++
		checkDS(where, p.Datasource)
		if len(p.Targets) == 0 {
			t.Errorf("%s: no targets", where)
		}
		refs := map[string]bool{}
		for i, tg := range p.Targets {
			where := fmt.Sprintf("%s target %d", where, i)
			if tg.RefID == "" || refs[tg.RefID] {
				t.Errorf("%s: refId %q missing or not unique", where, tg.RefID)
			}
			refs[tg.RefID] = true
			checkDS(where, tg.Datasource)
			if tg.Datasource != nil && p.Datasource != nil && *tg.Datasource != *p.Datasource {
				t.Errorf("%s: datasource %v, the panel's is %v", where, *tg.Datasource, *p.Datasource)
			}
			switch {
			case p.Datasource == nil:
			case p.Datasource.Type == "prometheus":
				if strings.TrimSpace(tg.Expr) == "" {
					t.Errorf("%s: no expr", where)
				}
				checkVars(where, tg.Expr)
				promQueries = append(promQueries, tg.Expr)
			case p.Datasource.Type == "grafana-pyroscope-datasource":
				if tg.ProfileTypeID == "" || tg.LabelSelector == "" {
					t.Errorf("%s: profileTypeId %q, labelSelector %q: want both", where, tg.ProfileTypeID, tg.LabelSelector)
				}
				checkVars(where, tg.LabelSelector)
			default:
				t.Errorf("%s: datasource type %q, want prometheus or grafana-pyroscope-datasource", where, p.Datasource.Type)
			}
		}
	}
	for _, p := range d.Panels {
		check(p)
	}
	if panels < 20 {
		t.Errorf("%d panels, want at least 20 (the 18 of the hand-kept dashboard and the findings')", panels)
	}
	checkPromQL(t, promQueries)
}

// TestFindingsPanels: the panels of the findings and groups series, and of
// the runtime health, are there.
func TestFindingsPanels(t *testing.T) {
	raw, err := Render()
	if err != nil {
		t.Fatal(err)
	}
	var d imported
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	exprs := map[string]string{}
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			exprs[p.Title] += tg.Expr + "\n"
		}
	}
	for title, want := range map[string]string{
		"Findings":                         "goroscope_findings{",
		"Findings by kind":                 "count by (kind) (goroscope_findings{",
		"Largest goroutine groups by site": "topk by (service_name) (10, sum by (service_name, site) (goroscope_goroutine_group_goroutines{",
		"Largest goroutine groups now":     "goroscope_goroutine_group_goroutines{",
		"GOMAXPROCS and the CPU quota":     "goroscope_cgroup_cpu_quota_cores{",
		"CPU throttling":                   "goroscope_cgroup_cpu_throttled_periods_total{",
		"Heap and memory limits":           "goroscope_go_heap_goal_bytes{",
		"Run queue per P":                  "goroscope_go_runqueue_goroutines{",
	} {
		if !strings.Contains(exprs[title], want) {
			t.Errorf("panel %q: queries %q, want one with %q", title, exprs[title], want)
		}
	}
}

// checkPromQL checks that the queries are valid PromQL once their variables
// are filled in, with promtool as agent/daemon's TestDashboard does.
func checkPromQL(t *testing.T, queries []string) {
	t.Helper()
	pt, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("promtool not found (apt-get install prometheus): %v", err)
		}
		t.Logf("promtool not found, PromQL not checked: %v", err)
		return
	}
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, q := range queries {
		fmt.Fprintf(&rules, "      - record: dashboard:query_%d\n        expr: %q\n", i, variables.ReplaceAllString(q, "x"))
	}
	path := filepath.Join(t.TempDir(), "queries.yaml")
	if err := os.WriteFile(path, []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(pt, "check", "rules", path).CombinedOutput(); err != nil {
		t.Errorf("queries are not valid PromQL: %v\n%s", err, out)
	}
}

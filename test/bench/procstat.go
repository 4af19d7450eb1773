package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of the CPU times in /proc/PID/stat (USER_HZ is 100 on
// every Linux architecture goroscope supports).
const userHZ = 100

// procCPU is a process's user+system CPU time so far, summed over its
// threads (/proc/PID/stat fields 14 and 15).
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read stat of pid %d: %w", pid, err)
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("stat of pid %d: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state), so field k is f[k-3].
	if len(f) < 13 {
		return 0, fmt.Errorf("stat of pid %d: %d fields", pid, len(f)+2)
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("stat of pid %d: bad utime %q or stime %q", pid, f[11], f[12])
	}
	return time.Duration(utime+stime) * time.Second / userHZ, nil
}

// procMem is a process's resident set now and at its peak, in bytes
// (/proc/PID/status VmRSS and VmHWM).
func procMem(pid int) (rss, hwm int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("read status of pid %d: %w", pid, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		fs := strings.Fields(v) // "12345 kB"
		if len(fs) != 2 || fs[1] != "kB" {
			return 0, 0, fmt.Errorf("status of pid %d: bad %s line %q", pid, k, v)
		}
		kb, err := strconv.ParseInt(fs[0], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("status of pid %d: bad %s %q", pid, k, fs[0])
		}
		if k == "VmRSS" {
			rss = kb << 10
		} else {
			hwm = kb << 10
		}
	}
	if rss == 0 || hwm == 0 {
		return 0, 0, fmt.Errorf("status of pid %d: no VmRSS or VmHWM", pid)
	}
	return rss, hwm, nil
}

// dirBytes is the total size of the regular files under dir.
func dirBytes(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			n += fi.Size()
		}
		return nil
	})
	return n
}

// metrics is one scrape of a Prometheus text endpoint: every sample's value
// summed by metric name (labels dropped), and by name and label set.
type metrics struct {
	byName   map[string]float64
	bySeries map[string]float64
}

// maxMetricsBytes bounds one scrape.
const maxMetricsBytes = 16 << 20

// scrape fetches and parses the Prometheus text format at url.
func scrape(ctx context.Context, url string) (metrics, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return metrics{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return metrics{}, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxMetricsBytes))
	if err != nil {
		return metrics{}, fmt.Errorf("scrape %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return metrics{}, fmt.Errorf("scrape %s: %s", url, resp.Status)
	}
	return parseMetrics(body), nil
}

// parseMetrics reads the Prometheus text format; lines it cannot read are
// skipped.
func parseMetrics(body []byte) metrics {
	m := metrics{byName: map[string]float64{}, bySeries: map[string]float64{}}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		series, val := line[:i], line[i+1:]
		// A timestamp may follow the value.
		if j := strings.LastIndexByte(series, ' '); j >= 0 && !strings.Contains(series[j:], "}") {
			series, val = series[:j], series[j+1:]
		}
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			continue
		}
		name := series
		if j := strings.IndexByte(series, '{'); j >= 0 {
			name = series[:j]
		}
		m.byName[name] += v
		m.bySeries[series] += v
	}
	return m
}

// labelValues returns the values of label in the series of name, sorted
// and joined by "+" (e.g. the walkers of goroscope_snapshots_total).
func (m metrics) labelValues(name, label string) string {
	var vs []string
	for s := range m.bySeries {
		if !strings.HasPrefix(s, name+"{") {
			continue
		}
		if _, rest, ok := strings.Cut(s, label+`="`); ok {
			if v, _, ok := strings.Cut(rest, `"`); ok && !slices.Contains(vs, v) {
				vs = append(vs, v)
			}
		}
	}
	slices.Sort(vs)
	return strings.Join(vs, "+")
}

// values returns the value of every series of name, one per label set
// (e.g. goroscope_snapshot_interval_seconds of each watched process).
func (m metrics) values(name string) []float64 {
	var vs []float64
	for s, v := range m.bySeries {
		if s == name || strings.HasPrefix(s, name+"{") {
			vs = append(vs, v)
		}
	}
	return vs
}

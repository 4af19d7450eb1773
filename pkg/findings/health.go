package findings

import (
	"math"
	"time"
)

// RuntimeHealth is one read of a Go process's runtime settings and health, from its memory,
// and of the limits of its cgroup: what the runtime findings judge, and what the agent shows
// of a process. Runtime is nil when it could not be read (RuntimeError says why), Cgroup when
// the cgroup could not (CgroupError).
type RuntimeHealth struct {
	// Time is when it was read.
	Time time.Time `json:"time"`
	// GoVersion is the process's Go version (its build info).
	GoVersion    string     `json:"go_version"`
	Runtime      *GoRuntime `json:"runtime,omitempty"`
	RuntimeError string     `json:"runtime_error,omitempty"`
	Cgroup       *Cgroup    `json:"cgroup,omitempty"`
	CgroupError  string     `json:"cgroup_error,omitempty"`
	// Env are the GO* variables of the environment the process started with (GODEBUG,
	// GOGC, GOMEMLIMIT, GOMAXPROCS, ...), sorted by name, credentials redacted.
	Env      []EnvVar `json:"env,omitempty"`
	EnvError string   `json:"env_error,omitempty"`
}

// EnvVar is one variable of a process's environment.
type EnvVar struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	// Truncated says Value was cut (at 1 KiB).
	Truncated bool `json:"truncated,omitempty"`
}

// GoRuntime is what the runtime's own variables say.
type GoRuntime struct {
	// GOMAXPROCS, the GC percent (GOGC; -1 when the GC is off) and the soft memory limit
	// (GOMEMLIMIT; math.MaxInt64 when none), as the runtime has them now.
	GOMAXPROCS       int   `json:"gomaxprocs"`
	GOGCPercent      int   `json:"gogc_percent"`
	MemoryLimitBytes int64 `json:"memory_limit_bytes"`
	// The heap marked live by the last GC, the goal of the current cycle, and the bytes of
	// the spans in use; the GC cycles completed.
	HeapLiveBytes  uint64 `json:"heap_live_bytes"`
	HeapGoalBytes  uint64 `json:"heap_goal_bytes"`
	HeapInUseBytes uint64 `json:"heap_inuse_bytes"`
	GCCycles       uint32 `json:"gc_cycles"`
	// RunQueue is the goroutines ready to run and waiting for a P: the global run queue and
	// every P's local one.
	RunQueue       int `json:"runqueue_goroutines"`
	GlobalRunQueue int `json:"global_runqueue_goroutines"`
	// IdleProcs are the Ps without work, Threads the process's threads (-1: unknown).
	IdleProcs int `json:"idle_procs"`
	Threads   int `json:"threads"`
}

// Cgroup is what the process's cgroup says (collect/cgroup).
type Cgroup struct {
	// CPUVersion and MemoryVersion are the cgroup versions the controllers were read in;
	// 0 where the controller was not found (CPUError, MemoryError say why).
	CPUVersion    int `json:"cpu_version"`
	MemoryVersion int `json:"memory_version"`
	// CPUQuotaCores is the CPU bandwidth limit in force, in cores; 0 for none.
	CPUQuotaCores float64 `json:"cpu_quota_cores"`
	// The counters of the cgroup that sets the quota: enforcement periods, those it was
	// throttled in, and the time it was held back.
	CPUPeriods          uint64  `json:"cpu_periods"`
	CPUThrottledPeriods uint64  `json:"cpu_throttled_periods"`
	CPUThrottledSeconds float64 `json:"cpu_throttled_seconds"`
	// MemoryLimitBytes is the memory limit in force (0 for none), MemoryUsageBytes the
	// memory charged to the process's cgroup; OOMKills the processes of the cgroup the OOM
	// killer killed (when HaveOOMKills).
	MemoryLimitBytes int64  `json:"memory_limit_bytes"`
	MemoryUsageBytes int64  `json:"memory_usage_bytes"`
	OOMKills         uint64 `json:"oom_kills"`
	HaveOOMKills     bool   `json:"have_oom_kills"`
	CPUError         string `json:"cpu_error,omitempty"`
	MemoryError      string `json:"memory_error,omitempty"`
}

// NoMemoryLimit is GoRuntime.MemoryLimitBytes without a soft memory limit.
const NoMemoryLimit = math.MaxInt64

// EnvValue returns the value of variable name in the environment the process started with.
func (h *RuntimeHealth) EnvValue(name string) (string, bool) {
	for _, v := range h.Env {
		if v.Name == name {
			return v.Value, true
		}
	}
	return "", false
}

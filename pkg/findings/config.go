package findings

import (
	"fmt"
	"time"
)

// Config holds the thresholds of the rules. The zero value of a field
// takes its default (DefaultConfig), so an unconfigured agent judges well.
type Config struct {
	Leak      LeakRule   `yaml:"leak"`
	Stuck     StuckRule  `yaml:"stuck"`
	AllAsleep AsleepRule `yaml:"all_asleep"`
	// The runtime findings (RuntimeTracker).
	GomaxprocsOverQuota QuotaRule    `yaml:"gomaxprocs_over_quota"`
	NoMemoryLimit       MemoryRule   `yaml:"no_memory_limit"`
	RunqueueBacklog     RunqueueRule `yaml:"runqueue_backlog"`
}

// QuotaRule: GOMAXPROCS above the CPU quota rounded up (above what Go 1.25+
// sets from the quota, when it sets it), while the kernel's throttling of
// the process grew at some read in the last Window.
type QuotaRule struct {
	Window time.Duration `yaml:"window"`
}

// MemoryRule: a cgroup memory limit, no GOMEMLIMIT, and the live heap above
// MinHeapFraction of the limit.
type MemoryRule struct {
	MinHeapFraction float64 `yaml:"min_heap_fraction"`
}

// RunqueueRule: more than MinPerP goroutines per P waiting to run, in every
// read for at least For.
type RunqueueRule struct {
	MinPerP float64       `yaml:"min_per_p"`
	For     time.Duration `yaml:"for"`
}

// LeakRule: a parked group is a leak when, over Window (and after at least
// MinSpan of its history), it grew by at least MinGrowth goroutines, in
// each third of that time, to at least MinGoroutines, while at most
// MaxDeparted of its goroutines left it.
type LeakRule struct {
	MinGoroutines int           `yaml:"min_goroutines"`
	MinGrowth     int           `yaml:"min_growth"`
	Window        time.Duration `yaml:"window"`
	MinSpan       time.Duration `yaml:"min_span"`
	MaxDeparted   float64       `yaml:"max_departed"`
}

// StuckRule: at least MinGoroutines goroutines waiting on one object for
// at least MinWait.
type StuckRule struct {
	MinGoroutines int           `yaml:"min_goroutines"`
	MinWait       time.Duration `yaml:"min_wait"`
}

// AsleepRule: every goroutine parked where only another goroutine can wake
// it, for at least MinWait.
type AsleepRule struct {
	MinWait time.Duration `yaml:"min_wait"`
}

// DefaultConfig are the thresholds that hold unconfigured: a leak shows
// within two minutes when it grows by a goroutine a second, and within
// ten when it grows by one every 20 s.
func DefaultConfig() Config {
	return Config{
		Leak:      LeakRule{MinGoroutines: 20, MinGrowth: 15, Window: 10 * time.Minute, MinSpan: 90 * time.Second, MaxDeparted: 0.1},
		Stuck:     StuckRule{MinGoroutines: 10, MinWait: 5 * time.Minute},
		AllAsleep: AsleepRule{MinWait: 5 * time.Minute},

		GomaxprocsOverQuota: QuotaRule{Window: 5 * time.Minute},
		NoMemoryLimit:       MemoryRule{MinHeapFraction: 0.5},
		RunqueueBacklog:     RunqueueRule{MinPerP: 10, For: time.Minute},
	}
}

// withDefaults fills the zero fields of c from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	set := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	setD := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	set(&c.Leak.MinGoroutines, d.Leak.MinGoroutines)
	set(&c.Leak.MinGrowth, d.Leak.MinGrowth)
	setD(&c.Leak.Window, d.Leak.Window)
	setD(&c.Leak.MinSpan, d.Leak.MinSpan)
	if c.Leak.MaxDeparted == 0 {
		c.Leak.MaxDeparted = d.Leak.MaxDeparted
	}
	set(&c.Stuck.MinGoroutines, d.Stuck.MinGoroutines)
	setD(&c.Stuck.MinWait, d.Stuck.MinWait)
	setD(&c.AllAsleep.MinWait, d.AllAsleep.MinWait)
	setD(&c.GomaxprocsOverQuota.Window, d.GomaxprocsOverQuota.Window)
	setD(&c.RunqueueBacklog.For, d.RunqueueBacklog.For)
	if c.NoMemoryLimit.MinHeapFraction == 0 {
		c.NoMemoryLimit.MinHeapFraction = d.NoMemoryLimit.MinHeapFraction
	}
	if c.RunqueueBacklog.MinPerP == 0 {
		c.RunqueueBacklog.MinPerP = d.RunqueueBacklog.MinPerP
	}
	return c
}

// Validate names the thresholds that make no sense.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Leak.MinGoroutines < 1 || c.Leak.MinGrowth < 1 || c.Stuck.MinGoroutines < 1:
		return fmt.Errorf("leak.min_goroutines %d, leak.min_growth %d and stuck.min_goroutines %d: want at least 1 each",
			c.Leak.MinGoroutines, c.Leak.MinGrowth, c.Stuck.MinGoroutines)
	case c.Leak.MinSpan > c.Leak.Window:
		return fmt.Errorf("leak.min_span %s is longer than leak.window %s", c.Leak.MinSpan, c.Leak.Window)
	case c.Leak.MaxDeparted < 0 || c.Leak.MaxDeparted > 1:
		return fmt.Errorf("leak.max_departed %g: want a fraction from 0 to 1", c.Leak.MaxDeparted)
	case c.Leak.Window < 0 || c.Leak.MinSpan < 0 || c.Stuck.MinWait < 0 || c.AllAsleep.MinWait < 0 ||
		c.GomaxprocsOverQuota.Window < 0 || c.RunqueueBacklog.For < 0:
		return fmt.Errorf("negative durations in the findings thresholds")
	case c.NoMemoryLimit.MinHeapFraction < 0 || c.NoMemoryLimit.MinHeapFraction > 1:
		return fmt.Errorf("no_memory_limit.min_heap_fraction %g: want a fraction from 0 to 1", c.NoMemoryLimit.MinHeapFraction)
	case c.RunqueueBacklog.MinPerP < 0:
		return fmt.Errorf("runqueue_backlog.min_per_p %g: want a positive number of goroutines", c.RunqueueBacklog.MinPerP)
	}
	return nil
}

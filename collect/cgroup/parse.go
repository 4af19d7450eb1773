package cgroup

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// noLimit is where a v1 memory limit stops meaning one: the kernel shows none as the largest
// page-aligned int64 (9223372036854771712).
const noLimit = 1 << 62

// parseInt parses a file holding one decimal integer.
func parseInt(b []byte) (int64, error) {
	s := string(bytes.TrimSpace(b))
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not an integer", clip(s))
	}
	return n, nil
}

// parseCPUMax parses v2 cpu.max: "QUOTA PERIOD" in microseconds, or "max PERIOD".
func parseCPUMax(b []byte) (quota, period int64, ok bool, err error) {
	f := bytes.Fields(b)
	if len(f) != 2 {
		return 0, 0, false, fmt.Errorf("cpu.max %q: want QUOTA PERIOD", clip(string(b)))
	}
	if period, err = strconv.ParseInt(string(f[1]), 10, 64); err != nil || period <= 0 {
		return 0, 0, false, fmt.Errorf("cpu.max %q: bad period", clip(string(b)))
	}
	if string(f[0]) == "max" {
		return 0, period, false, nil
	}
	if quota, err = strconv.ParseInt(string(f[0]), 10, 64); err != nil || quota <= 0 {
		return 0, 0, false, fmt.Errorf("cpu.max %q: bad quota", clip(string(b)))
	}
	return quota, period, true, nil
}

// parseV1Quota parses v1 cpu.cfs_quota_us (-1: none) and cpu.cfs_period_us.
func parseV1Quota(qb, pb []byte) (quota, period int64, ok bool, err error) {
	if quota, err = parseInt(qb); err != nil {
		return 0, 0, false, fmt.Errorf("cpu.cfs_quota_us: %w", err)
	}
	if period, err = parseInt(pb); err != nil || period <= 0 {
		return 0, 0, false, fmt.Errorf("cpu.cfs_period_us %q: want a positive integer", clip(string(pb)))
	}
	switch {
	case quota == -1:
		return 0, period, false, nil
	case quota <= 0:
		return 0, 0, false, fmt.Errorf("cpu.cfs_quota_us is %d: want -1 or a positive integer", quota)
	}
	return quota, period, true, nil
}

// parseMemoryMax parses v2 memory.max: bytes, or "max" (0: none).
func parseMemoryMax(b []byte) (int64, error) {
	if string(bytes.TrimSpace(b)) == "max" {
		return 0, nil
	}
	n, err := parseInt(b)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q: want bytes or max", clip(string(bytes.TrimSpace(b))))
	}
	return n, nil
}

// parseV1Limit finds the limit in force in a v1 memory.stat: hierarchical_memory_limit, 0
// when it is the kernel's "none".
func parseV1Limit(b []byte) (int64, error) {
	v, ok, err := findKey(b, "hierarchical_memory_limit")
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, errors.New("no hierarchical_memory_limit")
	}
	if v >= noLimit {
		return 0, nil
	}
	return int64(v), nil
}

// cpuStat is what cpu.stat says of the throttling.
type cpuStat struct {
	periods, throttled uint64
	throttledTime      time.Duration
}

// parseCPUStat parses cpu.stat: v1 nr_periods, nr_throttled, throttled_time (ns); v2 the same
// with throttled_usec.
func parseCPUStat(b []byte, version int) (cpuStat, error) {
	var s cpuStat
	key, unit := "throttled_time", time.Nanosecond
	if version == 2 {
		key, unit = "throttled_usec", time.Microsecond
	}
	var found int
	err := eachKey(b, func(k string, v uint64) {
		switch k {
		case "nr_periods":
			s.periods = v
			found++
		case "nr_throttled":
			s.throttled = v
			found++
		case key:
			s.throttledTime = time.Duration(min(v, uint64(1<<63-1)/uint64(unit))) * unit
			found++
		}
	})
	if err != nil {
		return s, err
	}
	if found != 3 {
		return s, fmt.Errorf("want nr_periods, nr_throttled and %s", key)
	}
	if s.throttled > s.periods {
		return s, fmt.Errorf("%d throttled periods of %d", s.throttled, s.periods)
	}
	return s, nil
}

// findKey finds the value of key in a file of "key value" lines.
func findKey(b []byte, key string) (v uint64, ok bool, err error) {
	err = eachKey(b, func(k string, n uint64) {
		if k == key && !ok {
			v, ok = n, true
		}
	})
	return v, ok, err
}

// eachKey calls f with each "key value" line of b whose value is an unsigned integer; other
// lines are skipped, a line that is not two fields is an error.
func eachKey(b []byte, f func(k string, v uint64)) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil
	}
	for i, line := range bytes.Split(b, []byte{'\n'}) {
		k, v, ok := bytes.Cut(line, []byte{' '})
		if !ok || len(k) == 0 || bytes.IndexByte(v, ' ') >= 0 {
			return fmt.Errorf("line %d is not \"key value\": %q", i+1, clip(string(line)))
		}
		n, err := strconv.ParseUint(string(v), 10, 64)
		if err != nil {
			continue // e.g. a future key with another form
		}
		f(string(k), n)
	}
	return nil
}

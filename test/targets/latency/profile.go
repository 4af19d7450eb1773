package main

import (
	"encoding/json"
	"net/http"
	"runtime"
	"time"
)

// goroutineProfile calls runtime.GoroutineProfile once with a large enough
// buffer (two tries at most) and returns the records and the time taken.
func goroutineProfile() (int, time.Duration) {
	start := time.Now()
	buf := make([]runtime.StackRecord, runtime.NumGoroutine()+1024)
	n, ok := runtime.GoroutineProfile(buf)
	if !ok {
		buf = make([]runtime.StackRecord, n+1024)
		n, _ = runtime.GoroutineProfile(buf)
	}
	return n, time.Since(start)
}

// goroutineProfileEvery profiles in-process at the cadence until done.
func goroutineProfileEvery(every time.Duration, done <-chan struct{}) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			goroutineProfile()
		}
	}
}

func serveGoroutineProfile(w http.ResponseWriter, _ *http.Request) {
	n, d := goroutineProfile()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"goroutines": n, "us": d.Microseconds()})
}

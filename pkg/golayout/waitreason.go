package golayout

import (
	"fmt"
	"strings"
)

// WaitReasons returns the runtime's waitReasonStrings table for a Go
// version: index = waitReason value (g.waitreason), value = the exact string
// the runtime prints ("chan receive", "select", "sync.Mutex.Lock", ...).
// The slice is a fresh copy.
func WaitReasons(goVersion string) ([]string, error) {
	e, err := EnumsFor(goVersion)
	if err != nil {
		return nil, fmt.Errorf("wait reasons: %w", err)
	}
	return e.WaitReasons(), nil
}

// IsChanReason reports whether a wait-reason string means "blocked on a
// channel": chan receive/send and select, including their "(nil chan)",
// "(no cases)" and synctest "(durable)" variants.
func IsChanReason(reason string) bool {
	base, _, _ := strings.Cut(reason, " (")
	return base == "chan receive" || base == "chan send" || base == "select"
}

// IsSyncReason reports whether a wait-reason string means "blocked in a
// sync primitive": "semacquire", "sync.Mutex.Lock", "sync.RWMutex.RLock",
// "sync.RWMutex.Lock", "sync.WaitGroup.Wait" (also "(durable)"), "sync.Cond.Wait".
func IsSyncReason(reason string) bool {
	return reason == "semacquire" || strings.HasPrefix(reason, "sync.")
}

// IsMutexReason reports whether a wait-reason string means waiting for a
// sync.Mutex or sync.RWMutex (the runtime's isMutexWait).
func IsMutexReason(reason string) bool {
	return reason == "sync.Mutex.Lock" || strings.HasPrefix(reason, "sync.RWMutex.")
}

// IsForeverReason reports whether a wait-reason string means the goroutine
// can never be woken: receive/send on a nil channel or an empty select.
func IsForeverReason(reason string) bool {
	return strings.HasSuffix(reason, " (nil chan)") || reason == "select (no cases)"
}

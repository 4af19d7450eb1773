package golayout

import (
	"strings"
	"testing"
)

func TestStatusName(t *testing.T) {
	tests := []struct {
		version string
		status  Status
		want    string
	}{
		{"go1.21.13", StatusRunnable, "runnable"},
		{"go1.21.13", StatusWaiting | StatusScanBit, "waiting"},
		{"go1.22.1", StatusDead, "dead"},
		{"go1.23.1", StatusCopystack, "copystack"},
		{"go1.24.1", StatusPreempted, "preempted"},
		{"go1.25.1", StatusLeaked, "???"}, // not in 1.25
		{"go1.25.1", StatusMoribund, ""},
		{"go1.26.8", StatusLeaked, "leaked"},
		{"go1.26.8", StatusDeadExtra, "waiting for cgo callback"},
		{"go1.26.8", 12, "???"},
	}
	for _, tt := range tests {
		got, err := StatusName(tt.version, tt.status)
		if err != nil || got != tt.want {
			t.Errorf("StatusName(%s, %d) = %q, %v; want %q", tt.version, tt.status, got, err, tt.want)
		}
	}
	if _, err := StatusName("go1.20", StatusRunning); err == nil {
		t.Error("StatusName(go1.20) succeeded")
	}
}

func TestWaitReasonsSpot(t *testing.T) {
	tests := []struct {
		version string
		n       int
		index   map[string]int // reason -> expected value
		absent  []string
	}{
		{"go1.21.13", 32, map[string]int{"chan receive": 14, "select": 9, "semacquire": 18, "sync.Mutex.Lock": 21}, []string{"sync.WaitGroup.Wait", "coroutine"}},
		{"go1.22.12", 37, map[string]int{"chan receive": 14, "coroutine": 36}, []string{"sync.WaitGroup.Wait"}},
		{"go1.23.12", 38, map[string]int{"GC weak to strong wait": 37}, []string{"sync.WaitGroup.Wait", "synctest.Run"}},
		{"go1.24.13", 44, map[string]int{"sync.WaitGroup.Wait": 24, "chan receive (synctest)": 41}, []string{"chan receive (durable)"}},
		{"go1.25.8", 47, map[string]int{"GOMAXPROCS updater (idle)": 18, "semacquire": 19, "chan receive (durable)": 42, "cleanup wait": 46}, nil},
		{"go1.26.8", 47, map[string]int{"chan receive": 19, "select": 18, "semacquire": 13, "chan receive (nil chan)": 15}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.version, func(t *testing.T) {
			rs, err := WaitReasons(tt.version)
			if err != nil {
				t.Fatal(err)
			}
			if len(rs) != tt.n || rs[0] != "" {
				t.Errorf("len = %d (want %d), [0] = %q", len(rs), tt.n, rs[0])
			}
			pos := map[string]int{}
			for i, r := range rs {
				if _, dup := pos[r]; dup {
					t.Errorf("duplicate reason %q", r)
				}
				pos[r] = i
			}
			for r, want := range tt.index {
				if got, ok := pos[r]; !ok || got != want {
					t.Errorf("index of %q = %d (present %v), want %d", r, got, ok, want)
				}
			}
			for _, r := range tt.absent {
				if _, ok := pos[r]; ok {
					t.Errorf("%q present, want absent", r)
				}
			}
			rs[1] = "mutated"
			if again, _ := WaitReasons(tt.version); again[1] == "mutated" {
				t.Error("WaitReasons returned shared memory")
			}
		})
	}
}

func TestReasonClasses(t *testing.T) {
	tests := []struct {
		reason                       string
		chanR, syncR, mutex, forever bool
	}{
		{"chan receive", true, false, false, false},
		{"chan send", true, false, false, false},
		{"select", true, false, false, false},
		{"select (no cases)", true, false, false, true},
		{"chan receive (nil chan)", true, false, false, true},
		{"chan send (nil chan)", true, false, false, true},
		{"chan receive (synctest)", true, false, false, false},
		{"select (durable)", true, false, false, false},
		{"semacquire", false, true, false, false},
		{"sync.Mutex.Lock", false, true, true, false},
		{"sync.RWMutex.RLock", false, true, true, false},
		{"sync.RWMutex.Lock", false, true, true, false},
		{"sync.WaitGroup.Wait", false, true, false, false},
		{"sync.WaitGroup.Wait (durable)", false, true, false, false},
		{"sync.Cond.Wait", false, true, false, false},
		{"synctest.Wait", false, false, false, false},
		{"IO wait", false, false, false, false},
		{"sleep", false, false, false, false},
		{"", false, false, false, false},
	}
	for _, tt := range tests {
		if got := IsChanReason(tt.reason); got != tt.chanR {
			t.Errorf("IsChanReason(%q) = %v", tt.reason, got)
		}
		if got := IsSyncReason(tt.reason); got != tt.syncR {
			t.Errorf("IsSyncReason(%q) = %v", tt.reason, got)
		}
		if got := IsMutexReason(tt.reason); got != tt.mutex {
			t.Errorf("IsMutexReason(%q) = %v", tt.reason, got)
		}
		if got := IsForeverReason(tt.reason); got != tt.forever {
			t.Errorf("IsForeverReason(%q) = %v", tt.reason, got)
		}
	}
	// Every chan/sync-looking reason in every table is classified.
	for _, tb := range tables {
		for _, r := range tb.waitReasons {
			if (strings.HasPrefix(r, "chan ") || strings.HasPrefix(r, "select")) && !IsChanReason(r) {
				t.Errorf("%s: %q not classified as chan", tb.layout.GoVersion, r)
			}
			if strings.HasPrefix(r, "sync.") && !IsSyncReason(r) {
				t.Errorf("%s: %q not classified as sync", tb.layout.GoVersion, r)
			}
		}
	}
}

func TestState(t *testing.T) {
	e, err := EnumsFor("go1.26.8")
	if err != nil {
		t.Fatal(err)
	}
	if got := e.State(StatusWaiting, 19); got != "chan receive" {
		t.Errorf("State(waiting, 19) = %q", got)
	}
	if got := e.State(StatusWaiting, 0); got != "waiting" {
		t.Errorf("State(waiting, 0) = %q", got)
	}
	if got := e.State(StatusLeaked|StatusScanBit, 19); got != "chan receive" {
		t.Errorf("State(leaked, 19) = %q", got)
	}
	if got := e.State(StatusRunnable, 19); got != "runnable" {
		t.Errorf("State(runnable, 19) = %q", got)
	}
	if got := e.WaitReason(200); got != "unknown wait reason" {
		t.Errorf("WaitReason(200) = %q", got)
	}
	old, _ := EnumsFor("go1.21.13")
	if got := old.State(StatusWaiting, 14); got != "chan receive" {
		t.Errorf("1.21 State(waiting, 14) = %q", got)
	}
}

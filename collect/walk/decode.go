package walk

import (
	"fmt"

	"github.com/goroscope/goroscope/pkg/golayout"
	"github.com/goroscope/goroscope/pkg/snapshot"
)

// gFields are the fields of one g the decoder reads, pulled out of a record.
type gFields struct {
	status     golayout.Status // without the scan bit
	scan       bool
	goid       uint64
	waitReason uint8
	waitSince  int64
	stackLo    uint64
	stackHi    uint64
	sp, pc     uint64 // sched or syscall, as the status says
	trackSeq   uint8
	lockedm    uint64
	parentGoid uint64
	gopc       uint64
	startpc    uint64
	waiting    uint64
	labels     uint64
}

func readFields(l *golayout.Layout, b []byte) gFields {
	g := &l.G
	f := gFields{
		status:     golayout.Status(golayout.Uint32(b, g.AtomicStatus)),
		goid:       golayout.Uint64(b, g.Goid),
		waitReason: golayout.Uint8(b, g.WaitReason),
		waitSince:  int64(golayout.Uint64(b, g.WaitSince)),
		stackLo:    golayout.Uint64(b, g.StackLo),
		stackHi:    golayout.Uint64(b, g.StackHi),
		trackSeq:   golayout.Uint8(b, g.TrackingSeq),
		lockedm:    golayout.Uint64(b, g.LockedM),
		parentGoid: golayout.Uint64(b, g.ParentGoid),
		gopc:       golayout.Uint64(b, g.Gopc),
		startpc:    golayout.Uint64(b, g.Startpc),
		waiting:    golayout.Uint64(b, g.Waiting),
		labels:     golayout.Uint64(b, g.Labels),
	}
	f.scan = f.status&golayout.StatusScanBit != 0
	f.status = f.status.Strip()
	if f.status == golayout.StatusSyscall {
		f.sp, f.pc = golayout.Uint64(b, g.SyscallSP), golayout.Uint64(b, g.SyscallPC)
	} else {
		f.sp, f.pc = golayout.Uint64(b, g.SchedSP), golayout.Uint64(b, g.SchedPC)
	}
	return f
}

// state maps a runtime status to a reported state; ok is false for
// statuses that are never reported (idle, dead) or impossible.
func state(status golayout.Status) (snapshot.State, bool) {
	switch status {
	case golayout.StatusRunnable, golayout.StatusPreempted:
		return snapshot.StateRunnable, true
	case golayout.StatusRunning, golayout.StatusCopystack:
		return snapshot.StateRunning, true
	case golayout.StatusSyscall:
		return snapshot.StateSyscall, true
	case golayout.StatusWaiting:
		return snapshot.StateWaiting, true
	case golayout.StatusLeaked:
		return snapshot.StateLeaked, true
	}
	return "", false
}

// plausible reports why a g's fields cannot be a live goroutine's, or "".
// A wrong layout or a torn read shows up here.
func (f *gFields) implausible() string {
	if _, ok := state(f.status); !ok {
		return fmt.Sprintf("status %d", f.status)
	}
	if f.goid == 0 || f.goid > maxGoid {
		return fmt.Sprintf("goid %d", f.goid)
	}
	if f.stackLo == 0 || f.stackHi <= f.stackLo || f.stackHi-f.stackLo > 1<<30 {
		return fmt.Sprintf("stack [%#x, %#x)", f.stackLo, f.stackHi)
	}
	if f.status != golayout.StatusRunning && f.status != golayout.StatusCopystack && f.sp != 0 && (f.sp < f.stackLo || f.sp > f.stackHi) {
		return fmt.Sprintf("saved sp %#x outside stack [%#x, %#x)", f.sp, f.stackLo, f.stackHi)
	}
	return ""
}

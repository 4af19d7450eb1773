package walk

import (
	"fmt"

	"github.com/goroscope/goroscope/pkg/golayout"
	"github.com/goroscope/goroscope/pkg/snapshot"
)

// gFields are the fields of one g the decoder reads, pulled out of a record.
type gFields struct {
	status     uint32
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
		status:     le32(b, g.AtomicStatus),
		goid:       le64(b, g.Goid),
		waitReason: le8(b, g.WaitReason),
		waitSince:  int64(le64(b, g.WaitSince)),
		stackLo:    le64(b, g.StackLo),
		stackHi:    le64(b, g.StackHi),
		trackSeq:   le8(b, g.TrackingSeq),
		lockedm:    le64(b, g.LockedM),
		parentGoid: le64(b, g.ParentGoid),
		gopc:       le64(b, g.Gopc),
		startpc:    le64(b, g.Startpc),
		waiting:    le64(b, g.Waiting),
		labels:     le64(b, g.Labels),
	}
	f.scan = f.status&gScan != 0
	f.status &^= gScan
	if f.status == gSyscall {
		f.sp, f.pc = le64(b, g.SyscallSP), le64(b, g.SyscallPC)
	} else {
		f.sp, f.pc = le64(b, g.SchedSP), le64(b, g.SchedPC)
	}
	return f
}

// state maps a runtime status to a reported state; ok is false for
// statuses that are never reported (idle, dead) or impossible.
func state(status uint32) (snapshot.State, bool) {
	switch status {
	case gRunnable, gPreempted:
		return snapshot.StateRunnable, true
	case gRunning, gCopystack:
		return snapshot.StateRunning, true
	case gSyscall:
		return snapshot.StateSyscall, true
	case gWaiting:
		return snapshot.StateWaiting, true
	case gLeaked:
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
	if f.status != gRunning && f.status != gCopystack && f.sp != 0 && (f.sp < f.stackLo || f.sp > f.stackHi) {
		return fmt.Sprintf("saved sp %#x outside stack [%#x, %#x)", f.sp, f.stackLo, f.stackHi)
	}
	return ""
}

// waitReasonString names a runtime waitReason value.
func (t *Target) waitReasonString(r uint8) string {
	if int(r) < len(t.waitReasons) {
		return t.waitReasons[r]
	}
	return fmt.Sprintf("waitReason(%d)", r)
}

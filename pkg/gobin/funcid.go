package gobin

import (
	"strconv"
	"strings"
)

// FuncIDs holds the abi.FuncID values of the special runtime functions for one binary.
// The numbering changed between Go releases (1.22 added corostart, 1.25 replaced runfinq
// by runFinalizers and runCleanups), so compare Frame.FuncID and Func.FuncID against these.
type FuncIDs struct {
	Normal, Abort, Asmcgocall, AsyncPreempt, Cgocallback, Corostart, DebugCallV2,
	GcBgMarkWorker, Goexit, Gogo, Gopanic, HandleAsyncEvent, Mcall, Morestack, Mstart,
	Panicwrap, Rt0Go, RuntimeMain, Sigpanic, Systemstack, SystemstackSwitch, Wrapper uint8
}

// funcIDOrder lists internal/abi FuncID names in iota order for each layout.
var funcIDOrder = [...]string{
	// Go 1.21
	"Normal abort asmcgocall asyncPreempt cgocallback debugCallV2 gcBgMarkWorker goexit gogo gopanic handleAsyncEvent mcall morestack mstart panicwrap rt0_go runfinq runtime_main sigpanic systemstack systemstack_switch Wrapper",
	// Go 1.22–1.24
	"Normal abort asmcgocall asyncPreempt cgocallback corostart debugCallV2 gcBgMarkWorker goexit gogo gopanic handleAsyncEvent mcall morestack mstart panicwrap rt0_go runfinq runtime_main sigpanic systemstack systemstack_switch Wrapper",
	// Go 1.25+
	"Normal abort asmcgocall asyncPreempt cgocallback corostart debugCallV2 gcBgMarkWorker goexit gogo gopanic handleAsyncEvent mcall morestack mstart panicwrap rt0_go runtime_main runFinalizers runCleanups sigpanic systemstack systemstack_switch Wrapper",
}

// FuncIDAbsent is the FuncIDs value of a special function that the binary's Go version does not have.
const FuncIDAbsent uint8 = 0xff

// FuncIDs returns the FuncID numbering used by this binary's Go version.
func (b *Binary) FuncIDs() FuncIDs {
	minor := goMinor(b.GoVersion())
	layout := 2
	switch {
	case minor > 0 && minor <= 21:
		layout = 0
	case minor >= 22 && minor <= 24:
		layout = 1
	}
	ids := map[string]uint8{"corostart": FuncIDAbsent}
	for i, n := range strings.Fields(funcIDOrder[layout]) {
		ids[n] = uint8(i)
	}
	return FuncIDs{
		Normal: 0, Abort: ids["abort"], Asmcgocall: ids["asmcgocall"], AsyncPreempt: ids["asyncPreempt"],
		Cgocallback: ids["cgocallback"], Corostart: ids["corostart"], DebugCallV2: ids["debugCallV2"],
		GcBgMarkWorker: ids["gcBgMarkWorker"], Goexit: ids["goexit"], Gogo: ids["gogo"], Gopanic: ids["gopanic"],
		HandleAsyncEvent: ids["handleAsyncEvent"], Mcall: ids["mcall"], Morestack: ids["morestack"],
		Mstart: ids["mstart"], Panicwrap: ids["panicwrap"], Rt0Go: ids["rt0_go"], RuntimeMain: ids["runtime_main"],
		Sigpanic: ids["sigpanic"], Systemstack: ids["systemstack"], SystemstackSwitch: ids["systemstack_switch"],
		Wrapper: ids["Wrapper"],
	}
}

// goMinor extracts the minor version from "go1.N[.P][suffix]", 0 if unparsable.
func goMinor(v string) int {
	v, ok := strings.CutPrefix(v, "go1.")
	if !ok {
		return 0
	}
	end := 0
	for end < len(v) && v[end] >= '0' && v[end] <= '9' {
		end++
	}
	n, err := strconv.Atoi(v[:end])
	if err != nil {
		return 0
	}
	return n
}

// ElideWrapper reports whether runtime tracebacks (runtime.Callers, panics) omit a frame with
// FuncID id whose callee — the frame just before it, innermost first — has FuncID callee:
// wrapper frames are hidden unless they call gopanic, sigpanic or panicwrap
// (runtime.elideWrapperCalling). For the innermost frame pass callee = ids.Normal.
func (ids FuncIDs) ElideWrapper(id, callee uint8) bool {
	return id == ids.Wrapper && callee != ids.Gopanic && callee != ids.Sigpanic && callee != ids.Panicwrap
}

//go:build linux

package panics

import (
	"testing"

	"github.com/goroscope/goroscope/bpf"
)

func TestPanicValue(t *testing.T) {
	tests := []struct {
		kind  uint8
		word  uint64
		msg   string
		minor int
		want  string
	}{
		{kindString, 0, "a\nb", 26, "a\n\tb"},
		{kindString, 0, "a\nb", 22, "a\nb"},
		{kindBool, 1, "", 26, "true"},
		{kindBool, 0, "", 26, "false"},
		{kindInt, uint64(1<<64 - 5), "", 26, "-5"},
		{kindInt + 1, 0xff, "", 26, "-1"},        // int8
		{kindInt + 3, 0xffff_ffff, "", 26, "-1"}, // int32
		{kindUint + 1, 0x1ff, "", 26, "255"},     // uint8
		{kindUint, uint64(1<<64 - 1), "", 26, "18446744073709551615"},
	}
	for _, tt := range tests {
		r := bpf.PanicValue{ArgType: 1, TypeKind: tt.kind, Words: [4]uint64{tt.word}, Msg: []byte(tt.msg), MsgLen: uint64(len(tt.msg))}
		if got := panicValue(r, tt.minor); got != tt.want {
			t.Errorf("kind %d word %#x msg %q go1.%d: %q, want %q", tt.kind, tt.word, tt.msg, tt.minor, got, tt.want)
		}
	}
	if got := panicValue(bpf.PanicValue{}, 26); got != "nil" {
		t.Errorf("nil value: %q", got)
	}
}

// TestPrintPanics renders chains as printpanics of each version prints them.
func TestPrintPanics(t *testing.T) {
	str := func(s string) bpf.PanicValue {
		return bpf.PanicValue{ArgType: 1, TypeKind: kindString, Msg: []byte(s), MsgLen: uint64(len(s))}
	}
	rec := func(v bpf.PanicValue) bpf.PanicValue { v.Recovered = true; return v }
	rep := func(v bpf.PanicValue) bpf.PanicValue { v.Repanicked = true; return v }
	goexit := bpf.PanicValue{Goexit: true}
	errVal := bpf.PanicValue{ArgType: 0x1000, ArgData: 0x2000, TypeKind: 22} // an error preprintpanics left alone
	tests := []struct {
		name   string
		newest bpf.PanicValue
		chain  []bpf.PanicValue
		minor  int
		msg    string
		value  string
	}{
		{"single", str("a"), nil, 21, "panic: a", "a"},
		{"chain", str("b"), []bpf.PanicValue{str("a")}, 22, "panic: a\n\tpanic: b", "b"},
		{"recovered", str("b"), []bpf.PanicValue{rec(str("a"))}, 26, "panic: a [recovered]\n\tpanic: b", "b"},
		{"three", str("c"), []bpf.PanicValue{str("b"), rec(str("a"))}, 24, "panic: a [recovered]\n\tpanic: b\n\tpanic: c", "c"},
		{"goexit first", str("b"), []bpf.PanicValue{goexit}, 26, "panic: b", "b"},
		{"goexit between", str("b"), []bpf.PanicValue{goexit, str("a")}, 21, "panic: a\n\tpanic: b", "b"},
		{"repanic 1.25", errVal, []bpf.PanicValue{rep(rec(str("e")))}, 25, "panic: e [recovered, repanicked]", "e"},
		{"repanic 1.26", errVal, []bpf.PanicValue{rep(rec(str("e")))}, 26, "panic: e [recovered, repanicked]", "e"},
		{"same value 1.25", errVal, []bpf.PanicValue{rep(str("e"))}, 25, "panic: e [recovered, repanicked]", "e"},
		{"same value 1.26", errVal, []bpf.PanicValue{rep(str("e"))}, 26, "panic: e", "e"},
		{"repanic twice", errVal, []bpf.PanicValue{rep(rec(errVal)), rep(rec(str("e")))}, 26, "panic: e [recovered, repanicked]", "e"},
		{"repanic then new", str("n"), []bpf.PanicValue{rec(errVal), rep(rec(str("e")))}, 26, "panic: e [recovered, repanicked]\n\tpanic: n", "n"},
		// Before Go 1.25 nothing is marked repanicked: both are printed.
		{"repanic 1.24", str("e"), []bpf.PanicValue{rec(str("e"))}, 24, "panic: e [recovered]\n\tpanic: e", "e"},
	}
	for _, tt := range tests {
		r := bpf.PanicRecord{Kind: bpf.PanicKindPanic, PanicValue: tt.newest, Chain: tt.chain}
		msg, value := printPanics(r, tt.minor, func(v bpf.PanicValue) string { return panicValue(v, tt.minor) })
		if msg != tt.msg || value != tt.value {
			t.Errorf("%s (Go 1.%d): message %q value %q, want %q, %q", tt.name, tt.minor, msg, value, tt.msg, tt.value)
		}
		if tt.minor == 26 { // render's version without a process
			if got := render(r, nil); got.Message != tt.msg || got.Value != tt.value || got.Truncated {
				t.Errorf("%s: rendered %+v", tt.name, got)
			}
		}
	}
	// A chain longer than the probe reads, or a string cut short: truncated.
	r := bpf.PanicRecord{Kind: bpf.PanicKindPanic, PanicValue: str("b"), Chain: []bpf.PanicValue{str("a")}, ChainMore: true}
	if got := render(r, nil); !got.Truncated || got.Message != "panic: a\n\tpanic: b" {
		t.Errorf("longer chain: %+v", got)
	}
	long := str("a")
	long.MsgLen = 300
	r = bpf.PanicRecord{Kind: bpf.PanicKindPanic, PanicValue: str("b"), Chain: []bpf.PanicValue{long}}
	if got := render(r, nil); !got.Truncated {
		t.Errorf("cut older string: %+v", got)
	}
}

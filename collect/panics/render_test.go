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
		r := bpf.PanicRecord{ArgType: 1, TypeKind: tt.kind, Words: [4]uint64{tt.word}, Msg: []byte(tt.msg), MsgLen: uint64(len(tt.msg))}
		if got := panicValue(r, tt.minor); got != tt.want {
			t.Errorf("kind %d word %#x msg %q go1.%d: %q, want %q", tt.kind, tt.word, tt.msg, tt.minor, got, tt.want)
		}
	}
	if got := panicValue(bpf.PanicRecord{}, 26); got != "nil" {
		t.Errorf("nil value: %q", got)
	}
}

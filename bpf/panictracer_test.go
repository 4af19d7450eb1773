//go:build linux

package bpf

import (
	"bytes"
	"encoding/binary"
	"testing"
)

func TestDecodePanicEvent(t *testing.T) {
	ev := panicsPanicEvent{Pid: 7, Tid: 8, Kind: panicsPanicKindPANIC_KIND_PANIC, Nstack: 3, Nsystem: 1, Goid: 1,
		ArgType: 0x1000, ArgData: 0x2000, TypeKind: 24, MsgCopied: 3, MsgLen: 5}
	ev.Stack[0], ev.Stack[1], ev.Stack[2] = 0x401000, 0x402000, 0x403000
	copy(ev.Msg[:], "abc")
	var buf bytes.Buffer
	if err := binary.Write(&buf, binary.LittleEndian, &ev); err != nil {
		t.Fatal(err)
	}
	if want := 104 + 2*64*8 + 1024; buf.Len() != want {
		t.Fatalf("struct panic_event is %d bytes, want %d", buf.Len(), want)
	}
	r, err := decodePanicEvent(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if r.PID != 7 || r.TID != 8 || r.Kind != PanicKindPanic || r.GoID != 1 || string(r.Msg) != "abc" || r.MsgLen != 5 ||
		len(r.Stack) != 3 || r.Stack[1] != 0x402000 || r.System != 1 || r.TypeKind != 24 || r.ArgType != 0x1000 {
		t.Errorf("decoded %+v", r)
	}
	if _, err := decodePanicEvent(buf.Bytes()[:100]); err == nil {
		t.Error("a short record decoded")
	}
}

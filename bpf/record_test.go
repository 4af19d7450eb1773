//go:build linux

package bpf

import (
	"encoding/binary"
	"slices"
	"strings"
	"testing"
)

func rawRecord(walkID, index uint32, gaddr uint64, flags RecordFlags, g []byte, pcs []uint64) []byte {
	b := make([]byte, recHdrSize, recHdrSize+len(g)+8*len(pcs))
	binary.LittleEndian.PutUint32(b[0:], walkID)
	binary.LittleEndian.PutUint32(b[4:], index)
	binary.LittleEndian.PutUint64(b[8:], gaddr)
	binary.LittleEndian.PutUint32(b[16:], uint32(flags))
	binary.LittleEndian.PutUint16(b[20:], uint16(len(g)))
	binary.LittleEndian.PutUint16(b[22:], uint16(len(pcs)))
	b = append(b, g...)
	for _, pc := range pcs {
		b = binary.LittleEndian.AppendUint64(b, pc)
	}
	return b
}

func TestParseRecord(t *testing.T) {
	g := []byte{1, 2, 3, 4, 5} // odd size: PCs are unaligned
	tests := []struct {
		name    string
		raw     []byte
		want    GRecord
		wantID  uint32
		wantErr string
	}{
		{"full", rawRecord(7, 3, 0xc000001000, FlagTorn, g, []uint64{0x401000, 0x402000}),
			GRecord{Index: 3, GAddr: 0xc000001000, G: g, PCs: []uint64{0x401000, 0x402000}, Flags: FlagTorn}, 7, ""},
		{"no frames", rawRecord(1, 0, 0xc000002000, 0, g, nil),
			GRecord{GAddr: 0xc000002000, G: g, PCs: []uint64{}}, 1, ""},
		{"short header", make([]byte, recHdrSize-1), GRecord{}, 0, "shorter than"},
		{"truncated body", rawRecord(1, 9, 1, 0, g, []uint64{1})[:recHdrSize+len(g)+4], GRecord{}, 0, "header says"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := GRecord{PCs: []uint64{99, 98, 97}} // reused slice must be reset
			id, err := parseRecord(tt.raw, &r)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if id != tt.wantID || r.Index != tt.want.Index || r.GAddr != tt.want.GAddr || r.Flags != tt.want.Flags ||
				!slices.Equal(r.G, tt.want.G) || !slices.Equal(r.PCs, tt.want.PCs) {
				t.Errorf("got id %d %+v, want id %d %+v", id, r, tt.wantID, tt.want)
			}
		})
	}
}

func TestWalkRequestConfig(t *testing.T) {
	valid := WalkRequest{
		PID: 42, Allgs: 0x5a0000, Allglen: 0x5a0018, GSize: 440,
		Off: GOffsets{StackLo: 0, StackHi: 8, AtomicStatus: 144, SchedSP: 56, SchedPC: 64, SchedBP: 104,
			SyscallSP: 112, SyscallPC: 120, SyscallBP: 128},
		MaxFrames: 64, MaxGoroutines: 1 << 20,
	}
	with := func(f func(*WalkRequest)) WalkRequest { r := valid; f(&r); return r }
	tests := []struct {
		name    string
		req     WalkRequest
		wantErr string
	}{
		{"valid", valid, ""},
		{"no syscallbp", with(func(r *WalkRequest) { r.Off.SyscallBP = -1 }), ""},
		{"pid 0", with(func(r *WalkRequest) { r.PID = 0 }), "PID is 0"},
		{"no allgs", with(func(r *WalkRequest) { r.Allgs = 0 }), "runtime.allgs"},
		{"gsize 0", with(func(r *WalkRequest) { r.GSize = 0 }), "GSize 0"},
		{"gsize too big", with(func(r *WalkRequest) { r.GSize = MaxGSize + 1 }), "GSize 1025"},
		{"frames 0", with(func(r *WalkRequest) { r.MaxFrames = 0 }), "MaxFrames 0"},
		{"frames too many", with(func(r *WalkRequest) { r.MaxFrames = MaxFramesLimit + 1 }), "MaxFrames 129"},
		{"goroutines 0", with(func(r *WalkRequest) { r.MaxGoroutines = 0 }), "MaxGoroutines 0"},
		{"goroutines too many", with(func(r *WalkRequest) { r.MaxGoroutines = MaxGoroutinesCap + 1 }), "MaxGoroutines"},
		{"status outside g", with(func(r *WalkRequest) { r.Off.AtomicStatus = 437 }), "AtomicStatus=437"},
		{"absent sched.pc", with(func(r *WalkRequest) { r.Off.SchedPC = -1 }), "SchedPC=-1"},
		{"fields far apart", with(func(r *WalkRequest) { r.Off.AtomicStatus = 400 }), "bytes apart"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tt.req.config()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.SpanSchedOff != 56 || c.SpanSchedLen != 144+4-56 || c.SpanSysOff != 112 || c.SpanSysLen != 144+4-112 {
					t.Errorf("spans sched %d+%d sys %d+%d", c.SpanSchedOff, c.SpanSchedLen, c.SpanSysOff, c.SpanSysLen)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

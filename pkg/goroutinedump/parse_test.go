package goroutinedump

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseCases(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Goroutine
	}{
		{
			name: "created by in goroutine",
			in: "goroutine 18 [chan receive]:\n" +
				"main.worker(0xc000012345?)\n" +
				"\t/src/main.go:12 +0x1d\n" +
				"created by main.main in goroutine 1\n" +
				"\t/src/main.go:30 +0x4f\n",
			want: []Goroutine{{
				ID: 18, MID: -1, Status: "chan receive",
				Frames:    []Frame{{Function: "main.worker", Args: "0xc000012345?", File: "/src/main.go", Line: 12, PCOffset: 0x1d, HasPCOffset: true}},
				CreatedBy: &Frame{Function: "main.main", File: "/src/main.go", Line: 30, PCOffset: 0x4f, HasPCOffset: true},
				ParentID:  1,
			}},
		},
		{
			name: "pre-go1.21 created by and two goroutines",
			in: "goroutine 1 [running]:\n" +
				"main.main()\n" +
				"\t/src/main.go:5 +0x1\n" +
				"\n" +
				"goroutine 6 [sleep, 12 minutes]:\n" +
				"time.Sleep(0x3b9aca00)\n" +
				"\t/go/src/runtime/time.go:195 +0x135\n" +
				"created by main.main\n" +
				"\t/src/main.go:4 +0x2a\n",
			want: []Goroutine{
				{ID: 1, MID: -1, Status: "running", Frames: []Frame{{Function: "main.main", File: "/src/main.go", Line: 5, PCOffset: 1, HasPCOffset: true}}},
				{ID: 6, MID: -1, Status: "sleep", WaitMinutes: 12,
					Frames:    []Frame{{Function: "time.Sleep", Args: "0x3b9aca00", File: "/go/src/runtime/time.go", Line: 195, PCOffset: 0x135, HasPCOffset: true}},
					CreatedBy: &Frame{Function: "main.main", File: "/src/main.go", Line: 4, PCOffset: 0x2a, HasPCOffset: true}},
			},
		},
		{
			name: "traceback level 2 header and frame",
			in: "goroutine 7 gp=0xc000003dc0 m=nil [select (no cases) (scan), 3 minutes, locked to thread]:\n" +
				"main.park(...)\n" +
				"\t/src/p.go:9\n" +
				"main.run()\n" +
				"\t/src/p.go:20 +0x13 fp=0xc000051fe0 sp=0xc000051fc0 pc=0x47a2bd\n" +
				"\n" +
				"goroutine 1 gp=0xc000002380 m=0 mp=0x5a3ba0 [running]:\n" +
				"runtime.goexit({})\n" +
				"\t/go/src/runtime/asm_amd64.s:1650 +0x1\n",
			want: []Goroutine{
				{ID: 7, GAddr: 0xc000003dc0, MID: -1, Status: "select (no cases)", ScanBit: true, WaitMinutes: 3, LockedToThread: true,
					Frames: []Frame{
						{Function: "main.park", Args: "...", Inlined: true, File: "/src/p.go", Line: 9},
						{Function: "main.run", File: "/src/p.go", Line: 20, PCOffset: 0x13, HasPCOffset: true, FP: 0xc000051fe0, SP: 0xc000051fc0, PC: 0x47a2bd},
					}},
				{ID: 1, GAddr: 0xc000002380, MID: 0, MAddr: 0x5a3ba0, Status: "running",
					Frames: []Frame{{Function: "runtime.goexit", Args: "{}", File: "/go/src/runtime/asm_amd64.s", Line: 1650, PCOffset: 1, HasPCOffset: true}}},
			},
		},
		{
			name: "synctest, leaked and labels",
			in: "goroutine 9 [chan receive (durable), synctest bubble 2]:\n" +
				"main.f()\n\t/a.go:1 +0x1\n\n" +
				"goroutine 10 [sleep (durable), synctest bubble 2]:\n" +
				"main.f()\n\t/a.go:1 +0x1\n\n" +
				"goroutine 11 [chan send (leaked) (scan)]:\n" +
				"main.f()\n\t/a.go:1 +0x1\n\n" +
				`goroutine 12 [select, 2 minutes labels:{"role": "a\"b]", "tenant": "acme, inc", "u": "\u00e9"}]:` + "\n" +
				"main.f()\n\t/a.go:1 +0x1\n",
			want: []Goroutine{
				{ID: 9, MID: -1, Status: "chan receive (durable)", SynctestBubble: 2, Frames: []Frame{{Function: "main.f", File: "/a.go", Line: 1, PCOffset: 1, HasPCOffset: true}}},
				{ID: 10, MID: -1, Status: "sleep", Extra: []string{"durable"}, SynctestBubble: 2, Frames: []Frame{{Function: "main.f", File: "/a.go", Line: 1, PCOffset: 1, HasPCOffset: true}}},
				{ID: 11, MID: -1, Status: "chan send", ScanBit: true, Extra: []string{"leaked"}, Frames: []Frame{{Function: "main.f", File: "/a.go", Line: 1, PCOffset: 1, HasPCOffset: true}}},
				{ID: 12, MID: -1, Status: "select", WaitMinutes: 2, Labels: map[string]string{"role": `a"b]`, "tenant": "acme, inc", "u": "é"},
					Frames: []Frame{{Function: "main.f", File: "/a.go", Line: 1, PCOffset: 1, HasPCOffset: true}}},
			},
		},
		{
			name: "function name forms",
			in: "goroutine 3 [running]:\n" +
				"panic({0x4a1b20?, 0x5a3c50?})\n\t/go/src/runtime/panic.go:770 +0x132\n" +
				"main.(*T).m-fm()\n\t/src/t.go:8 +0x25\n" +
				"main.G[...](...)\n\t/src/t.go:11\n" +
				"main.main.func1.2({0x0, 0x0}, ...)\n\t/src/t.go:14 +0x5\n" +
				"main.(*List[...]).Push(0xc0000a4000, {0x4b3a80, 0xc00001c030}, _)\n\t/src/t.go:17 +0x9\n" +
				"main.main.gowrap1()\n\t/src/t.go:20\n",
			want: []Goroutine{{ID: 3, MID: -1, Status: "running", Frames: []Frame{
				{Function: "panic", Args: "{0x4a1b20?, 0x5a3c50?}", File: "/go/src/runtime/panic.go", Line: 770, PCOffset: 0x132, HasPCOffset: true},
				{Function: "main.(*T).m-fm", File: "/src/t.go", Line: 8, PCOffset: 0x25, HasPCOffset: true},
				{Function: "main.G[...]", Args: "...", Inlined: true, File: "/src/t.go", Line: 11},
				{Function: "main.main.func1.2", Args: "{0x0, 0x0}, ...", File: "/src/t.go", Line: 14, PCOffset: 5, HasPCOffset: true},
				{Function: "main.(*List[...]).Push", Args: "0xc0000a4000, {0x4b3a80, 0xc00001c030}, _", File: "/src/t.go", Line: 17, PCOffset: 9, HasPCOffset: true},
				{Function: "main.main.gowrap1", File: "/src/t.go", Line: 20},
			}}},
		},
		{
			name: "elisions, ancestors, cgo, notes, unknown location",
			in: "goroutine 20 [chan receive]:\n" +
				"main.r(0x0?)\n\t/src/r.go:5 +0x1d\n" +
				"...7 frames elided...\n" +
				"main.r(0x9?)\n\t/src/r.go:7 +0x2d\n" +
				"non-Go function at pc=0x7f00aa\n" +
				"cfunc\n\t/src/c.c:3 pc=0x7f00bb\n" +
				"?()\n\t?:0 +0x3\n" +
				"created by main.start in goroutine 19\n\t/src/r.go:30 +0x44\n" +
				"[originating from goroutine 19]:\n" +
				"main.start(...)\n\t/src/r.go:30 +0x43\n" +
				"...additional frames elided...\n" +
				"created by main.main\n\t/src/r.go:40 +0x10\n" +
				"[originating from goroutine 1]:\n" +
				"main.main(...)\n\t/src/r.go:40 +0xf\n" +
				"\n" +
				"goroutine 21 [running]:\n" +
				"\tgoroutine running on other thread; stack unavailable\n" +
				"main.x()\n\t/src/x.go:1 +0x1\n" +
				"...additional frames elided...\n",
			want: []Goroutine{
				{ID: 20, MID: -1, Status: "chan receive", ElidedFrames: 7, ElidedAt: 1, ParentID: 19,
					Frames: []Frame{
						{Function: "main.r", Args: "0x0?", File: "/src/r.go", Line: 5, PCOffset: 0x1d, HasPCOffset: true},
						{Function: "main.r", Args: "0x9?", File: "/src/r.go", Line: 7, PCOffset: 0x2d, HasPCOffset: true},
						{Function: "non-Go function", PC: 0x7f00aa, NonGo: true},
						{Function: "cfunc", File: "/src/c.c", Line: 3, PC: 0x7f00bb, NonGo: true},
						{Function: "?", File: "?", Line: 0, PCOffset: 3, HasPCOffset: true},
					},
					CreatedBy: &Frame{Function: "main.start", File: "/src/r.go", Line: 30, PCOffset: 0x44, HasPCOffset: true},
					Ancestors: []Ancestor{
						{ID: 19, Truncated: true,
							Frames:    []Frame{{Function: "main.start", Args: "...", Inlined: true, File: "/src/r.go", Line: 30, PCOffset: 0x43, HasPCOffset: true}},
							CreatedBy: &Frame{Function: "main.main", File: "/src/r.go", Line: 40, PCOffset: 0x10, HasPCOffset: true}},
						{ID: 1, Frames: []Frame{{Function: "main.main", Args: "...", Inlined: true, File: "/src/r.go", Line: 40, PCOffset: 0xf, HasPCOffset: true}}},
					}},
				{ID: 21, MID: -1, Status: "running", ElidedFrames: -1, ElidedAt: 1,
					Notes:  []string{"goroutine running on other thread; stack unavailable"},
					Frames: []Frame{{Function: "main.x", File: "/src/x.go", Line: 1, PCOffset: 1, HasPCOffset: true}}},
			},
		},
		{
			name: "CRLF and extra blank lines",
			in:   "\r\n\r\ngoroutine 1 [waiting]:\r\nmain.main()\r\n\t/m.go:1 +0x1\r\n\r\n\r\n",
			want: []Goroutine{{ID: 1, MID: -1, Status: "waiting", Frames: []Frame{{Function: "main.main", File: "/m.go", Line: 1, PCOffset: 1, HasPCOffset: true}}}},
		},
		{
			name: "empty input",
			in:   "",
			want: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseString(tt.in)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Parse mismatch\n got: %+v\nwant: %+v", got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"not a dump", "hello\n", "line 1: want a goroutine header"},
		{"bad id", "goroutine x [running]:\n", "line 1: bad id"},
		{"no status", "goroutine 1 []:\n", "line 1: goroutine header \"goroutine 1 []:\": empty status"},
		{"bad header field", "goroutine 1 q=1 [running]:\n", "unexpected field"},
		{"missing location", "goroutine 1 [running]:\nmain.main()\nmain.x()\n", "line 3: want a tab-indented location line"},
		{"truncated", "goroutine 1 [running]:\nmain.main()\n", "line 2 (end of input): dump ends after \"main.main\""},
		{"blank after function", "goroutine 1 [running]:\nmain.main()\n\n", "line 3"},
		{"location first", "goroutine 1 [running]:\n\t/m.go:1 +0x1\n", "line 2: location line"},
		{"bad offset", "goroutine 1 [running]:\nmain.main()\n\t/m.go:1 +0xzz\n", "line 3: bad \"+0xzz\""},
		{"bad line number", "goroutine 1 [running]:\nmain.main()\n\t/m.go:x +0x1\n", "line 3: bad line number"},
		{"no file", "goroutine 1 [running]:\nmain.main()\n\t+0x1\n", "line 3: location line \"+0x1\" has no file:line"},
		{"frame after created by", "goroutine 2 [running]:\nmain.f()\n\t/m.go:1 +0x1\ncreated by main.main\n\t/m.go:2 +0x1\nmain.g()\n\t/m.go:3 +0x1\n", "line 7: frame \"main.g\" after"},
		{"two created by", "goroutine 2 [running]:\ncreated by main.main\n\t/m.go:2 +0x1\ncreated by main.main\n\t/m.go:2 +0x1\n", "line 4: second"},
		{"bad parent", "goroutine 2 [running]:\ncreated by main.main in goroutine x\n", "line 2: bad parent goroutine id"},
		{"bad elision", "goroutine 2 [running]:\n...many frames elided...\n", "line 2: bad elision line"},
		{"bad labels", "goroutine 2 [running labels:{\"a\" \"b\"}]:\n", "bad labels"},
		{"bad minutes", "goroutine 2 [sleep, x minutes]:\n", "bad wait time"},
		{"too long", "goroutine 1 [" + strings.Repeat("x", MaxLineLength) + "]:\n", "line 1: longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseString(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestParsePartialOnError(t *testing.T) {
	in := "goroutine 1 [running]:\nmain.main()\n\t/m.go:1 +0x1\n\ngoroutine 2 [sleep]:\nmain.f("
	gs, err := ParseString(in)
	if err == nil {
		t.Fatal("want an error for a truncated dump")
	}
	if len(gs) != 2 || gs[0].ID != 1 || len(gs[0].Frames) != 1 {
		t.Fatalf("partial result %+v, want goroutine 1 complete and goroutine 2 started", gs)
	}
}

func TestParseFrameLimit(t *testing.T) {
	var b strings.Builder
	b.WriteString("goroutine 1 [running]:\n")
	for i := 0; i <= MaxFramesPerGoroutine; i++ {
		b.WriteString("main.f()\n\t/m.go:1 +0x1\n")
	}
	if _, err := ParseString(b.String()); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Fatalf("Parse error = %v, want a frame limit error", err)
	}
}

func TestParseCrash(t *testing.T) {
	in := "panic: boom\n\n" +
		"goroutine 1 gp=0xc000002380 m=0 mp=0x5a3ba0 [running]:\n" +
		"panic({0x4a1b20?, 0x5a3c50?})\n\t/go/src/runtime/panic.go:770 +0x132 fp=0xc00006af50 sp=0xc00006aea0 pc=0x4318f2\n" +
		"main.main()\n\t/m.go:5 +0x25 fp=0xc00006af50 sp=0xc00006af40 pc=0x45b6c5\n" +
		"\n" +
		"rax    0x0\nrip    0x492820\nexit status 2\n"
	gs, err := ParseCrash(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(gs) != 1 || gs[0].GAddr != 0xc000002380 || gs[0].MID != 0 || len(gs[0].Frames) != 2 || gs[0].Frames[0].Function != "panic" {
		t.Fatalf("ParseCrash = %+v", gs)
	}
	if _, err := ParseString(in); err == nil {
		t.Fatal("Parse accepted crash output with a preamble")
	}
}

func TestFormatRoundTrip(t *testing.T) {
	in := "goroutine 7 gp=0xc000003dc0 m=nil [select (no cases) (scan), 3 minutes, locked to thread]:\n" +
		"main.park(...)\n\t/src/p.go:9\n" +
		"main.run()\n\t/src/p.go:20 +0x13 fp=0xc000051fe0 sp=0xc000051fc0 pc=0x47a2bd\n" +
		"...3 frames elided...\n" +
		"non-Go function at pc=0x7f00aa\n" +
		"cfunc\n\t/src/c.c:3 pc=0x7f00bb\n" +
		"created by main.start in goroutine 19\n\t/src/r.go:30 +0x44\n" +
		"[originating from goroutine 19]:\n" +
		"main.start(...)\n\t/src/r.go:30 +0x43\n" +
		"...additional frames elided...\n" +
		"created by main.main\n\t/src/r.go:40 +0x10\n" +
		"\n" +
		"goroutine 11 gp=0xc000003000 m=2 mp=0xc000100008 [chan send (leaked) (scan) (durable), synctest bubble 4 labels:{\"a\": \"\\u00e9\\t\", \"b\": \"\\\"\"}]:\n" +
		"main.f()\n\t/a.go:1\n"
	gs, err := ParseString(in)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := Format(&b, gs); err != nil {
		t.Fatal(err)
	}
	if b.String() != in {
		t.Fatalf("Format(Parse(x)) != x\n got:\n%s\nwant:\n%s", b.String(), in)
	}
}

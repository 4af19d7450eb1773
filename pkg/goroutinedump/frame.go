package goroutinedump

import (
	"fmt"
	"strconv"
	"strings"
)

// parseFunctionLine splits a frame's function line into the name and the
// argument list:
//
//	main.(*T).m(0xc000010000, {0x4b3a80?, 0xc00001c030?})
//	main.F[...](...)
//	runtime.goexit({})
//	panic({0x4a1b20?, 0x5a3c50?})
//
// The argument list never contains parentheses, so it starts at the last
// "(". A cgo symbolizer's line has no argument list at all; such frames
// are marked NonGo.
func parseFunctionLine(s string) Frame {
	if strings.HasSuffix(s, ")") {
		if i := strings.LastIndexByte(s, '('); i > 0 {
			args := s[i+1 : len(s)-1]
			return Frame{Function: s[:i], Args: args, Inlined: args == "..."}
		}
	}
	return Frame{Function: s, NonGo: true} // cgo symbolizer frame
}

// parseLocation parses a location line without its leading tab into f:
//
//	/src/main.go:12 +0x1d
//	/src/main.go:12 +0x1d fp=0xc000051fe0 sp=0xc000051fc0 pc=0x47a2bd
//	/src/main.go:12            (inlined frame or PC at the function entry)
//	?:0 +0x1d                  (unknown location)
//	/src/x.c:10 pc=0x47a2bd    (cgo symbolizer)
//	pc=0x47a2bd                (cgo symbolizer without a file)
func parseLocation(s string, f *Frame) error {
	rest := s
tokens:
	for i := 0; i < 8; i++ { // at most "+0x fp= sp= pc=" follow the file:line
		sp := strings.LastIndexByte(rest, ' ')
		tok := rest[sp+1:]
		var err error
		switch {
		case strings.HasPrefix(tok, "+0x"):
			f.PCOffset, err = parseHex(tok[1:])
			f.HasPCOffset = true
		case strings.HasPrefix(tok, "fp="):
			f.FP, err = parseHex(tok[3:])
		case strings.HasPrefix(tok, "sp="):
			f.SP, err = parseHex(tok[3:])
		case strings.HasPrefix(tok, "pc="):
			f.PC, err = parseHex(tok[3:])
		default:
			break tokens
		}
		if err != nil {
			return fmt.Errorf("bad %q in location line %q: %w", tok, clip(s), err)
		}
		if sp < 0 {
			rest = ""
			break
		}
		rest = rest[:sp]
	}
	if f.Function == "non-Go function" {
		f.NonGo = true
	}
	if rest == "" {
		if f.PC == 0 {
			return fmt.Errorf("location line %q has no file:line", clip(s))
		}
		f.NonGo = true // cgo symbolizer frame without a file
		return nil
	}
	colon := strings.LastIndexByte(rest, ':')
	if colon < 0 {
		return fmt.Errorf("location line %q has no file:line", clip(s))
	}
	line, err := strconv.Atoi(rest[colon+1:])
	if err != nil || line < 0 {
		return fmt.Errorf("bad line number in location line %q", clip(s))
	}
	f.File, f.Line = rest[:colon], line
	if f.File == "" {
		return fmt.Errorf("empty file name in location line %q", clip(s))
	}
	return nil
}

// parseHex parses "0x1f" (the runtime prints hex with a 0x prefix).
func parseHex(s string) (uint64, error) {
	h, ok := strings.CutPrefix(s, "0x")
	if !ok {
		return 0, fmt.Errorf("%q is not 0x-prefixed hex", clip(s))
	}
	v, err := strconv.ParseUint(h, 16, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not hex: %w", clip(s), err.(*strconv.NumError).Err)
	}
	return v, nil
}

// parseUint parses a decimal id or count.
func parseUint(s string) (uint64, error) {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a decimal number: %w", clip(s), err.(*strconv.NumError).Err)
	}
	return v, nil
}

package goroutinedump

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Limits that bound the memory Parse uses on hostile or corrupt input.
const (
	// MaxLineLength is the longest line Parse accepts, in bytes.
	MaxLineLength = 1 << 20
	// MaxFramesPerGoroutine bounds the frames (including ancestors' frames)
	// kept per goroutine; the runtime prints at most 100 plus ancestors.
	MaxFramesPerGoroutine = 10000
	// MaxAncestors bounds the ancestor tracebacks kept per goroutine.
	MaxAncestors = 1000
)

// Parse reads a goroutine dump (runtime.Stack(buf, true) or
// /debug/pprof/goroutine?debug=2) and returns its goroutines in order.
//
// Blank lines between goroutines are ignored; any other line that does not
// fit the runtime's format is an error naming the line number. On error,
// the goroutines completed before the bad line are returned too, so that a
// truncated dump (pprof cuts them at 64 MiB) is still usable.
func Parse(r io.Reader) ([]Goroutine, error) {
	return parse(r, &parser{})
}

// ParseCrash reads the output of a crashed or SIGQUIT-ed Go program
// ("panic: ...", "SIGQUIT: quit", "fatal error: ..." followed by goroutine
// tracebacks and a register dump) and returns its goroutines. Lines
// outside goroutine blocks are skipped; lines inside them must be valid.
func ParseCrash(r io.Reader) ([]Goroutine, error) {
	return parse(r, &parser{skipOutside: true})
}

func parse(r io.Reader, p *parser) ([]Goroutine, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxLineLength)
	for sc.Scan() {
		p.lineNo++
		if err := p.line(strings.TrimSuffix(sc.Text(), "\r")); err != nil {
			return p.out, fmt.Errorf("goroutine dump line %d: %w", p.lineNo, err)
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return p.out, fmt.Errorf("goroutine dump line %d: longer than %d bytes; is this a goroutine dump?", p.lineNo+1, MaxLineLength)
		}
		return p.out, fmt.Errorf("read goroutine dump after line %d: %w", p.lineNo, err)
	}
	if err := p.finish(); err != nil {
		return p.out, fmt.Errorf("goroutine dump line %d (end of input): %w", p.lineNo, err)
	}
	return p.out, nil
}

// ParseString is Parse on a string.
func ParseString(s string) ([]Goroutine, error) {
	return Parse(strings.NewReader(s))
}

// awaiting says what the next location line ("\tfile:line +0x..") completes.
type awaiting int

const (
	awaitNothing   awaiting = iota
	awaitFrame              // a frame of the goroutine or of an ancestor
	awaitCreatedBy          // a "created by" line
)

// parser is the line-by-line state machine behind Parse.
type parser struct {
	skipOutside bool // ignore lines between goroutine blocks (crash output)
	lineNo      int
	out         []Goroutine
	cur         *Goroutine // goroutine being parsed, nil between goroutines
	anc         *Ancestor  // ancestor traceback being parsed, nil outside one
	nframes     int        // frames kept for cur, to enforce MaxFramesPerGoroutine
	wait        awaiting
	pending     Frame // function half of the frame awaiting its location line
}

func (p *parser) line(s string) error {
	if p.wait != awaitNothing {
		if !strings.HasPrefix(s, "\t") {
			return fmt.Errorf("want a tab-indented location line (\"\\tfile.go:123 +0x1f\") after %q, got %q", p.pending.Function, clip(s))
		}
		return p.location(s[1:])
	}
	switch {
	case s == "":
		return p.endGoroutine()
	case strings.HasPrefix(s, "goroutine ") && strings.HasSuffix(s, "]:"):
		if err := p.endGoroutine(); err != nil {
			return err
		}
		g, err := parseHeader(s)
		if err != nil {
			return err
		}
		p.out = append(p.out, g)
		p.cur = &p.out[len(p.out)-1]
		p.nframes = 0
		return nil
	}
	if p.cur == nil {
		if p.skipOutside {
			return nil
		}
		return fmt.Errorf("want a goroutine header (\"goroutine 1 [running]:\"), got %q", clip(s))
	}
	switch {
	case strings.HasPrefix(s, "created by "):
		return p.createdBy(s[len("created by "):])
	case strings.HasPrefix(s, "[originating from goroutine ") && strings.HasSuffix(s, "]:"):
		return p.ancestor(s)
	case strings.HasPrefix(s, "...") && strings.HasSuffix(s, "..."):
		return p.elided(s)
	case strings.HasPrefix(s, "non-Go function at pc="):
		pc, err := parseHex(s[len("non-Go function at pc="):])
		if err != nil {
			return fmt.Errorf("bad pc in %q: %w", clip(s), err)
		}
		return p.addFrame(Frame{Function: "non-Go function", PC: pc, NonGo: true})
	case isNote(s):
		p.cur.Notes = append(p.cur.Notes, strings.TrimLeft(s, "\t"))
		return nil
	case strings.HasPrefix(s, "\t") || strings.HasPrefix(s, " "):
		return fmt.Errorf("location line %q without a function line before it", clip(s))
	}
	p.pending = parseFunctionLine(s)
	p.wait = awaitFrame
	return nil
}

// isNote reports whether s is a runtime diagnostic line that may appear
// inside a goroutine's block.
func isNote(s string) bool {
	t := strings.TrimLeft(s, "\t")
	return strings.HasPrefix(t, "runtime: ") || strings.HasPrefix(t, "stack: ") ||
		strings.HasPrefix(t, "goroutine running on other thread") ||
		strings.HasPrefix(t, "0x") && strings.Contains(t, ":  ") // hex dump of a stack
}

// location completes the pending frame or created-by with a location line
// (without its leading tab).
func (p *parser) location(s string) error {
	f := p.pending
	if err := parseLocation(s, &f); err != nil {
		return err
	}
	w := p.wait
	p.wait, p.pending = awaitNothing, Frame{}
	if w == awaitCreatedBy {
		if p.anc != nil {
			p.anc.CreatedBy = &f
		} else {
			p.cur.CreatedBy = &f
		}
		return nil
	}
	return p.addFrame(f)
}

func (p *parser) addFrame(f Frame) error {
	if p.nframes >= MaxFramesPerGoroutine {
		return fmt.Errorf("goroutine %d has more than %d frames", p.cur.ID, MaxFramesPerGoroutine)
	}
	p.nframes++
	if p.anc != nil {
		p.anc.Frames = append(p.anc.Frames, f)
		return nil
	}
	if p.cur.CreatedBy != nil {
		return fmt.Errorf("frame %q after the \"created by\" line of goroutine %d", f.Function, p.cur.ID)
	}
	p.cur.Frames = append(p.cur.Frames, f)
	return nil
}

func (p *parser) createdBy(s string) error {
	if p.anc == nil && p.cur.CreatedBy != nil || p.anc != nil && p.anc.CreatedBy != nil {
		return fmt.Errorf("second \"created by\" line for goroutine %d", p.cur.ID)
	}
	name := s
	if i := strings.LastIndex(s, " in goroutine "); i >= 0 {
		id, err := parseUint(s[i+len(" in goroutine "):])
		if err != nil {
			return fmt.Errorf("bad parent goroutine id in \"created by %s\": %w", clip(s), err)
		}
		if p.anc == nil {
			p.cur.ParentID = id
		}
		name = s[:i]
	}
	if name == "" {
		return fmt.Errorf("\"created by\" line without a function name")
	}
	p.pending = Frame{Function: name}
	p.wait = awaitCreatedBy
	return nil
}

func (p *parser) ancestor(s string) error {
	if len(p.cur.Ancestors) >= MaxAncestors {
		return fmt.Errorf("goroutine %d has more than %d ancestors", p.cur.ID, MaxAncestors)
	}
	id, err := parseUint(strings.TrimSuffix(strings.TrimPrefix(s, "[originating from goroutine "), "]:"))
	if err != nil {
		return fmt.Errorf("bad ancestor goroutine id in %q: %w", clip(s), err)
	}
	p.cur.Ancestors = append(p.cur.Ancestors, Ancestor{ID: id})
	p.anc = &p.cur.Ancestors[len(p.cur.Ancestors)-1]
	return nil
}

func (p *parser) elided(s string) error {
	if s == "...additional frames elided..." {
		if p.anc != nil {
			p.anc.Truncated = true
			return nil
		}
		p.cur.ElidedFrames, p.cur.ElidedAt = -1, len(p.cur.Frames)
		return nil
	}
	num := strings.TrimSuffix(strings.TrimPrefix(s, "..."), " frames elided...")
	n, err := parseUint(num)
	if err != nil || len(num) == len(s)-3 || n > 1<<31 {
		return fmt.Errorf("bad elision line %q (want \"...N frames elided...\")", clip(s))
	}
	if p.anc != nil {
		return fmt.Errorf("%q inside an ancestor traceback", clip(s))
	}
	p.cur.ElidedFrames, p.cur.ElidedAt = int(n), len(p.cur.Frames)
	return nil
}

// endGoroutine closes the current goroutine, if any.
func (p *parser) endGoroutine() error {
	if p.wait != awaitNothing {
		return fmt.Errorf("missing location line after %q", p.pending.Function)
	}
	p.cur, p.anc = nil, nil
	return nil
}

func (p *parser) finish() error {
	if p.wait != awaitNothing {
		return fmt.Errorf("dump ends after %q without its location line (truncated?)", p.pending.Function)
	}
	return nil
}

// clip shortens s for error messages.
func clip(s string) string {
	const max = 120
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

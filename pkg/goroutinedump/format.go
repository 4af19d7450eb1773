package goroutinedump

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Format writes goroutines in the runtime's text format, as
// runtime.Stack(buf, true) and /debug/pprof/goroutine?debug=2 print them:
// Format(Parse(dump)) reproduces a dump byte for byte. Notes are not
// written, labels are written sorted by key (the runtime's order), and
// Extra fields other than "leaked" and "durable" go after the known ones.
func Format(w io.Writer, gs []Goroutine) error {
	var b strings.Builder
	for i := range gs {
		if i > 0 {
			b.WriteByte('\n')
		}
		gs[i].format(&b)
		if b.Len() >= 1<<20 {
			if _, err := io.WriteString(w, b.String()); err != nil {
				return fmt.Errorf("write goroutine dump: %w", err)
			}
			b.Reset()
		}
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write goroutine dump: %w", err)
	}
	return nil
}

// String returns the goroutine in the runtime's text format.
func (g *Goroutine) String() string {
	var b strings.Builder
	g.format(&b)
	return b.String()
}

func (g *Goroutine) format(b *strings.Builder) {
	b.WriteString("goroutine ")
	b.WriteString(strconv.FormatUint(g.ID, 10))
	if g.GAddr != 0 {
		b.WriteString(" gp=" + hex(g.GAddr))
		if g.MID >= 0 {
			b.WriteString(" m=" + strconv.FormatInt(g.MID, 10) + " mp=" + hex(g.MAddr))
		} else {
			b.WriteString(" m=nil")
		}
	}
	b.WriteString(" [")
	b.WriteString(g.Status)
	if has(g.Extra, "leaked") {
		b.WriteString(" (leaked)")
	}
	if g.ScanBit {
		b.WriteString(" (scan)")
	}
	if has(g.Extra, "durable") {
		b.WriteString(" (durable)")
	}
	if g.WaitMinutes > 0 {
		b.WriteString(", " + strconv.Itoa(g.WaitMinutes) + " minutes")
	}
	if g.LockedToThread {
		b.WriteString(", locked to thread")
	}
	if g.SynctestBubble != 0 {
		b.WriteString(", synctest bubble " + strconv.FormatUint(g.SynctestBubble, 10))
	}
	for _, e := range g.Extra {
		if e != "leaked" && e != "durable" {
			b.WriteString(", " + e)
		}
	}
	if len(g.Labels) > 0 {
		keys := make([]string, 0, len(g.Labels))
		for k := range g.Labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteString(" labels:{")
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(runtimeQuote(k) + ": " + runtimeQuote(g.Labels[k]))
		}
		b.WriteString("}")
	}
	b.WriteString("]:\n")
	for i := range g.Frames {
		if g.ElidedFrames != 0 && i == g.ElidedAt {
			writeElision(b, g.ElidedFrames)
		}
		g.Frames[i].format(b)
	}
	if g.ElidedFrames != 0 && g.ElidedAt >= len(g.Frames) {
		writeElision(b, g.ElidedFrames)
	}
	if g.CreatedBy != nil {
		writeCreatedBy(b, g.CreatedBy, g.ParentID)
	}
	for _, a := range g.Ancestors {
		b.WriteString("[originating from goroutine " + strconv.FormatUint(a.ID, 10) + "]:\n")
		for i := range a.Frames {
			a.Frames[i].format(b)
		}
		if a.Truncated {
			b.WriteString("...additional frames elided...\n")
		}
		if a.CreatedBy != nil {
			writeCreatedBy(b, a.CreatedBy, 0)
		}
	}
}

func writeElision(b *strings.Builder, n int) {
	if n < 0 {
		b.WriteString("...additional frames elided...\n")
		return
	}
	b.WriteString("..." + strconv.Itoa(n) + " frames elided...\n")
}

func writeCreatedBy(b *strings.Builder, f *Frame, parent uint64) {
	b.WriteString("created by " + f.Function)
	if parent != 0 {
		b.WriteString(" in goroutine " + strconv.FormatUint(parent, 10))
	}
	b.WriteString("\n")
	f.formatLocation(b)
}

func (f *Frame) format(b *strings.Builder) {
	if f.NonGo && f.File == "" && f.Function == "non-Go function" && f.Args == "" {
		b.WriteString("non-Go function at pc=" + hex(f.PC) + "\n")
		return
	}
	b.WriteString(f.Function)
	if !f.NonGo {
		b.WriteString("(" + f.Args + ")")
	}
	b.WriteString("\n")
	f.formatLocation(b)
}

func (f *Frame) formatLocation(b *strings.Builder) {
	parts := make([]string, 0, 4)
	if f.File != "" {
		parts = append(parts, f.File+":"+strconv.Itoa(f.Line))
	}
	if f.HasPCOffset {
		parts = append(parts, "+"+hex(f.PCOffset))
	}
	switch {
	case f.SP != 0:
		parts = append(parts, "fp="+hex(f.FP), "sp="+hex(f.SP), "pc="+hex(f.PC))
	case f.PC != 0:
		parts = append(parts, "pc="+hex(f.PC))
	}
	b.WriteString("\t" + strings.Join(parts, " ") + "\n")
}

func hex(v uint64) string { return "0x" + strconv.FormatUint(v, 16) }

func has(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// runtimeQuote quotes s the way the runtime's printquoted does: printable
// ASCII as is, \n \r \t \\ \" escaped, other bytes below 127 as \xNN and
// other runes as \uNNNN or \UNNNNNNNN.
func runtimeQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\\', '"':
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			switch {
			case r >= ' ' && r <= '~':
				b.WriteRune(r)
			case r < 127:
				fmt.Fprintf(&b, `\x%02x`, r)
			case r < 0x10000 || r == utf8.RuneError:
				fmt.Fprintf(&b, `\u%04x`, r)
			default:
				fmt.Fprintf(&b, `\U%08x`, r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

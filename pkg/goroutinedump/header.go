package goroutinedump

import (
	"fmt"
	"strconv"
	"strings"
)

// durableWaitReasons are wait reasons whose own text ends in " (durable)"
// (go1.25+ synctest); for any other status a trailing " (durable)" is the
// annotation goroutineheader adds inside a synctest bubble.
var durableWaitReasons = map[string]bool{
	"chan receive":        true,
	"chan send":           true,
	"select":              true,
	"sync.WaitGroup.Wait": true,
}

// parseHeader parses a goroutine header line:
//
//	goroutine 18 [chan receive]:
//	goroutine 1 gp=0xc000002380 m=0 mp=0x5a3ba0 [running]:
//	goroutine 7 gp=0xc000003dc0 m=nil [select (no cases) (scan), 3 minutes, locked to thread]:
//	goroutine 9 [chan receive (durable), synctest bubble 2 labels:{"k": "v"}]:
func parseHeader(s string) (Goroutine, error) {
	g := Goroutine{MID: -1}
	rest := strings.TrimPrefix(s, "goroutine ")
	open := strings.Index(rest, " [")
	if open < 0 {
		return g, fmt.Errorf("goroutine header %q has no \" [status]\"", clip(s))
	}
	fields := strings.Fields(rest[:open])
	if len(fields) == 0 {
		return g, fmt.Errorf("goroutine header %q has no id", clip(s))
	}
	id, err := parseUint(fields[0])
	if err != nil {
		return g, fmt.Errorf("bad id in goroutine header %q: %w", clip(s), err)
	}
	g.ID = id
	for _, f := range fields[1:] {
		if err := g.headerField(f); err != nil {
			return g, fmt.Errorf("goroutine header %q: %w", clip(s), err)
		}
	}
	if err := g.bracket(rest[open+2 : len(rest)-len("]:")]); err != nil {
		return g, fmt.Errorf("goroutine header %q: %w", clip(s), err)
	}
	return g, nil
}

// headerField parses one of " gp=0x.. m=N mp=0x.." / " m=nil".
func (g *Goroutine) headerField(f string) error {
	k, v, ok := strings.Cut(f, "=")
	if !ok {
		return fmt.Errorf("unexpected field %q before the status", f)
	}
	var err error
	switch k {
	case "gp":
		g.GAddr, err = parseHex(v)
	case "mp":
		g.MAddr, err = parseHex(v)
	case "m":
		if v == "nil" {
			g.MID = -1
			return nil
		}
		g.MID, err = strconv.ParseInt(v, 10, 64)
	default:
		return fmt.Errorf("unexpected field %q before the status", f)
	}
	if err != nil {
		return fmt.Errorf("bad %s= value %q", k, v)
	}
	return nil
}

// bracket parses the text between "[" and "]:" of a header.
func (g *Goroutine) bracket(s string) error {
	if i := strings.Index(s, " labels:{"); i >= 0 {
		labels, err := parseLabels(s[i+len(" labels:"):])
		if err != nil {
			return err
		}
		g.Labels = labels
		s = s[:i]
	}
	parts := strings.Split(s, ", ")
	if err := g.status(parts[0]); err != nil {
		return err
	}
	for _, f := range parts[1:] {
		switch {
		case f == "locked to thread":
			g.LockedToThread = true
		case strings.HasSuffix(f, " minutes"):
			n, err := strconv.Atoi(strings.TrimSuffix(f, " minutes"))
			if err != nil || n < 0 {
				return fmt.Errorf("bad wait time %q", f)
			}
			g.WaitMinutes = n
		case strings.HasPrefix(f, "synctest bubble "):
			n, err := parseUint(strings.TrimPrefix(f, "synctest bubble "))
			if err != nil {
				return fmt.Errorf("bad synctest bubble %q", f)
			}
			g.SynctestBubble = n
		default:
			g.Extra = append(g.Extra, f)
		}
	}
	return nil
}

// status splits the first bracket field into the status and the
// annotations goroutineheader appends to it, in print order:
// " (leaked)" (go1.26), " (scan)", " (durable)" (go1.25+).
func (g *Goroutine) status(s string) error {
	if base, ok := strings.CutSuffix(s, " (durable)"); ok && !durableWaitReasons[base] {
		g.Extra = append(g.Extra, "durable")
		s = base
	}
	if base, ok := strings.CutSuffix(s, " (scan)"); ok {
		g.ScanBit = true
		s = base
	}
	if base, ok := strings.CutSuffix(s, " (leaked)"); ok {
		g.Extra = append(g.Extra, "leaked")
		s = base
	}
	if s == "" {
		return fmt.Errorf("empty status")
	}
	g.Status = s
	return nil
}

// parseLabels parses `{"k": "v", "k2": "v2"}` as printed by go1.26 with
// GODEBUG=tracebacklabels=1 (keys and values are Go-quoted strings).
func parseLabels(s string) (map[string]string, error) {
	if !strings.HasPrefix(s, "{") || !strings.HasSuffix(s, "}") {
		return nil, fmt.Errorf("bad labels %q (want {\"key\": \"value\", ...})", clip(s))
	}
	body := s[1 : len(s)-1]
	labels := map[string]string{}
	for body != "" {
		k, rest, err := cutQuoted(body)
		if err != nil {
			return nil, fmt.Errorf("bad label key in %q: %w", clip(s), err)
		}
		rest, ok := strings.CutPrefix(rest, ": ")
		if !ok {
			return nil, fmt.Errorf("bad labels %q: want \": \" after key %q", clip(s), k)
		}
		v, rest, err := cutQuoted(rest)
		if err != nil {
			return nil, fmt.Errorf("bad label value in %q: %w", clip(s), err)
		}
		labels[k] = v
		if rest == "" {
			break
		}
		if body, ok = strings.CutPrefix(rest, ", "); !ok {
			return nil, fmt.Errorf("bad labels %q: want \", \" after value %q", clip(s), v)
		}
	}
	return labels, nil
}

// cutQuoted unquotes the Go string literal at the start of s and returns
// it and the rest of s.
func cutQuoted(s string) (string, string, error) {
	if !strings.HasPrefix(s, `"`) {
		return "", "", fmt.Errorf("want a quoted string at %q", clip(s))
	}
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			v, err := strconv.Unquote(s[:i+1])
			if err != nil {
				return "", "", fmt.Errorf("unquote %q: %w", clip(s[:i+1]), err)
			}
			return v, s[i+1:], nil
		}
	}
	return "", "", fmt.Errorf("unterminated string at %q", clip(s))
}

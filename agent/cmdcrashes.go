package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/goroscope/goroscope/agent/ui"
	"github.com/goroscope/goroscope/pkg/crash"
	"github.com/goroscope/goroscope/pkg/label"
)

// crashesTimeout bounds the request to the agent.
const crashesTimeout = 30 * time.Second

// cmdCrashes lists the crash records a running agent stored (GET
// /api/crashes): why each watched process died, its class and hint, and
// its last snapshot's age; --format json prints the records.
func cmdCrashes(ctx context.Context, args []string, stdout io.Writer, _ *slog.Logger) error {
	fs := flag.NewFlagSet("crashes", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	agent := fs.String("agent", "http://127.0.0.1:7070", "the running agent's UI address (its --listen)")
	service := fs.String("service", "", "only this service's crashes")
	format := fs.String("format", "text", "text or json")
	stacks := fs.Bool("stacks", false, "after the table, each crash's message, hint and stacks, as the runtime printed them")
	if err := fs.Parse(args); err != nil {
		return parseError("crashes", fs, err)
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("crashes: unexpected arguments %q", fs.Args())}
	}
	if *format != "text" && *format != "json" {
		return usageError{fmt.Sprintf("crashes: --format %q: want text or json", *format)}
	}
	base, err := url.Parse(*agent)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return usageError{fmt.Sprintf("crashes: --agent %q: want the agent's address, like http://127.0.0.1:7070", *agent)}
	}
	u := base.JoinPath("api", "crashes")
	if *service != "" {
		u.RawQuery = url.Values{"service": {*service}}.Encode()
	}
	ctx, cancel := context.WithTimeout(ctx, crashesTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("crashes: ask the agent at %s: %w (is `goroscope agent` running there? --agent names another address)", base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("crashes: read the agent's answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("crashes: the agent at %s answered %s: %s", base, resp.Status, strings.TrimSpace(string(body)))
	}
	var ans ui.CrashesAnswer
	if err := json.Unmarshal(body, &ans); err != nil {
		return fmt.Errorf("crashes: the agent at %s answered something else than crash records: %w", base, err)
	}
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(ans.Crashes)
	}
	if len(ans.Crashes) == 0 {
		fmt.Fprintln(stdout, "no crashes stored")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tSERVICE\tPID\tENDED\tCLASS\tLAST SNAPSHOT\tMESSAGE")
	for _, c := range ans.Crashes {
		ended := fmt.Sprintf("%s %d", c.Reason, c.Code)
		if c.Signal != "" {
			ended = c.Reason + " " + c.Signal
		}
		last := "-"
		if !c.LastSnapshot.IsZero() {
			last = fmt.Sprintf("%.1fs before", c.LastSnapshotAge)
		}
		msg := c.Message
		if msg == "" {
			msg = c.Hint
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", c.Time.Local().Format("2006-01-02 15:04:05 MST"), printable(c.ServiceName), c.PID,
			ended, c.Name, last, printable(strings.SplitN(msg, "\n", 2)[0]))
	}
	if err := tw.Flush(); err != nil || !*stacks {
		return err
	}
	for _, c := range ans.Crashes {
		printCrash(stdout, c)
	}
	return nil
}

// printCrash prints one crash record's message, hint and stacks, the
// panicking goroutine's under "goroutine N" as the runtime's traceback
// does, every line made printable.
func printCrash(w io.Writer, c crash.Record) {
	fmt.Fprintf(w, "\n%s pid %d (%s), %s: %s\n", c.Time.Local().Format("2006-01-02 15:04:05 MST"), c.PID, printable(c.ServiceName), c.Name, printable(c.Hint))
	for _, l := range strings.Split(c.Message, "\n") {
		if l != "" {
			fmt.Fprintln(w, printable(l))
		}
	}
	if len(c.SystemStack) > 0 {
		fmt.Fprintln(w, "\nruntime stack:")
		for _, f := range c.SystemStack {
			fmt.Fprintln(w, "\t"+printable(f))
		}
	}
	switch {
	case len(c.Stack) > 0 && c.GoID != 0:
		fmt.Fprintf(w, "\ngoroutine %d:\n", c.GoID)
	case len(c.Stack) > 0:
		fmt.Fprintln(w, "\nstack:")
	default:
		fmt.Fprintln(w, "(no stack seen: the fatal-path probe was not on the process)")
	}
	for _, f := range c.Stack {
		fmt.Fprintln(w, "\t"+printable(f))
	}
}

// printable makes target-chosen text safe for a terminal line.
func printable(s string) string {
	out, _ := label.Printable(s, 200)
	return out
}

package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/goroscope/goroscope/agent/daemon"
	"github.com/goroscope/goroscope/push/endpoint"
)

// cmdAgent runs the daemon: flags for the common settings over the YAML
// file for everything.
func cmdAgent(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfgPath := fs.String("config", "", "YAML config file (see configs/goroscope.yaml)")
	def := daemon.DefaultConfig()
	listen := fs.String("listen", "", "address of the web UI, /metrics, /healthz and /debug/pprof (default "+def.Listen+")")
	dataDir := fs.String("data-dir", "", "directory of the local store (default "+def.DataDir+")")
	var interval, discoveryInterval daemon.Duration
	fs.Var(&interval, "snapshot-interval", "time between snapshots of each process (default "+def.SnapshotInterval.String()+")")
	fs.Var(&discoveryInterval, "discovery-interval", "time between scans for Go processes (default "+def.DiscoveryInterval.String()+")")
	walker := fs.String("walker", "", "goroutine walker: auto, ebpf or procmem (default auto)")
	cpuFreq := fs.Int("cpu-frequency", 0, fmt.Sprintf("eBPF CPU sampling rate in Hz, 19 to 999; 0 turns it off (default %d)", def.CPUFrequency))
	logFormat := fs.String("log-format", "", "log format: text or json (default text)")
	logLevel := fs.String("log-level", "", "log level: debug, info, warn or error (default info)")
	var rwURLs, pyURLs urlList
	fs.Var(&rwURLs, "remote-write-url", "Prometheus remote-write endpoint for the series (repeatable; more options in the config file)")
	fs.Var(&pyURLs, "pyroscope-url", "Pyroscope server for the profiles (repeatable; more options in the config file)")
	if err := fs.Parse(args); err != nil {
		return parseError("agent", fs, err)
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("agent: unexpected arguments %q", fs.Args())}
	}
	cfg := def
	if *cfgPath != "" {
		var err error
		if cfg, err = daemon.LoadConfig(*cfgPath, def); err != nil {
			return err
		}
	}
	// Flags given on the command line win over the file.
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for name, apply := range map[string]func(){
		"listen":             func() { cfg.Listen = *listen },
		"data-dir":           func() { cfg.DataDir = *dataDir },
		"snapshot-interval":  func() { cfg.SnapshotInterval = interval },
		"discovery-interval": func() { cfg.DiscoveryInterval = discoveryInterval },
		"walker":             func() { cfg.Walker = *walker },
		"cpu-frequency":      func() { cfg.CPUFrequency = *cpuFreq },
		"log-format":         func() { cfg.Log.Format = *logFormat },
		"log-level":          func() { cfg.Log.Level = *logLevel },
	} {
		if set[name] {
			apply()
		}
	}
	for _, u := range rwURLs {
		cfg.RemoteWrite = append(cfg.RemoteWrite, daemon.EndpointConfig{Config: endpoint.Config{URL: u}})
	}
	for _, u := range pyURLs {
		cfg.Pyroscope = append(cfg.Pyroscope, daemon.EndpointConfig{Config: endpoint.Config{URL: u}})
	}
	if err := cfg.Validate(); err != nil {
		return usageError{"agent: " + err.Error()}
	}
	log := newLogger(cfg.Log, stderr)
	limit, source, err := daemon.SetMemoryLimit(cfg.Limits, log)
	if err != nil {
		return usageError{"agent: " + err.Error()}
	}
	log.Info("memory limit", "soft_limit_bytes", limit, "source", source)
	a, err := daemon.New(cfg, log, version)
	if err != nil {
		return err
	}
	start := time.Now()
	err = a.Run(ctx)
	log.Info("goroscope agent stopped", "uptime", time.Since(start).Round(time.Millisecond).String())
	return err
}

// newLogger is the daemon's logger as c sets it, writing to w.
func newLogger(c daemon.LogConfig, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// urlList is a repeatable URL flag.
type urlList []string

func (u *urlList) String() string     { return fmt.Sprint(*u) }
func (u *urlList) Set(s string) error { *u = append(*u, s); return nil }

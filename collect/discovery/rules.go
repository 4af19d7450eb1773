package discovery

import (
	"fmt"
	"regexp"
	"strings"
)

// Match selects processes by regular expressions on their executable path,
// command line (arguments joined by spaces) and service name. Empty fields
// match everything; all set fields must match.
type Match struct {
	Exe         string `yaml:"exe"`
	Cmdline     string `yaml:"cmdline"`
	ServiceName string `yaml:"service_name"`

	exe, cmdline, service *regexp.Regexp
}

// ServiceRule names the processes a Match selects.
type ServiceRule struct {
	Match       Match  `yaml:"match"`
	ServiceName string `yaml:"service_name"`
}

// Rules decide which Go processes are watched and what they are called.
type Rules struct {
	// Include, when not empty, watches only processes matching one of them.
	Include []Match `yaml:"include"`
	// Exclude drops processes matching any of them.
	Exclude []Match `yaml:"exclude"`
	// Services names processes; the first matching rule wins.
	Services []ServiceRule `yaml:"service_names"`
	// MinGoroutines skips processes with fewer goroutines.
	MinGoroutines int `yaml:"min_goroutines"`
}

// Compile checks and compiles the rules' expressions; errors name the rule.
func (r *Rules) Compile() error {
	for i := range r.Include {
		if err := r.Include[i].compile(); err != nil {
			return fmt.Errorf("include[%d]: %w", i, err)
		}
	}
	for i := range r.Exclude {
		if err := r.Exclude[i].compile(); err != nil {
			return fmt.Errorf("exclude[%d]: %w", i, err)
		}
	}
	for i := range r.Services {
		if n := r.Services[i].ServiceName; n == "" {
			return fmt.Errorf("service_names[%d]: service_name is empty", i)
		} else if !ValidServiceName(n) {
			return fmt.Errorf("service_names[%d]: service_name %.64q (%d bytes): want 1 to %d bytes of [A-Za-z0-9._/-]", i, n, len(n), MaxNameBytes)
		}
		if r.Services[i].Match.ServiceName != "" {
			return fmt.Errorf("service_names[%d]: match.service_name cannot be used to name a service", i)
		}
		if err := r.Services[i].Match.compile(); err != nil {
			return fmt.Errorf("service_names[%d]: %w", i, err)
		}
	}
	if r.MinGoroutines < 0 {
		return fmt.Errorf("min_goroutines is %d: want 0 or more", r.MinGoroutines)
	}
	return nil
}

func (m *Match) compile() error {
	var err error
	for _, f := range []struct {
		name string
		src  string
		dst  **regexp.Regexp
	}{{"exe", m.Exe, &m.exe}, {"cmdline", m.Cmdline, &m.cmdline}, {"service_name", m.ServiceName, &m.service}} {
		if f.src == "" {
			continue
		}
		if *f.dst, err = regexp.Compile(f.src); err != nil {
			return fmt.Errorf("%s: bad regular expression %q: %w", f.name, f.src, err)
		}
	}
	return nil
}

func (m *Match) matches(p *Process) bool {
	if m.exe != nil && !m.exe.MatchString(p.Exe) {
		return false
	}
	if m.cmdline != nil && !m.cmdline.MatchString(strings.Join(p.Cmdline, " ")) {
		return false
	}
	if m.service != nil && !m.service.MatchString(p.ServiceName) {
		return false
	}
	return true
}

// ServiceName returns the name the first matching service rule gives p, or "".
func (r *Rules) ServiceName(p *Process) string {
	if r == nil {
		return ""
	}
	for i := range r.Services {
		if r.Services[i].Match.matches(p) {
			return r.Services[i].ServiceName
		}
	}
	return ""
}

// Watched reports whether the include and exclude rules keep p.
func (r *Rules) Watched(p *Process) bool {
	if r == nil {
		return true
	}
	if len(r.Include) > 0 {
		ok := false
		for i := range r.Include {
			if r.Include[i].matches(p) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for i := range r.Exclude {
		if r.Exclude[i].matches(p) {
			return false
		}
	}
	return true
}

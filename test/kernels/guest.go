package kernels

import "time"

// GuestConfig is /guest.json in the initramfs: what the guest's /init runs.
type GuestConfig struct {
	Program string        `json:"program"`
	Args    []string      `json:"args"`
	Env     []string      `json:"env"`
	Dir     string        `json:"dir"`
	Output  string        `json:"output"`  // a serial port, e.g. /dev/ttyS1
	Timeout time.Duration `json:"timeout"` // the program is killed after it
}

// GuestMarker starts every line the guest's /init writes itself:
//
//	goroscope-guest: kernel RELEASE
//	goroscope-guest: error: ...
//	goroscope-guest: exit CODE after SECONDSs
const GuestMarker = "goroscope-guest:"

package process

// DropPidfd closes t's pidfd, so that Alive falls back to /proc as on
// kernels without pidfd_open (before 5.3).
func (t *Target) DropPidfd() {
	if t.hasPidfd {
		closeFd(t.pidfd)
		t.hasPidfd = false
	}
}

package rtstate

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// procStat reads the thread count of a process from /proc/PID/stat (num_threads; half the
// cost of /proc/PID/status), kept open between reads: one pread each. The open file names
// the process it was opened for, not a later one that reuses the pid: once that exits, reads
// fail.
type procStat struct {
	f   *os.File
	buf []byte
}

// openStat opens /proc/PID/stat; a failure shows as Threads -1.
func openStat(pid int) *procStat {
	f, err := os.Open(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return &procStat{}
	}
	return &procStat{f: f, buf: make([]byte, 4096)}
}

// threads returns the process's thread count, or -1.
func (s *procStat) threads() int {
	if s.f == nil {
		return -1
	}
	n, _ := s.f.ReadAt(s.buf, 0) // io.EOF at the end of the file
	return parseThreads(s.buf[:n])
}

// parseThreads finds num_threads, field 20, in the text of /proc/PID/stat; -1 if absent. The
// command name, field 2, may hold spaces and parentheses: fields start after the last ')'.
func parseThreads(b []byte) int {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return -1
	}
	b = b[i+1:]
	for field := 3; ; field++ { // b starts with the space before field 3, the state
		b = bytes.TrimLeft(b, " ")
		end := bytes.IndexAny(b, " \n")
		if end < 0 {
			end = len(b)
		}
		if end == 0 {
			return -1
		}
		if field == 20 {
			n, err := strconv.Atoi(string(b[:end])) // no allocation: the conversion does not escape
			if err != nil || n < 0 {
				return -1
			}
			return n
		}
		b = b[end:]
	}
}

func (s *procStat) close() error {
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}

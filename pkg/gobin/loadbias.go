package gobin

import (
	"bufio"
	"debug/elf"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// maxMapsLines bounds the lines read from /proc/PID/maps.
const maxMapsLines = 1 << 20

// LoadBias returns the difference between run-time and link-time addresses of the executable in
// process pid (0 for non-PIE), from /proc/PID/maps: the mapping of the executable's file is matched
// by inode (or path) and compared with the PT_LOAD program header covering its file offset.
func (b *Binary) LoadBias(pid int) (uint64, error) {
	ino := b.ino
	// Path fallback (e.g. overlayfs, where maps may show another inode): the process's own exe
	// link if that is this file, else the path this Binary was opened by.
	target := strings.TrimSuffix(b.name, " (deleted)")
	exe := "/proc/" + strconv.Itoa(pid) + "/exe"
	if st, err := os.Stat(exe); err == nil {
		if sys, ok := st.Sys().(*syscall.Stat_t); ok && sys.Ino == b.ino {
			if t, err := os.Readlink(exe); err == nil {
				target = strings.TrimSuffix(t, " (deleted)")
			}
		}
	}
	mf, err := os.Open("/proc/" + strconv.Itoa(pid) + "/maps")
	if err != nil {
		return 0, fmt.Errorf("load bias of %s in process %d: %w", b.name, pid, err)
	}
	defer mf.Close()
	type mapping struct{ start, off uint64 }
	var byIno, byPath []mapping
	sc := bufio.NewScanner(mf)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for lines := 0; sc.Scan() && lines < maxMapsLines; lines++ {
		// start-end perms offset dev inode path
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		rng, perms := fields[0], fields[1]
		if !strings.Contains(perms, "r") {
			continue
		}
		dash := strings.IndexByte(rng, '-')
		if dash < 0 {
			continue
		}
		start, err1 := strconv.ParseUint(rng[:dash], 16, 64)
		off, err2 := strconv.ParseUint(fields[2], 16, 64)
		mino, err3 := strconv.ParseUint(fields[4], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil || mino == 0 {
			continue
		}
		m := mapping{start, off}
		if ino != 0 && mino == ino {
			byIno = append(byIno, m)
		}
		if len(fields) >= 6 && target != "" && strings.TrimSuffix(strings.Join(fields[5:], " "), " (deleted)") == target {
			byPath = append(byPath, m)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("load bias of %s: read /proc/%d/maps: %w", b.name, pid, err)
	}
	maps := byIno
	if len(maps) == 0 {
		maps = byPath
	}
	if len(maps) == 0 {
		return 0, fmt.Errorf("load bias of %s: no mapping of the executable in /proc/%d/maps (process exited?)", b.name, pid)
	}
	// The mapping with the lowest file offset is the first PT_LOAD (offset 0 for Go binaries).
	best := maps[0]
	for _, m := range maps[1:] {
		if m.off < best.off {
			best = m
		}
	}
	for _, p := range b.elf.Progs {
		if p.Type != elf.PT_LOAD {
			continue
		}
		pageOff := p.Off &^ 0xfff
		if best.off < pageOff || best.off >= p.Off+p.Filesz {
			continue
		}
		// run-time address of file offset x is start + (x - best.off); link-time is p.Vaddr + (x - p.Off).
		return best.start - best.off - (p.Vaddr - p.Off), nil
	}
	return 0, fmt.Errorf("load bias of %s: mapping at file offset %#x matches no PT_LOAD segment", b.name, best.off)
}

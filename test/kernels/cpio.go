package kernels

import (
	"bufio"
	"fmt"
	"io"
	"path"
	"strings"
)

// CPIO writes an initramfs: a cpio archive in the "newc" format (ASCII
// headers, 4-byte alignment) that the kernel unpacks into its rootfs.
// Entries are written in order, so a directory must come before its files.
type CPIO struct {
	w     *bufio.Writer
	ino   uint32
	names map[string]bool
	err   error
}

// File modes for CPIO.Add.
const (
	ModeDir     = 0o040000
	ModeFile    = 0o100000
	ModeSymlink = 0o120000
	ModeChar    = 0o020000
)

// NewCPIO starts an archive on w.
func NewCPIO(w io.Writer) *CPIO {
	return &CPIO{w: bufio.NewWriterSize(w, 1<<20), names: make(map[string]bool)}
}

// Dir adds directories, each with mode 0755.
func (c *CPIO) Dir(names ...string) error {
	for _, name := range names {
		if err := c.Add(name, ModeDir|0o755, 0, 0, nil, 0); err != nil {
			return err
		}
	}
	return nil
}

// File adds a regular file with permissions perm and the content of r
// (exactly size bytes).
func (c *CPIO) File(name string, perm uint32, r io.Reader, size int64) error {
	return c.Add(name, ModeFile|perm&0o7777, 0, 0, r, size)
}

// Symlink adds a symbolic link name -> target.
func (c *CPIO) Symlink(name, target string) error {
	return c.Add(name, ModeSymlink|0o777, 0, 0, strings.NewReader(target), int64(len(target)))
}

// CharDev adds a character device node.
func (c *CPIO) CharDev(name string, perm, major, minor uint32) error {
	return c.Add(name, ModeChar|perm&0o7777, major, minor, nil, 0)
}

// Add writes one entry: mode is a Mode* type or'ed with permissions, major
// and minor are the device numbers of a device node, r gives size bytes of
// content (nil for none). name is a relative path ("init", "bin/true"); a
// leading slash is dropped.
func (c *CPIO) Add(name string, mode, major, minor uint32, r io.Reader, size int64) error {
	if c.err != nil {
		return c.err
	}
	name = strings.TrimPrefix(path.Clean("/"+name), "/")
	switch {
	case name == "" || name == "TRAILER!!!":
		return fmt.Errorf("cpio: invalid entry name %q", name)
	case c.names[name]:
		return fmt.Errorf("cpio: %s added twice", name)
	case size < 0 || size > 1<<32-1:
		return fmt.Errorf("cpio: %s: size %d does not fit a newc header", name, size)
	case r == nil && size != 0:
		return fmt.Errorf("cpio: %s: size %d without content", name, size)
	}
	if dir := path.Dir(name); dir != "." && !c.names[dir] {
		return fmt.Errorf("cpio: %s added before its directory %s", name, dir)
	}
	c.names[name] = true
	c.ino++
	if err := c.header(name, mode, major, minor, size); err != nil {
		return err
	}
	if r != nil {
		n, err := io.CopyN(c.w, r, size)
		if err != nil {
			return c.fail(fmt.Errorf("cpio: %s: %d of %d bytes: %w", name, n, size, err))
		}
	}
	return c.pad(size)
}

// Close writes the trailer and flushes; it does not close the writer.
func (c *CPIO) Close() error {
	if c.err != nil {
		return c.err
	}
	c.ino++
	if err := c.header("TRAILER!!!", 0, 0, 0, 0); err != nil {
		return err
	}
	if err := c.w.Flush(); err != nil {
		return c.fail(err)
	}
	return nil
}

func (c *CPIO) header(name string, mode, major, minor uint32, size int64) error {
	nlink := 1
	if mode&0o170000 == ModeDir {
		nlink = 2
	}
	// magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor,
	// devminor, rdevmajor, rdevminor, namesize (with its NUL), check.
	_, err := fmt.Fprintf(c.w, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%s\x00",
		c.ino, mode, 0, 0, nlink, 0, size, 0, 0, major, minor, len(name)+1, 0, name)
	if err != nil {
		return c.fail(err)
	}
	return c.pad(int64(110 + len(name) + 1))
}

// pad aligns the archive to 4 bytes after n bytes of header or data.
func (c *CPIO) pad(n int64) error {
	if k := (4 - n%4) % 4; k > 0 {
		if _, err := c.w.Write(make([]byte, k)); err != nil {
			return c.fail(err)
		}
	}
	return nil
}

func (c *CPIO) fail(err error) error {
	c.err = err
	return err
}

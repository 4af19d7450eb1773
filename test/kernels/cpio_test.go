package kernels

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// cpioEntry is one entry read back from a newc archive.
type cpioEntry struct {
	name               string
	mode, major, minor uint32
	data               string
}

// readCPIO parses a newc archive up to its trailer.
func readCPIO(b []byte) ([]cpioEntry, error) {
	var out []cpioEntry
	align := func(n int) int { return (n + 3) &^ 3 }
	for off := 0; off < len(b); {
		if len(b)-off < 110 || string(b[off:off+6]) != "070701" {
			return nil, fmt.Errorf("offset %d: no newc header", off)
		}
		field := func(i int) uint32 {
			v, _ := strconv.ParseUint(string(b[off+6+8*i:off+14+8*i]), 16, 32)
			return uint32(v)
		}
		size, nameSize := int(field(6)), int(field(11))
		nameEnd := off + 110 + nameSize
		if nameSize == 0 || nameEnd > len(b) || b[nameEnd-1] != 0 {
			return nil, fmt.Errorf("offset %d: bad name size %d", off, nameSize)
		}
		name := string(b[off+110 : nameEnd-1])
		data := align(nameEnd)
		if data+size > len(b) {
			return nil, fmt.Errorf("%s: %d bytes past the end", name, size)
		}
		if name == "TRAILER!!!" {
			if align(data+size) != len(b) {
				return nil, fmt.Errorf("%d bytes after the trailer", len(b)-align(data+size))
			}
			return out, nil
		}
		out = append(out, cpioEntry{name, field(1), field(9), field(10), string(b[data : data+size])})
		off = align(data + size)
	}
	return nil, fmt.Errorf("no trailer")
}

func TestCPIO(t *testing.T) {
	var buf bytes.Buffer
	c := NewCPIO(&buf)
	for _, err := range []error{
		c.Dir("bin", "dev"),
		c.CharDev("/dev/console", 0o600, 5, 1),
		c.File("init", 0o755, strings.NewReader("hello"), 5),
		c.File("bin/empty", 0o644, nil, 0),
		c.Symlink("bin/true", "/init"),
		c.File("bin/four", 0o644, strings.NewReader("1234"), 4),
		c.Close(),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	got, err := readCPIO(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	want := []cpioEntry{
		{"bin", ModeDir | 0o755, 0, 0, ""},
		{"dev", ModeDir | 0o755, 0, 0, ""},
		{"dev/console", ModeChar | 0o600, 5, 1, ""},
		{"init", ModeFile | 0o755, 0, 0, "hello"},
		{"bin/empty", ModeFile | 0o644, 0, 0, ""},
		{"bin/true", ModeSymlink | 0o777, 0, 0, "/init"},
		{"bin/four", ModeFile | 0o644, 0, 0, "1234"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("read back\n%v\nwant\n%v", got, want)
	}
}

func TestCPIOErrors(t *testing.T) {
	tests := []struct {
		name    string
		add     func(c *CPIO) error
		wantSub string
	}{
		{"no directory", func(c *CPIO) error { return c.File("bin/x", 0o644, nil, 0) }, "before its directory bin"},
		{"twice", func(c *CPIO) error {
			if err := c.Dir("bin"); err != nil {
				return err
			}
			return c.Dir("bin")
		}, "added twice"},
		{"empty name", func(c *CPIO) error { return c.Dir("/") }, "invalid entry name"},
		{"trailer name", func(c *CPIO) error { return c.Dir("TRAILER!!!") }, "invalid entry name"},
		{"short content", func(c *CPIO) error { return c.File("x", 0o644, strings.NewReader("ab"), 3) }, "2 of 3 bytes"},
		{"size without content", func(c *CPIO) error { return c.File("x", 0o644, nil, 3) }, "without content"},
		{"too big", func(c *CPIO) error { return c.File("x", 0o644, strings.NewReader(""), 1<<32) }, "does not fit"},
		{"write error", func(c *CPIO) error {
			if err := c.File("x", 0o644, strings.NewReader("a"), 1); err != nil {
				return err
			}
			return c.Close()
		}, "disk full"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.add(NewCPIO(failWriter{}))
			if err == nil || !strings.Contains(err.Error(), tt.wantSub) {
				t.Errorf("error %v, want one mentioning %q", err, tt.wantSub)
			}
		})
	}
}

// failWriter fails every write: only a flush reaches it.
type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

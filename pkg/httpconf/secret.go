package httpconf

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// maxSecretBytes bounds a password or token file.
const maxSecretBytes = 64 << 10

// secret is an inline value or a file's content, re-read when the file's
// size, modification time or identity (inode) changes. Surrounding whitespace is trimmed.
type secret struct {
	inline string
	path   string

	mu    sync.Mutex
	value string
	size  int64
	mtime time.Time
	info  os.FileInfo // for os.SameFile: a rotated (renamed-over) file is re-read
	read  bool
}

func newSecret(inline, path string) *secret {
	return &secret{inline: inline, path: path}
}

// get returns the current value, re-reading the file if it changed.
func (s *secret) get() (string, error) {
	if s.path == "" {
		return s.inline, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fi, err := os.Stat(s.path)
	if err != nil {
		return "", fmt.Errorf("%w; the secret file must stay readable", err)
	}
	if s.read && fi.Size() == s.size && fi.ModTime().Equal(s.mtime) && os.SameFile(fi, s.info) {
		return s.value, nil
	}
	if fi.Size() > maxSecretBytes {
		return "", fmt.Errorf("%s is %d bytes, more than %d; point it at the secret alone", s.path, fi.Size(), maxSecretBytes)
	}
	b, err := os.ReadFile(s.path)
	if err != nil {
		return "", fmt.Errorf("%w; the secret file must stay readable", err)
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", fmt.Errorf("%s is empty; write the secret into it", s.path)
	}
	s.value, s.size, s.mtime, s.info, s.read = v, fi.Size(), fi.ModTime(), fi, true
	return v, nil
}

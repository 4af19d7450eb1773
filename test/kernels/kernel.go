package kernels

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// Kernel is one kernel of the matrix: the newest Debian package whose name
// matches Package. Point releases replace the packages now and then, so
// they are picked by pattern, not by version.
type Kernel struct {
	Name    string // "6.1"
	Package *regexp.Regexp
}

// Matrix returns the kernels the matrix boots: Debian 12's own 6.1 and the
// 6.12 it carries in bookworm-security and bookworm-backports.
func Matrix() []Kernel {
	return []Kernel{
		{"6.1", regexp.MustCompile(`^linux-image-6\.1\.0-\d+-cloud-amd64$`)},
		{"6.12", regexp.MustCompile(`^linux-image-6\.12\.\d+\+(deb12|bpo)[.\d]*-cloud-amd64$`)},
	}
}

// ErrMissing wraps errors about something the matrix needs that this
// machine lacks (qemu, apt, a kernel package): outside CI the test skips.
var ErrMissing = errors.New("missing on this machine")

// CacheDir is where kernels are kept: $GOROSCOPE_KERNEL_CACHE, else
// goroscope/kernels under the user cache directory ($XDG_CACHE_HOME or
// ~/.cache).
func CacheDir() (string, error) {
	if d := os.Getenv("GOROSCOPE_KERNEL_CACHE"); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("kernel cache: %w (set GOROSCOPE_KERNEL_CACHE)", err)
	}
	return filepath.Join(d, "goroscope", "kernels"), nil
}

// Fetcher finds kernels in its cache directory, or downloads them there
// with apt-get download and unpacks them with dpkg-deb. The cache holds
// debs/PACKAGE_VERSION_amd64.deb and PACKAGE/{vmlinuz,config,version}; a
// cached kernel is used as long as it is there: delete its PACKAGE
// directory to fetch the newest one.
type Fetcher struct {
	Dir string
	Log func(format string, args ...any)

	updated bool // apt-get update ran
}

// Image is a fetched kernel.
type Image struct {
	Vmlinuz string // its path in the cache
	Package string // linux-image-6.1.0-57-cloud-amd64
	Version string // of the package: 6.1.192-3
}

// Fetch returns k's kernel image from the cache, downloading it first if
// the cache has none.
func (f *Fetcher) Fetch(ctx context.Context, k Kernel) (Image, error) {
	if pkg, ok := newest(f.cached(), k.Package); ok {
		return f.image(pkg)
	}
	for _, tool := range []string{"apt-cache", "apt-get", "dpkg-deb"} {
		if _, err := exec.LookPath(tool); err != nil {
			return Image{}, fmt.Errorf("kernel %s is not in %s and %s is not installed (a Debian host has it): %w", k.Name, f.Dir, tool, ErrMissing)
		}
	}
	pkg, err := f.pick(ctx, k)
	if err != nil {
		return Image{}, err
	}
	deb, err := f.download(ctx, pkg)
	if err != nil && !f.updated {
		// The lists may name a build the archive has since replaced.
		f.Log("apt-get download %s: %v; updating the package lists", pkg, err)
		if err := f.update(ctx); err != nil {
			return Image{}, err
		}
		if pkg, err = f.pick(ctx, k); err != nil {
			return Image{}, err
		}
		deb, err = f.download(ctx, pkg)
	}
	if err != nil {
		return Image{}, fmt.Errorf("kernel %s: %w (%w)", k.Name, err, ErrMissing)
	}
	if err := f.extract(ctx, deb, pkg); err != nil {
		return Image{}, err
	}
	return f.image(pkg)
}

func (f *Fetcher) image(pkg string) (Image, error) {
	v, err := os.ReadFile(filepath.Join(f.Dir, pkg, "version"))
	if err != nil {
		return Image{}, fmt.Errorf("kernel cache: %w (delete %s to fetch it anew)", err, filepath.Join(f.Dir, pkg))
	}
	return Image{Vmlinuz: filepath.Join(f.Dir, pkg, "vmlinuz"), Package: pkg, Version: strings.TrimSpace(string(v))}, nil
}

// cached lists the packages unpacked in the cache.
func (f *Fetcher) cached() []string {
	var names []string
	entries, _ := os.ReadDir(f.Dir) // a missing cache is an empty one
	for _, e := range entries {
		if _, err := os.Stat(filepath.Join(f.Dir, e.Name(), "vmlinuz")); err == nil {
			names = append(names, e.Name())
		}
	}
	return names
}

// pick returns the newest package apt knows for k, updating the package
// lists once when it knows none.
func (f *Fetcher) pick(ctx context.Context, k Kernel) (string, error) {
	for range 2 {
		out, err := f.cmd(ctx, "", "apt-cache", "pkgnames", "linux-image-")
		if err != nil {
			return "", err
		}
		if pkg, ok := newest(strings.Fields(string(out)), k.Package); ok {
			return pkg, nil
		}
		if f.updated {
			break
		}
		if err := f.update(ctx); err != nil {
			return "", err
		}
	}
	return "", fmt.Errorf("kernel %s: apt knows no package matching %s, even after apt-get update (do the apt sources name bookworm-security or bookworm-backports?): %w", k.Name, k.Package, ErrMissing)
}

func (f *Fetcher) update(ctx context.Context) error {
	f.updated = true
	if os.Geteuid() != 0 {
		return fmt.Errorf("the package lists need apt-get update, which needs root: run it once, or fill %s: %w", f.Dir, ErrMissing)
	}
	f.Log("apt-get update")
	_, err := f.cmd(ctx, "", "apt-get", "update", "-qq")
	return err
}

// download fetches pkg's .deb into the cache, unless it is there already.
func (f *Fetcher) download(ctx context.Context, pkg string) (string, error) {
	dir := filepath.Join(f.Dir, "debs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	have := func() (string, bool) {
		m, _ := filepath.Glob(filepath.Join(dir, pkg+"_*.deb"))
		if len(m) == 0 {
			return "", false
		}
		return m[len(m)-1], true
	}
	if deb, ok := have(); ok {
		return deb, nil
	}
	f.Log("apt-get download %s", pkg)
	// As root apt downloads as _apt, who cannot write to the cache:
	// download as root outright instead of warning about it.
	if _, err := f.cmd(ctx, dir, "apt-get", "download", "-qq", "-o", "APT::Sandbox::User=root", pkg); err != nil {
		return "", err
	}
	deb, ok := have()
	if !ok {
		return "", fmt.Errorf("apt-get download %s left no %s_*.deb in %s", pkg, pkg, dir)
	}
	return deb, nil
}

// extract unpacks the kernel image of deb into the cache as pkg/vmlinuz.
func (f *Fetcher) extract(ctx context.Context, deb, pkg string) error {
	tmp, err := os.MkdirTemp(f.Dir, pkg+".tmp")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if _, err := f.cmd(ctx, "", "dpkg-deb", "-x", deb, tmp); err != nil {
		return err
	}
	images, _ := filepath.Glob(filepath.Join(tmp, "boot", "vmlinuz-*"))
	if len(images) != 1 {
		return fmt.Errorf("%s: want one boot/vmlinuz-*, found %d", deb, len(images))
	}
	dst := filepath.Join(tmp, "out")
	if err := os.Mkdir(dst, 0o755); err != nil {
		return err
	}
	if err := os.Rename(images[0], filepath.Join(dst, "vmlinuz")); err != nil {
		return err
	}
	if configs, _ := filepath.Glob(filepath.Join(tmp, "boot", "config-*")); len(configs) == 1 {
		if err := os.Rename(configs[0], filepath.Join(dst, "config")); err != nil {
			return err
		}
	}
	// PACKAGE_VERSION_ARCH.deb, with the version's ':' escaped as %3a.
	_, v, _ := strings.Cut(strings.TrimSuffix(filepath.Base(deb), "_amd64.deb"), "_")
	if v, err = url.PathUnescape(v); err != nil || v == "" {
		return fmt.Errorf("%s: no version in the file name", deb)
	}
	if err := os.WriteFile(filepath.Join(dst, "version"), []byte(v+"\n"), 0o644); err != nil {
		return err
	}
	final := filepath.Join(f.Dir, pkg)
	os.RemoveAll(final) // a partial one from an interrupted run
	return os.Rename(dst, final)
}

func (f *Fetcher) cmd(ctx context.Context, dir, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, nil
}

// newest returns the greatest name that matches re, in natural order.
func newest(names []string, re *regexp.Regexp) (string, bool) {
	var best string
	for _, n := range names {
		if re.MatchString(n) && (best == "" || naturalLess(best, n)) {
			best = n
		}
	}
	return best, best != ""
}

// naturalLess orders strings with runs of digits compared as numbers, so
// that 6.1.0-9 < 6.1.0-10 and 6.12.9+deb12 < 6.12.10+deb12.
func naturalLess(a, b string) bool {
	return slices.Compare(naturalKey(a), naturalKey(b)) < 0
}

// naturalKey splits s into runs of digits and of other bytes; a digit run
// becomes its length (without leading zeros) and digits, so comparing
// keys compares numbers by value.
func naturalKey(s string) []string {
	var key []string
	for i := 0; i < len(s); {
		j := i
		digit := isDigit(s[i])
		for j < len(s) && isDigit(s[j]) == digit {
			j++
		}
		run := s[i:j]
		if digit {
			run = strings.TrimLeft(run, "0")
			run = fmt.Sprintf("\x00%08d%s", len(run), run)
		}
		key = append(key, run)
		i = j
	}
	return key
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

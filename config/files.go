package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Limits on what vrrplb reads as configuration: a vrrplb.toml, a
// keepalived.conf, an nginx or haproxy configuration and the files they
// include. Real ones are a few kilobytes; these bound what a wrong path
// (/dev/zero, a FIFO, a log) or an include fan can cost.
const (
	// MaxFileBytes is the largest file read.
	MaxFileBytes = 1 << 20
	// MaxIncludedFiles is how many files one import reads, the first included.
	MaxIncludedFiles = 256
	// MaxIncludedBytes is how many bytes one import reads over all its files.
	MaxIncludedBytes = 8 << 20
	// MaxIncludeDepth bounds nested includes, so that a file including
	// itself fails with an error instead of recursing.
	MaxIncludeDepth = 8
)

// ReadFile reads a configuration file: a regular file of at most
// MaxFileBytes. Opening does not wait on a FIFO and nothing is read from a
// device, so a wrong path fails at once with the reason.
func ReadFile(path string) ([]byte, error) {
	f, fi, err := OpenRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi.Size() > MaxFileBytes {
		return nil, &os.PathError{Op: "read", Path: path, Err: fmt.Errorf("%d bytes: a configuration file is at most %d", fi.Size(), MaxFileBytes)}
	}
	// The file may grow while it is read: read one byte past the limit to know.
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileBytes {
		return nil, &os.PathError{Op: "read", Path: path, Err: fmt.Errorf("more than %d bytes: a configuration file is at most that", MaxFileBytes)}
	}
	return data, nil
}

// OpenRegular opens path for reading when it is a regular file, and says
// what it is otherwise. The open does not wait on a FIFO, and the check is of
// the file opened, not of a name that may be swapped in between.
func OpenRegular(path string) (*os.File, os.FileInfo, error) {
	// O_NONBLOCK: opening a FIFO with no writer would block; on a regular
	// file it changes nothing.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, &os.PathError{Op: "read", Path: path, Err: fmt.Errorf("not a regular file (%s)", fileKind(fi.Mode()))}
	}
	return f, fi, nil
}

func fileKind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&os.ModeNamedPipe != 0:
		return "a FIFO"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m&os.ModeDevice != 0:
		return "a device"
	}
	return "mode " + m.String()
}

// Tree is what IncludeReader needs to know of an importer's syntax tree
// (keepalived's nodes, nginx's directives): which node is an include, which
// blocks to look into, and how to parse a file.
type Tree[N any] struct {
	// Parse reads one file's text into nodes.
	Parse func(file string, src []byte) ([]N, error)
	// Include returns the pattern of an include node and true, or false for
	// any other node; an error for an include written wrong.
	Include func(n N) (pattern string, ok bool, err error)
	// Children returns the nodes of n's block whose includes are followed
	// (nil when there are none or they are not read).
	Children    func(n N) []N
	SetChildren func(n N, kids []N)
	// Errorf returns an *Error located at n.
	Errorf func(n N, format string, args ...any) error
	// Base is the folder relative include patterns are taken from; "" takes
	// them from the including file's folder.
	Base string
	// File returns the file n was read from.
	File func(n N) string
	// Included, when set, is told of the nodes an include line brought in
	// (keepalived: a conditional include makes them conditional).
	Included func(include N, kids []N)
}

// IncludeReader reads one configuration and the files it includes, within
// MaxFileBytes, MaxIncludedFiles, MaxIncludedBytes and MaxIncludeDepth. It is
// the one include expander of the keepalived and nginx importers.
type IncludeReader[N any] struct {
	Tree  Tree[N]
	files int
	bytes int
}

// Load reads path and every file it includes, in place of the include lines.
func (r *IncludeReader[N]) Load(path string) ([]N, error) {
	return r.load(path, 0)
}

func (r *IncludeReader[N]) load(path string, depth int) ([]N, error) {
	src, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	r.files++
	r.bytes += len(src)
	nodes, err := r.Tree.Parse(path, src)
	if err != nil {
		return nil, err
	}
	return r.expand(nodes, depth)
}

func (r *IncludeReader[N]) expand(nodes []N, depth int) ([]N, error) {
	var out []N
	for _, n := range nodes {
		pattern, ok, err := r.Tree.Include(n)
		if err != nil {
			return nil, err
		}
		if !ok {
			if kids := r.Tree.Children(n); kids != nil {
				kids, err := r.expand(kids, depth)
				if err != nil {
					return nil, err
				}
				r.Tree.SetChildren(n, kids)
			}
			out = append(out, n)
			continue
		}
		if depth >= MaxIncludeDepth {
			return nil, r.Tree.Errorf(n, "include %q: includes nested deeper than %d", pattern, MaxIncludeDepth)
		}
		full := pattern
		if !filepath.IsAbs(full) {
			base := r.Tree.Base
			if base == "" {
				base = filepath.Dir(r.Tree.File(n))
			}
			full = filepath.Join(base, full)
		}
		matches, err := filepath.Glob(full)
		if err != nil {
			return nil, r.Tree.Errorf(n, "include %q: %v", pattern, err)
		}
		if len(matches) == 0 && !strings.ContainsAny(pattern, "*?[") {
			return nil, r.Tree.Errorf(n, "include %q: no such file", pattern)
		}
		for _, m := range matches {
			if r.files >= MaxIncludedFiles {
				return nil, r.Tree.Errorf(n, "include %q: more than %d files read in all; is a file included from many places?", pattern, MaxIncludedFiles)
			}
			kids, err := r.load(m, depth+1)
			if err != nil {
				var located *Error
				if errors.As(err, &located) {
					return nil, err
				}
				return nil, r.Tree.Errorf(n, "include %q: %v", pattern, unwrapPathError(err))
			}
			if r.bytes > MaxIncludedBytes {
				return nil, r.Tree.Errorf(n, "include %q: more than %d bytes read in all", pattern, MaxIncludedBytes)
			}
			if r.Tree.Included != nil {
				r.Tree.Included(n, kids)
			}
			out = append(out, kids...)
		}
	}
	return out, nil
}

// notShown stands in an error message for text of an input that Word does not quote.
const notShown = "(text not shown)"

// Word quotes a word of an input file for an error message when it looks
// like a keyword (letters, digits, "_-. "), and otherwise stands in for it:
// an error about a file that is no configuration at all (an include of
// /etc/shadow) names its path and line, never its contents.
func Word(w string) string {
	if len(w) == 0 || len(w) > 48 {
		return notShown
	}
	for _, r := range w {
		if !(r == '_' || r == '-' || r == '.' || r == ' ' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return notShown
		}
	}
	return fmt.Sprintf("%q", w)
}

// Unlocated prefixes an error that has no file and line (the named file
// itself could not be read) with what was being read; an *Error is returned
// as it is.
func Unlocated(what string, err error) error {
	var located *Error
	if errors.As(err, &located) {
		return err
	}
	return fmt.Errorf("%s: %w", what, err)
}

package config

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Load reads and validates the config file at path.
func Load(path string) (*Config, error) {
	data, err := ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data)
}

// Parse validates data, the contents of the file named file (used in error
// messages and to resolve relative ca_file paths). On failure the error is an
// Errors listing every problem with its line.
func Parse(file string, data []byte) (*Config, error) {
	var root map[string]any
	if _, err := toml.Decode(string(data), &root); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, Errors{{File: file, Line: syntaxErrorLine(data, pe.Position), Msg: "syntax error: " + hideQuoted(pe.Message)}}
		}
		return nil, Errors{{File: file, Msg: "syntax error: " + hideQuoted(err.Error())}}
	}
	d := &decoder{file: file, lines: locate(string(data))}
	cfg := d.config(&table{d: d, m: root})
	if len(d.errs) > 0 {
		return nil, d.errs.sorted()
	}
	cfg.Source = data
	return cfg, nil
}

// quoted is text the TOML library quotes from the input in a message.
var quoted = regexp.MustCompile(`"[^"]{4,}"|'[^']{4,}'`)

// hideQuoted keeps a syntax error from quoting more of the file than a
// character or three: a file that is no vrrplb.toml (a credentials file
// given by mistake) is named by path and line only.
func hideQuoted(msg string) string {
	return quoted.ReplaceAllString(msg, notShown)
}

// syntaxErrorLine is the line the TOML library's error points into. An error
// found at a line's end (a missing "]") is reported by the library on the
// line after; the byte offset says where the mistake really is.
func syntaxErrorLine(data []byte, p toml.Position) int {
	if p.Start <= 0 || p.Start > len(data) {
		return p.Line
	}
	return 1 + strings.Count(string(data[:p.Start]), "\n")
}

// decoder turns the generic TOML tree into typed values, collecting located
// errors instead of stopping at the first one.
type decoder struct {
	file  string
	lines lines
	errs  Errors
	// asked records every key path a getter asked for, array indexes
	// left out ("instance.track_script.weight"): the keys the schema knows.
	asked map[string]bool
}

// table is one TOML table being read. Every getter marks its key as known;
// done reports the keys nobody asked for.
type table struct {
	d    *decoder
	path string // locator path, "instance[0]"
	ctx  string // message context, `instance "vip"`
	m    map[string]any
	seen map[string]bool
}

func (t *table) keyPath(key string) string {
	if t.path == "" {
		return key
	}
	return t.path + "." + key
}

// errf records a problem with key (or with the table itself when key is "").
func (t *table) errf(key, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	line := t.d.lines.line(t.path)
	if key != "" {
		msg = key + ": " + msg
		line = t.d.lines.line(t.keyPath(key))
	}
	if t.ctx != "" {
		msg = t.ctx + ": " + msg
	}
	t.d.errs = append(t.d.errs, &Error{File: t.d.file, Line: line, Msg: msg})
}

// get returns the raw value of key and marks key as known.
func (t *table) get(key string) (any, bool) {
	if t.seen == nil {
		t.seen = map[string]bool{}
	}
	t.seen[key] = true
	if t.d.asked != nil {
		t.d.asked[stripIndexes(t.keyPath(key))] = true
	}
	v, ok := t.m[key]
	return v, ok
}

// done reports every key of the table that no getter asked for.
func (t *table) done() {
	var unknown []string
	for k := range t.m {
		if !t.seen[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Slice(unknown, func(i, j int) bool {
		li, lj := t.d.lines.line(t.keyPath(unknown[i])), t.d.lines.line(t.keyPath(unknown[j]))
		if li != lj {
			return li < lj
		}
		return unknown[i] < unknown[j]
	})
	for _, k := range unknown {
		t.errf(k, "unknown key")
	}
}

func typeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	case []map[string]any:
		return "an array of tables"
	}
	return fmt.Sprintf("a %T", v)
}

// value reads key as a T. ok is false when key is absent, or when it holds
// another type, which is an error: "must be what, not ...".
func value[T any](t *table, key, what string) (x T, ok bool) {
	v, ok := t.get(key)
	if !ok {
		return x, false
	}
	x, ok = v.(T)
	if !ok {
		t.errf(key, "must be %s, not %s", what, typeName(v))
	}
	return x, ok
}

// or is v when ok, else def.
func or[T any](v T, ok bool, def T) T {
	if !ok {
		return def
	}
	return v
}

func (t *table) str(key, def string) string {
	s, ok := value[string](t, key, "a string")
	return or(s, ok, def)
}

func (t *table) boolean(key string, def bool) bool {
	b, ok := value[bool](t, key, "true or false")
	return or(b, ok, def)
}

// integer reads an integer key and checks it is within lo..hi.
func (t *table) integer(key string, def, lo, hi int) int {
	n, ok := value[int64](t, key, "an integer")
	if !ok {
		return def
	}
	if n < int64(lo) || n > int64(hi) {
		if hi == math.MaxInt32 {
			t.errf(key, "%d: must be at least %d", n, lo)
		} else {
			t.errf(key, "%d: must be %d..%d", n, lo, hi)
		}
		return def
	}
	return int(n)
}

// required records an error when key is absent and reports whether it is present.
func (t *table) required(key string) bool {
	if _, ok := t.m[key]; !ok {
		t.errf(key, "required")
		return false
	}
	return true
}

// name reads a required string key that must not be empty: the name of an
// instance, a frontend, an announcement or a tracked interface.
func (t *table) name(key string) string {
	if !t.required(key) {
		return ""
	}
	s := t.str(key, "")
	if s == "" {
		t.errf(key, "must not be empty")
	}
	return s
}

// list reads a required array of strings that lists at least one; what
// names one element in the errors ("virtual IP").
func (t *table) list(key, what string) []string {
	l := t.strings(key, nil)
	if _, ok := t.m[key]; !ok {
		t.errf(key, "required: at least one %s", what)
	} else if len(l) == 0 {
		t.errf(key, "must list at least one %s", what)
	}
	return l
}

// trackedFrontend reads the name of a track_frontend table, which must
// name a [[frontend]] of cfg. ok is false when the name is missing.
func (t *table) trackedFrontend(cfg *Config) (name string, ok bool) {
	if !t.required(KeyTrackName) {
		return "", false
	}
	name = t.str(KeyTrackName, "")
	if _, found := cfg.Frontend(name); !found {
		t.errf(KeyTrackName, "%q: no [[frontend]] has this name", name)
	}
	return name, true
}

// unique records an error on key when name (not "") is in seen already,
// and adds it to seen; block is what has the names ("[[instance]]").
func (t *table) unique(seen map[string]bool, key, name, block string) {
	if name == "" {
		return
	}
	if seen[name] {
		t.errf(key, "%q: another %s has this name", name, block)
	}
	seen[name] = true
}

// durationMin says what a duration key accepts.
type durationMin int

const (
	positive    durationMin = iota // > 0: zero makes no sense
	nonNegative                    // ≥ 0: zero means "off" or "none"
)

// MinDuration is the shortest duration any key takes (0 aside, where it
// means "off"): nothing vrrplb times is finer, and "1ns" is a typo.
const MinDuration = time.Millisecond

func (t *table) duration(key string, def time.Duration, min durationMin) time.Duration {
	s, ok := value[string](t, key, `a duration string such as "1s" or "100ms"`)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		t.errf(key, "%q: not a duration (use Go syntax such as \"1s\" or \"100ms\")", s)
		return def
	}
	switch {
	case min == positive && d <= 0:
		t.errf(key, "%q: must be positive", s)
		return def
	case d < 0:
		t.errf(key, "%q: must not be negative", s)
		return def
	case d > 0 && d < MinDuration:
		t.errf(key, "%q: below %v, the shortest duration vrrplb takes", s, MinDuration)
		return def
	}
	return d
}

// atLeast records an error when a duration key read as d is set below lo
// (0 passes: the key is off or took its default).
func (t *table) atLeast(key string, d, lo time.Duration, why string) {
	if d != 0 && d < lo {
		t.errf(key, "%q: must be at least %v (%s)", FormatDuration(d), lo, why)
	}
}

func (t *table) array(key string) ([]any, bool) {
	return value[[]any](t, key, "an array")
}

func (t *table) strings(key string, def []string) []string {
	a, ok := t.array(key)
	if !ok {
		return def
	}
	var out []string // nil when empty, like an omitted key
	for i, v := range a {
		s, ok := v.(string)
		if !ok {
			t.errf(key, "element %d must be a string, not %s", i+1, typeName(v))
			return def
		}
		out = append(out, s)
	}
	return out
}

func (t *table) ints(key string, def []int) []int {
	a, ok := t.array(key)
	if !ok {
		return def
	}
	out := make([]int, 0, len(a))
	for i, v := range a {
		n, ok := v.(int64)
		if !ok {
			t.errf(key, "element %d must be an integer, not %s", i+1, typeName(v))
			return def
		}
		out = append(out, int(n))
	}
	return out
}

// sub returns the table under key (an empty one when absent).
func (t *table) sub(key, ctx string) *table {
	s := &table{d: t.d, path: t.keyPath(key), ctx: ctx, m: map[string]any{}}
	if m, ok := value[map[string]any](t, key, "a table"); ok {
		s.m = m
	}
	return s
}

// tables returns the array of tables under key; ctx names element i for messages.
func (t *table) tables(key string, ctx func(i int, m map[string]any) string) []*table {
	v, ok := t.get(key)
	if !ok {
		return nil
	}
	var ms []map[string]any
	switch a := v.(type) {
	case []map[string]any:
		ms = a
	case []any:
		for _, e := range a {
			m, ok := e.(map[string]any)
			if !ok {
				t.errf(key, "must be an array of tables ([[%s]]), not %s", key, typeName(v))
				return nil
			}
			ms = append(ms, m)
		}
	default:
		t.errf(key, "must be an array of tables ([[%s]]), not %s", key, typeName(v))
		return nil
	}
	out := make([]*table, len(ms))
	for i, m := range ms {
		out[i] = &table{d: t.d, path: t.keyPath(key) + "[" + strconv.Itoa(i) + "]", ctx: ctx(i, m), m: m}
	}
	return out
}

// named is the message context of an array element: `instance "vip"`, or
// `instance #2` when it has no usable name.
func named(kind string) func(int, map[string]any) string {
	return func(i int, m map[string]any) string {
		if s, ok := m["name"].(string); ok && s != "" {
			return fmt.Sprintf("%s %q", kind, s)
		}
		return fmt.Sprintf("%s #%d", kind, i+1)
	}
}

// within nests a context: `instance "vip": track_script #1`.
func within(parent, kind string) func(int, map[string]any) string {
	return func(i int, m map[string]any) string {
		return fmt.Sprintf("%s: %s #%d", parent, kind, i+1)
	}
}

// stripIndexes turns "instance[0].track_script[1].weight" into
// "instance.track_script.weight".
func stripIndexes(path string) string {
	var b strings.Builder
	skip := false
	for _, r := range path {
		switch {
		case r == '[':
			skip = true
		case r == ']':
			skip = false
		case !skip:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// resolvePath makes a path in the config file relative to the file's folder.
func (d *decoder) resolvePath(p string) string {
	if p == "" || filepath.IsAbs(p) || d.file == "" {
		return p
	}
	return filepath.Join(filepath.Dir(d.file), p)
}

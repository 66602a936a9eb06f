package convert

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// table is one TOML table or array-of-tables element, with its comments.
type table struct {
	// name is the dotted table name ("instance", "frontend.health").
	name string
	// array renders [[name]] instead of [name].
	array bool
	// notes are comment lines printed above the header.
	notes    []string
	kvs      []kv
	children []*table
}

// kv is one key and value with the comment lines printed above it.
type kv struct {
	key   string
	val   any
	notes []string
}

func (t *table) set(key string, val any, notes ...string) {
	t.kvs = append(t.kvs, kv{key: key, val: val, notes: notes})
}

// wrapWidth is where comments wrap.
const wrapWidth = 96

// writeComment writes text as '#' lines indented by indent, wrapped at word
// boundaries. Control characters from the inputs are made visible.
func writeComment(b *strings.Builder, indent, text string) {
	text = sanitize(text)
	line := ""
	for _, w := range strings.Fields(text) {
		if line != "" && len(indent)+2+len(line)+1+len(w) > wrapWidth {
			fmt.Fprintf(b, "%s# %s\n", indent, line)
			line = "  " + w
			continue
		}
		if line == "" {
			line = w
		} else {
			line += " " + w
		}
	}
	if line != "" {
		fmt.Fprintf(b, "%s# %s\n", indent, line)
	}
}

// sanitize makes text safe for a one-line comment: valid UTF-8, no control characters.
func sanitize(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

func (t *table) render(b *strings.Builder, depth int) {
	indent := strings.Repeat("  ", depth)
	for _, n := range t.notes {
		writeComment(b, indent, n)
	}
	if t.array {
		fmt.Fprintf(b, "%s[[%s]]\n", indent, t.name)
	} else {
		fmt.Fprintf(b, "%s[%s]\n", indent, t.name)
	}
	for _, e := range t.kvs {
		for _, n := range e.notes {
			writeComment(b, indent, n)
		}
		fmt.Fprintf(b, "%s%s = %s\n", indent, e.key, tomlValue(e.val))
	}
	for _, c := range t.children {
		b.WriteString("\n")
		c.render(b, depth+1)
	}
}

// tomlValue renders one value as TOML.
func tomlValue(v any) string {
	switch v := v.(type) {
	case string:
		return tomlString(v)
	case int:
		return strconv.Itoa(v)
	case bool:
		return strconv.FormatBool(v)
	case time.Duration:
		return tomlString(formatDuration(v))
	case []string:
		parts := make([]string, len(v))
		for i, s := range v {
			parts[i] = tomlString(s)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case []int:
		parts := make([]string, len(v))
		for i, n := range v {
			parts[i] = strconv.Itoa(n)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return tomlString(fmt.Sprint(v))
}

// tomlString quotes s as a TOML basic string.
func tomlString(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		case r == utf8.RuneError:
			b.WriteString("\uFFFD")
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// formatDuration writes d the way a person would ("10m", "1.5s", "100ms").
func formatDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "0s"
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	case d%time.Second == 0:
		return fmt.Sprintf("%ds", d/time.Second)
	case d%time.Millisecond == 0 && d < time.Second:
		return fmt.Sprintf("%dms", d/time.Millisecond)
	}
	return d.String()
}

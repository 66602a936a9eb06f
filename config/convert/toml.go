package convert

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/vrrplb/vrrplb/config"
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
		return config.TOMLString(v)
	case int:
		return strconv.Itoa(v)
	case bool:
		return strconv.FormatBool(v)
	case time.Duration:
		return config.TOMLString(config.FormatDuration(v))
	case []string:
		parts := make([]string, len(v))
		for i, s := range v {
			parts[i] = config.TOMLString(s)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case []int:
		parts := make([]string, len(v))
		for i, n := range v {
			parts[i] = strconv.Itoa(n)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return config.TOMLString(fmt.Sprint(v))
}

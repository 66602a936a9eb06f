package config

import (
	"strconv"
	"strings"
)

// lines maps key paths to the line they are written on. A path names array
// elements by index: "instance[1].priority", "frontend[0].health.path".
//
// The TOML library reports positions only for syntax errors, so this scanner
// reads the text once more, just far enough to know where each key and table
// header stands. It runs only on text the TOML library has already accepted.
type lines struct {
	at map[string]int
}

// line returns the line of path, or of its nearest written ancestor (an
// omitted key is reported at its table's header), or 0 if none is written.
func (l lines) line(path string) int {
	for path != "" {
		if n, ok := l.at[path]; ok {
			return n
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return 0
		}
		path = path[:i]
	}
	return 0
}

func locate(text string) lines {
	l := lines{at: map[string]int{}}
	count := map[string]int{} // array-of-tables path → elements seen
	current := ""             // path of the table the next keys belong to

	// resolve turns header segments into a path, naming the newest element of
	// every array of tables it passes through.
	resolve := func(segs []string) string {
		p := ""
		for i, s := range segs {
			if p != "" {
				p += "."
			}
			p += s
			if n, ok := count[p]; ok && i < len(segs)-1 {
				p += "[" + strconv.Itoa(n-1) + "]"
			}
		}
		return p
	}

	src := strings.Split(text, "\n")
	for i := 0; i < len(src); i++ {
		lineNo := i + 1
		s := strings.TrimSpace(src[i])
		switch {
		case s == "" || s[0] == '#':
			continue
		case strings.HasPrefix(s, "[["):
			segs, _ := parseKey(s[2:])
			arr := resolve(segs)
			n := count[arr]
			count[arr] = n + 1
			current = arr + "[" + strconv.Itoa(n) + "]"
			l.at[current] = lineNo
			if _, ok := l.at[arr]; !ok {
				l.at[arr] = lineNo
			}
		case s[0] == '[':
			segs, _ := parseKey(s[1:])
			current = resolve(segs)
			l.at[current] = lineNo
		default:
			segs, rest := parseKey(s)
			if len(segs) == 0 {
				continue
			}
			p := strings.Join(segs, ".")
			if current != "" {
				p = current + "." + p
			}
			if _, ok := l.at[p]; !ok {
				l.at[p] = lineNo
			}
			rest = strings.TrimSpace(rest)
			rest = strings.TrimPrefix(rest, "=")
			i = skipValue(src, i, rest)
		}
	}
	return l
}

// parseKey reads a dotted key (bare or quoted segments) from the start of s
// and returns its segments and what follows it.
func parseKey(s string) (segs []string, rest string) {
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			return segs, ""
		}
		var seg string
		switch s[0] {
		case '"', '\'':
			end := strings.IndexByte(s[1:], s[0])
			if end < 0 {
				return segs, ""
			}
			seg, s = s[1:1+end], s[end+2:]
		default:
			end := strings.IndexFunc(s, func(r rune) bool {
				return !(r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
			})
			if end < 0 {
				end = len(s)
			}
			if end == 0 {
				return segs, s
			}
			seg, s = s[:end], s[end:]
		}
		segs = append(segs, seg)
		s = strings.TrimLeft(s, " \t")
		if !strings.HasPrefix(s, ".") {
			return segs, s
		}
		s = s[1:]
	}
}

// skipValue returns the index of the last line of the value that starts with
// rest on line i: arrays, inline tables and multi-line strings may span lines.
func skipValue(src []string, i int, rest string) int {
	depth := 0
	text := rest
	for {
		j := 0
		for j < len(text) {
			c := text[j]
			switch {
			case c == '#':
				j = len(text)
				continue
			case strings.HasPrefix(text[j:], `"""`), strings.HasPrefix(text[j:], `'''`):
				delim := text[j : j+3]
				// A multi-line string: find its end, possibly on a later line.
				k := strings.Index(text[j+3:], delim)
				for k < 0 && i+1 < len(src) {
					i++
					text = src[i]
					j = -3
					k = strings.Index(text, delim)
				}
				if k < 0 {
					return i
				}
				j = j + 3 + k + 3
				continue
			case c == '"' || c == '\'':
				k := j + 1
				for k < len(text) && text[k] != c {
					if c == '"' && text[k] == '\\' {
						k++
					}
					k++
				}
				j = k + 1
				continue
			case c == '[' || c == '{':
				depth++
			case c == ']' || c == '}':
				depth--
			}
			j++
		}
		if depth <= 0 || i+1 >= len(src) {
			return i
		}
		i++
		text = src[i]
	}
}

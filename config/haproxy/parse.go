package haproxy

import (
	"fmt"
	"strings"

	"github.com/vrrplb/vrrplb/config"
)

// Error is a problem at one line of one file; it prints as FILE:LINE: message.
type Error = config.Error

// Section is one section of haproxy.cfg: its header line and the lines under it.
type Section struct {
	File string
	Line int
	// Kind is the section keyword: global, defaults, frontend, backend, listen, ...
	Kind string
	// Name is the proxy name ("" for global and unnamed defaults).
	Name string
	// Args are the words after the name on the header line.
	Args  []string
	Lines []*Line
}

// Line is one keyword line inside a section.
type Line struct {
	File string
	Line int
	// Words are the words of the line, quotes and escapes resolved.
	Words []string
}

// Keyword is the line's keyword, after a "no" or "default" prefix.
func (l *Line) Keyword() string {
	if len(l.Words) > 1 && (l.Words[0] == "no" || l.Words[0] == "default") {
		return l.Words[1]
	}
	return l.Words[0]
}

// Errorf returns an *Error located at l.
func (l *Line) Errorf(format string, args ...any) error {
	return &Error{File: l.File, Line: l.Line, Msg: fmt.Sprintf(format, args...)}
}

// Errorf returns an *Error located at the section header.
func (s *Section) Errorf(format string, args ...any) error {
	return &Error{File: s.File, Line: s.Line, Msg: fmt.Sprintf(format, args...)}
}

// sections are the keywords that open a section.
var sections = map[string]bool{
	"global": true, "defaults": true, "frontend": true, "backend": true, "listen": true,
	"peers": true, "resolvers": true, "userlist": true, "mailers": true, "program": true,
	"http-errors": true, "ring": true, "cache": true, "fcgi-app": true, "log-forward": true,
	"crt-store": true, "traces": true, "acme": true,
}

// Load reads the haproxy.cfg at path.
func Load(path string) ([]*Section, error) {
	src, err := config.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("haproxy: %w", err)
	}
	return Parse(path, src)
}

// Parse reads one haproxy.cfg held in memory.
func Parse(file string, src []byte) ([]*Section, error) {
	var out []*Section
	var cur *Section
	for idx, text := range strings.Split(string(src), "\n") {
		lineNo := idx + 1
		words, err := splitLine(text)
		if err != nil {
			return nil, &Error{File: file, Line: lineNo, Msg: err.Error()}
		}
		if len(words) == 0 {
			continue
		}
		if sections[words[0]] {
			cur = &Section{File: file, Line: lineNo, Kind: words[0]}
			if len(words) > 1 {
				cur.Name = words[1]
				cur.Args = words[2:]
			}
			switch cur.Kind {
			case "frontend", "backend", "listen":
				if cur.Name == "" {
					return nil, cur.Errorf("%s needs a name", cur.Kind)
				}
			}
			out = append(out, cur)
			continue
		}
		l := &Line{File: file, Line: lineNo, Words: words}
		if cur == nil {
			return nil, l.Errorf("%s is outside any section (global, defaults, frontend, backend, listen)", config.Word(words[0]))
		}
		if err := checkLine(cur.Kind, l); err != nil {
			return nil, err
		}
		cur.Lines = append(cur.Lines, l)
	}
	return out, nil
}

// splitLine splits one line into words: '#' outside quotes starts a comment,
// double quotes keep spaces and take backslash escapes, single quotes keep
// everything, a backslash outside quotes escapes the next character.
func splitLine(s string) ([]string, error) {
	var words []string
	var b strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
			if inWord {
				words = append(words, b.String())
				b.Reset()
				inWord = false
			}
		case c == '#':
			if inWord {
				words = append(words, b.String())
			}
			return words, nil
		case c == '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
			inWord = true
		case c == '"' || c == '\'':
			j := i + 1
			for ; j < len(s) && s[j] != c; j++ {
				if c == '"' && s[j] == '\\' && j+1 < len(s) {
					j++
				}
				b.WriteByte(s[j])
			}
			if j >= len(s) {
				return nil, fmt.Errorf("unterminated quoted string")
			}
			i = j
			inWord = true
		default:
			b.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, b.String())
	}
	return words, nil
}

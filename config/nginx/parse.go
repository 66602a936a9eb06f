package nginx

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/vrrplb/vrrplb/config"
)

// unread are the blocks vrrplb does not import: their includes are not followed.
var unread = map[string]bool{"http": true, "events": true, "mail": true}

// Error is a problem at one line of one file; it prints as FILE:LINE: message.
type Error = config.Error

// Directive is one nginx directive, with its block if it has one.
type Directive struct {
	File string
	Line int
	Name string
	// Args are the words after the name, quotes removed.
	Args []string
	// IsBlock says the directive has a { } block; Children are its directives.
	IsBlock  bool
	Children []*Directive
}

// Errorf returns an *Error located at d.
func (d *Directive) Errorf(format string, args ...any) error {
	return &Error{File: d.File, Line: d.Line, Msg: fmt.Sprintf(format, args...)}
}

// Parse reads one nginx configuration held in memory. An include directive is
// an error here: only Load reads other files.
func Parse(file string, src []byte) ([]*Directive, error) {
	ds, err := parseTree(file, src)
	if err != nil {
		return nil, err
	}
	if err := noIncludes(ds); err != nil {
		return nil, err
	}
	if err := check(ds, ctxMain); err != nil {
		return nil, err
	}
	return ds, nil
}

// Load reads the nginx configuration at path and every file it includes;
// relative include paths are taken from path's directory, as nginx takes them
// from its configuration prefix.
func Load(path string) ([]*Directive, error) {
	r := config.IncludeReader[*Directive]{Tree: treeAt(filepath.Dir(path))}
	ds, err := r.Load(path)
	if err != nil {
		return nil, config.Unlocated("nginx", err)
	}
	if err := check(ds, ctxMain); err != nil {
		return nil, err
	}
	return ds, nil
}

// treeAt follows include directives outside the unread blocks, relative to
// prefix, as nginx takes them from its configuration prefix.
func treeAt(prefix string) config.Tree[*Directive] {
	return config.Tree[*Directive]{
		Parse: parseTree,
		Include: func(d *Directive) (string, bool, error) {
			if d.Name != "include" {
				return "", false, nil
			}
			if len(d.Args) != 1 || d.IsBlock {
				return "", false, d.Errorf(`invalid number of arguments in "include" directive`)
			}
			return d.Args[0], true, nil
		},
		Children: func(d *Directive) []*Directive {
			if !d.IsBlock || unread[d.Name] {
				return nil
			}
			return d.Children
		},
		SetChildren: func(d *Directive, kids []*Directive) { d.Children = kids },
		Errorf:      func(d *Directive, format string, args ...any) error { return d.Errorf(format, args...) },
		Base:        prefix,
		File:        func(d *Directive) string { return d.File },
	}
}

func noIncludes(ds []*Directive) error {
	for _, d := range ds {
		if d.Name == "include" {
			return d.Errorf("include is read only from a file on disk")
		}
		if unread[d.Name] {
			continue
		}
		if err := noIncludes(d.Children); err != nil {
			return err
		}
	}
	return nil
}

// token is a word (quoted or not) or one of ; { }.
type token struct {
	text   string
	line   int
	punct  bool
	quoted bool
}

// lex splits src into tokens. '#' at the start of a word comments out the rest
// of the line; quotes keep spaces and ; { } and take backslash escapes.
func lex(file string, src string) ([]token, error) {
	var toks []token
	line := 1
	i := 0
	for i < len(src) {
		c := src[i]
		switch {
		case c == '\n':
			line++
			i++
		case isBlank(c):
			i++
		case c == '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == ';' || c == '{' || c == '}':
			toks = append(toks, token{text: string(c), line: line, punct: true})
			i++
		case c == '"' || c == '\'':
			text, next, lines, ok := lexQuoted(src, i)
			if !ok {
				return nil, &Error{File: file, Line: line, Msg: "unterminated quoted string"}
			}
			toks = append(toks, token{text: text, line: line, quoted: true})
			i, line = next, line+lines
		default:
			text, next := lexWord(src, i)
			toks = append(toks, token{text: text, line: line})
			i = next
		}
	}
	return toks, nil
}

func isBlank(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'
}

// lexQuoted reads the quoted string that starts at src[i]: its text, the
// offset past it and the newlines in it; ok false when it is not closed.
func lexQuoted(src string, i int) (text string, next, lines int, ok bool) {
	q := src[i]
	var b strings.Builder
	for i++; i < len(src); i++ {
		d := src[i]
		switch {
		case d == q:
			return b.String(), i + 1, lines, true
		case d == '\\' && i+1 < len(src) && (src[i+1] == q || src[i+1] == '\\'):
			i++
			d = src[i]
		case d == '\n':
			lines++
		}
		b.WriteByte(d)
	}
	return "", i, lines, false
}

// lexWord reads the bare word that starts at src[i], backslash escapes
// resolved, and returns it with the offset past it.
func lexWord(src string, i int) (string, int) {
	var b strings.Builder
	for i < len(src) {
		d := src[i]
		if isBlank(d) || d == '\n' || d == ';' || d == '{' || d == '}' {
			break
		}
		if d == '\\' && i+1 < len(src) && src[i+1] != '\n' {
			b.WriteByte(src[i+1])
			i += 2
			continue
		}
		b.WriteByte(d)
		i++
	}
	return b.String(), i
}

// parseTree builds the directive tree of one file without checking names.
func parseTree(file string, src []byte) ([]*Directive, error) {
	toks, err := lex(file, string(src))
	if err != nil {
		return nil, err
	}
	root := &Directive{File: file, IsBlock: true}
	stack := []*Directive{root}
	var cur *Directive
	lastLine := 1
	for _, t := range toks {
		lastLine = t.line
		if !t.punct {
			if cur == nil {
				cur = &Directive{File: file, Line: t.line, Name: t.text}
			} else {
				cur.Args = append(cur.Args, t.text)
			}
			continue
		}
		switch t.text {
		case ";":
			if cur == nil {
				return nil, &Error{File: file, Line: t.line, Msg: `unexpected ";"`}
			}
			parent := stack[len(stack)-1]
			parent.Children = append(parent.Children, cur)
			cur = nil
		case "{":
			if cur == nil {
				return nil, &Error{File: file, Line: t.line, Msg: `unexpected "{"`}
			}
			cur.IsBlock = true
			parent := stack[len(stack)-1]
			parent.Children = append(parent.Children, cur)
			stack = append(stack, cur)
			cur = nil
		case "}":
			if cur != nil {
				return nil, &Error{File: file, Line: t.line, Msg: fmt.Sprintf(`unexpected "}": directive %s is not terminated by ";"`, config.Word(cur.Name))}
			}
			if len(stack) == 1 {
				return nil, &Error{File: file, Line: t.line, Msg: `unexpected "}"`}
			}
			stack = stack[:len(stack)-1]
		}
	}
	if cur != nil {
		return nil, &Error{File: file, Line: lastLine, Msg: fmt.Sprintf(`unexpected end of file: directive %s is not terminated by ";"`, config.Word(cur.Name))}
	}
	if len(stack) > 1 {
		open := stack[len(stack)-1]
		return nil, open.Errorf(`unexpected end of file: block %s is not closed by "}"`, config.Word(open.Name))
	}
	return root.Children, nil
}

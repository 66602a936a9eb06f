package keepalived

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/vrrplb/vrrplb/config"
)

// Error is a problem at one line of one file; it prints as FILE:LINE: message.
type Error = config.Error

// Node is one keyword line of keepalived.conf, with its block if it opens one.
type Node struct {
	File string
	Line int
	// Args are the words of the line, quotes removed; Args[0] is the keyword.
	Args []string
	// Raw is the text after the keyword as written, quotes kept and the
	// comment removed (keepalived splits script lines itself).
	Raw string
	// IsBlock says the line opened a { } block; Children are its lines.
	IsBlock  bool
	Children []*Node
	// Cond is the config id of a conditional line ("@ID keyword ..."), with
	// a leading "^" for "@^ID": Select keeps or drops it. "" for a plain line.
	Cond string
	// Unknown says keepalived does not know the keyword here: it logs such
	// a line and skips it, and so must an importer.
	Unknown bool
}

// Keyword is the first word of the line.
func (n *Node) Keyword() string { return n.Args[0] }

// Errorf returns an *Error located at n.
func (n *Node) Errorf(format string, args ...any) error {
	return &Error{File: n.File, Line: n.Line, Msg: fmt.Sprintf(format, args...)}
}

// Parse reads one keepalived.conf held in memory. An include line is an error
// here: only Load reads other files.
func Parse(file string, src []byte) ([]*Node, error) {
	nodes, err := parseTree(file, src)
	if err != nil {
		return nil, err
	}
	if err := noIncludes(nodes); err != nil {
		return nil, err
	}
	if err := check(nodes, ctxTop); err != nil {
		return nil, err
	}
	return nodes, nil
}

// Load reads the keepalived.conf at path and every file it includes.
func Load(path string) ([]*Node, error) {
	t := tree
	ps := params{}
	t.Parse = func(file string, src []byte) ([]*Node, error) { return parseTreeDefs(file, src, ps) }
	r := config.IncludeReader[*Node]{Tree: t}
	nodes, err := r.Load(path)
	if err != nil {
		return nil, config.Unlocated("keepalived", err)
	}
	if err := check(nodes, ctxTop); err != nil {
		return nil, err
	}
	return nodes, nil
}

// tree follows include lines at any depth of blocks, relative to the
// including file, as keepalived does.
var tree = config.Tree[*Node]{
	Parse: parseTree,
	Include: func(n *Node) (string, bool, error) {
		if n.Keyword() != "include" {
			return "", false, nil
		}
		if len(n.Args) != 2 || n.IsBlock {
			return "", false, n.Errorf("include takes one file name or glob")
		}
		return n.Args[1], true, nil
	},
	Children: func(n *Node) []*Node {
		if !n.IsBlock {
			return nil
		}
		return n.Children
	},
	SetChildren: func(n *Node, kids []*Node) { n.Children = kids },
	Errorf:      func(n *Node, format string, args ...any) error { return n.Errorf(format, args...) },
	File:        func(n *Node) string { return n.File },
	// "@ID include FILE" includes FILE's lines only under config id ID.
	Included: func(inc *Node, kids []*Node) {
		if inc.Cond == "" {
			return
		}
		for _, k := range kids {
			if k.Cond == "" {
				k.Cond = inc.Cond
			}
		}
	},
}

// token is one word or brace of a line.
type token struct {
	text  string
	brace bool // an unquoted { or }
	end   int  // offset just past the token in the line
}

// lexLine splits one line into tokens. Outside quotes '!' and '#' at the start
// of a word begin a comment; '{' and '}' are tokens of their own.
func lexLine(file string, lineNo int, line string) ([]token, error) {
	var toks []token
	i := 0
	for i < len(line) {
		c := line[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '!' || c == '#':
			return toks, nil
		case c == '{' || c == '}':
			toks = append(toks, token{text: string(c), brace: true, end: i + 1})
			i++
		default:
			var b strings.Builder
			for i < len(line) {
				c = line[i]
				if c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v' || c == '{' || c == '}' {
					break
				}
				if c == '"' {
					j := strings.IndexByte(line[i+1:], '"')
					if j < 0 {
						return nil, &Error{File: file, Line: lineNo, Msg: "unterminated quoted string"}
					}
					b.WriteString(line[i+1 : i+1+j])
					i += j + 2
					continue
				}
				b.WriteByte(c)
				i++
			}
			toks = append(toks, token{text: b.String(), end: i})
		}
	}
	return toks, nil
}

// parseTree builds the block tree of one file without checking keywords.
func parseTree(file string, src []byte) ([]*Node, error) {
	return parseTreeDefs(file, src, params{})
}

// params are keepalived's parameter definitions ("$NAME=TEXT"), which later
// lines use as $NAME or ${NAME}, in this file and the files it includes.
type params map[string]string

var (
	paramDef = regexp.MustCompile(`^\$([A-Za-z_][A-Za-z0-9_]*)[ \t]*=[ \t]*(.*)$`)
	paramUse = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)`)
)

// expand records a definition line (true: the line is used up) or replaces
// the defined parameters in it; undefined ones are left as they are.
func (ps params) expand(file string, lineNo int, line string) (string, bool, error) {
	if m := paramDef.FindStringSubmatch(strings.TrimSpace(line)); m != nil {
		if strings.HasSuffix(m[2], "\\") {
			return "", true, &Error{File: file, Line: lineNo, Msg: fmt.Sprintf("$%s: multi-line parameter definitions are not read; write the lines out", m[1])}
		}
		ps[m[1]] = m[2]
		return "", true, nil
	}
	if len(ps) == 0 || !strings.Contains(line, "$") {
		return line, false, nil
	}
	return paramUse.ReplaceAllStringFunc(line, func(use string) string {
		name := strings.Trim(use, "${}")
		if v, ok := ps[name]; ok {
			return v
		}
		return use
	}), false, nil
}

func parseTreeDefs(file string, src []byte, ps params) ([]*Node, error) {
	root := &Node{File: file, IsBlock: true}
	stack := []*Node{root}
	top := func() *Node { return stack[len(stack)-1] }
	for idx, line := range strings.Split(string(src), "\n") {
		lineNo := idx + 1
		line, isDef, err := ps.expand(file, lineNo, line)
		if err != nil {
			return nil, err
		}
		if isDef {
			continue
		}
		toks, err := lexLine(file, lineNo, line)
		if err != nil {
			return nil, err
		}
		cond := ""
		if len(toks) > 1 && !toks[0].brace && strings.HasPrefix(toks[0].text, "@") && len(toks[0].text) > 1 {
			cond, toks = toks[0].text[1:], toks[1:]
		}
		var cur *Node
		start := 0 // offset where cur's keyword ends
		flush := func() {
			if cur != nil {
				top().Children = append(top().Children, cur)
				cur = nil
			}
		}
		for ti, t := range toks {
			switch {
			case t.brace && t.text == "{":
				if cur == nil {
					// A brace on its own line opens the block of the line before.
					kids := top().Children
					if ti != 0 || len(kids) == 0 || kids[len(kids)-1].IsBlock {
						return nil, &Error{File: file, Line: lineNo, Msg: `"{" without a keyword before it`}
					}
					cur = kids[len(kids)-1]
					top().Children = kids[:len(kids)-1]
				}
				cur.IsBlock = true
				top().Children = append(top().Children, cur)
				stack = append(stack, cur)
				cur = nil
			case t.brace:
				flush()
				if len(stack) == 1 {
					return nil, &Error{File: file, Line: lineNo, Msg: `unexpected "}"`}
				}
				stack = stack[:len(stack)-1]
			default:
				if cur == nil {
					cur = &Node{File: file, Line: lineNo, Cond: cond}
					start = t.end
				}
				cur.Args = append(cur.Args, t.text)
				cur.Raw = rawAfter(line, start, t.end)
			}
		}
		flush()
	}
	if len(stack) > 1 {
		open := stack[1]
		return nil, open.Errorf("block %s is not closed", config.Word(strings.Join(open.Args, " ")))
	}
	return root.Children, nil
}

// Conditions returns the config ids that conditional lines name, each once,
// in sorted order, and the first such line; none when the file has none.
func Conditions(nodes []*Node) (ids []string, first *Node) {
	seen := map[string]bool{}
	var walk func([]*Node)
	walk = func(ns []*Node) {
		for _, n := range ns {
			if n.Cond != "" {
				id := strings.TrimPrefix(n.Cond, "^")
				if !seen[id] {
					seen[id] = true
					ids = append(ids, id)
				}
				if first == nil || n.File == first.File && n.Line < first.Line {
					first = n
				}
			}
			walk(n.Children)
		}
	}
	walk(nodes)
	sort.Strings(ids)
	return ids, first
}

// Select keeps the lines keepalived reads with config id id: plain lines,
// "@ID" lines whose ID is id and "@^ID" lines whose ID is not.
func Select(nodes []*Node, id string) []*Node {
	var out []*Node
	for _, n := range nodes {
		if n.Cond != "" {
			neg := strings.HasPrefix(n.Cond, "^")
			if (strings.TrimPrefix(n.Cond, "^") == id) == neg {
				continue
			}
		}
		n.Children = Select(n.Children, id)
		out = append(out, n)
	}
	return out
}

// rawAfter returns line[from:to] trimmed: the words after a keyword as written.
func rawAfter(line string, from, to int) string {
	if to <= from {
		return ""
	}
	return strings.TrimSpace(line[from:to])
}

// noIncludes rejects include lines, which only Load can follow.
func noIncludes(nodes []*Node) error {
	for _, n := range nodes {
		if n.Keyword() == "include" {
			return n.Errorf("include is read only from a file on disk")
		}
		if err := noIncludes(n.Children); err != nil {
			return err
		}
	}
	return nil
}

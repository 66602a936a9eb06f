package convert

import (
	"errors"
	"io"
	"io/fs"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/vrrplb/vrrplb/config"
)

// splitCommand splits a keepalived script or notify line into argv the way
// keepalived 2.x does before it execs the command without a shell: words are
// separated by blanks, single quotes keep everything, double quotes keep blanks
// and take backslash escapes, and a backslash outside quotes escapes the next
// character. A line wholly in double quotes in the config has already lost them.
func splitCommand(s string) ([]string, error) {
	var argv []string
	var b strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				argv = append(argv, b.String())
				b.Reset()
				inWord = false
			}
		case c == '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
			inWord = true
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated single quote")
			}
			b.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			j := i + 1
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' && j+1 < len(s) {
					j++
				}
				b.WriteByte(s[j])
			}
			if j >= len(s) {
				return nil, errors.New("unterminated double quote")
			}
			i = j
			inWord = true
		default:
			b.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		argv = append(argv, b.String())
	}
	return argv, nil
}

// commandLine returns the command text of a keepalived script or notify line:
// the raw words after the keyword, without the outer double quotes that make
// them one config word.
func commandLine(raw string) string {
	raw = strings.TrimSpace(raw)
	if len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' && !strings.Contains(raw[1:len(raw)-1], `"`) {
		return raw[1 : len(raw)-1]
	}
	return raw
}

var (
	// proxyName finds the proxy a check is about.
	proxyName = regexp.MustCompile(`\b(nginx|haproxy)\b`)
	// processTool finds a command that only asks whether a process exists.
	processTool = regexp.MustCompile(`\b(pidof|pgrep|killall\s+-0|pkill\s+-0|kill\s+-0|ps\b|systemctl\s+(-q\s+|--quiet\s+)?(is-active|status)|service\s+\S+\s+status)`)
	// activeProbe finds a command that talks to the proxy or an apiserver.
	activeProbe = regexp.MustCompile(`\b(curl|wget|nc|ncat|netcat|socat|openssl|telnet)\b|/dev/tcp/|https?://`)
	// stopsKeepalived finds a script that kills keepalived to give up the VIP.
	stopsKeepalived = regexp.MustCompile(`\b(killall|pkill|systemctl\s+stop|service)\s+keepalived\b`)
	// processScriptName is how people name a script that checks the proxy process.
	processScriptName = regexp.MustCompile(`^((check|chk)[_-]?(nginx|haproxy)|(nginx|haproxy)[_-]?(heartbeat|check|chk|status|alive|health|monitor))(\.sh|\.bash)?$`)
)

// maxScriptRead bounds how much of a script file is read for evidence.
const maxScriptRead = 64 << 10

// processCheck says whether a track script only checks that the proxy process
// exists: the proxy's name ("nginx" or "haproxy") and the evidence used, or
// ok false. root, when not "", is prepended to an absolute script path (tests).
func processCheck(argv []string, line, root string) (proxy, evidence string, ok bool) {
	if m, yes := isProcessCheck(line); yes {
		return m, "the command itself (" + line + ")", true
	}
	if len(argv) == 0 || !strings.HasPrefix(argv[0], "/") {
		return "", "", false
	}
	p := argv[0]
	if root != "" {
		p = filepath.Join(root, filepath.FromSlash(p))
	}
	content, err := readHead(p)
	if err == nil {
		if m, yes := isProcessCheck(content); yes {
			evidence = "the content of " + argv[0] + ", which only looks for the " + m + " process"
			if stopsKeepalived.MatchString(stripShellComments(content)) {
				evidence += " (and stops keepalived when it finds none: track_frontend hands the VIP over now)"
			}
			return m, evidence, true
		}
		return "", "", false
	}
	if m := processScriptName.FindStringSubmatch(path.Base(argv[0])); m != nil {
		name := m[3] + m[4]
		return name, "the script's name: " + argv[0] + " could not be read here (" + reason(err) + ")", true
	}
	return "", "", false
}

// isProcessCheck reports whether text names the proxy and a process lookup,
// and nothing that connects to anything.
func isProcessCheck(text string) (string, bool) {
	code := stripShellComments(text)
	// grep [n]ginx is how people keep grep from finding itself.
	m := proxyName.FindString(strings.NewReplacer("[", "", "]", "").Replace(code))
	if m == "" || !processTool.MatchString(code) || activeProbe.MatchString(code) {
		return "", false
	}
	return m, true
}

// stripShellComments drops '#' comments (and the #! line) from a shell script.
func stripShellComments(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "#") {
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

// readHead reads the start of a regular file; anything else (a device, a
// FIFO) is not read, so that a script path like /dev/stdin cannot block.
func readHead(p string) (string, error) {
	f, _, err := config.OpenRegular(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxScriptRead))
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// reason is the cause of a file error without the path, which the caller names.
func reason(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The admin socket ([admin] socket) is the one place that takes runtime
// commands (`vrrplb maintenance`, `vrrplb backend`); the admin HTTP server
// only reads. Its file is mode 0600, and a peer whose uid is neither root
// nor the daemon's own is refused as well (SO_PEERCRED), in case the file's
// mode or directory is loosened. One command per connection: a JSON line in,
// a JSON line out.

// adminTimeout bounds a client's whole exchange, and a command's work in the
// daemon (a maintenance request waits for the VRRP engine).
const adminTimeout = 10 * time.Second

// adminRequest is a command; exactly one field is set.
type adminRequest struct {
	Maintenance *maintenanceRequest `json:"maintenance,omitempty"`
	Backend     *backendRequest     `json:"backend,omitempty"`
}

// maintenanceRequest is `vrrplb maintenance on|off [--instance NAME]`.
type maintenanceRequest struct {
	On       bool   `json:"on"`
	Instance string `json:"instance,omitempty"` // "": every instance
}

// backendRequest is `vrrplb backend drain|enable ADDR [--frontend NAME] [--force]`.
type backendRequest struct {
	Drain    bool   `json:"drain"` // false: enable
	Address  string `json:"address"`
	Frontend string `json:"frontend,omitempty"` // "": every frontend with Address
	Force    bool   `json:"force,omitempty"`
}

// adminReply answers a command: what was done, one line each, or why not.
type adminReply struct {
	Done  []string `json:"done,omitempty"`
	Error string   `json:"error,omitempty"`
}

// adminCommands are the handlers of the admin socket's commands; the
// components that carry a command out fill them in when they are wired. A
// nil handler means nothing of this daemon takes that command.
type adminCommands struct {
	maintenance func(maintenanceRequest) ([]string, error)
	backend     func(backendRequest) ([]string, error)
}

// adminSocket serves the admin socket.
type adminSocket struct {
	path string
	ln   *net.UnixListener
	ino  uint64 // the socket file's inode: stop removes only its own file
	log  *slog.Logger
	uid  int // the daemon's effective uid; root is let in too
	do   func(adminRequest) adminReply
}

// listenAdminSocket makes path's directory if missing and binds the socket
// there with mode 0600. A socket file left by a process that died is
// replaced; one that another process still answers on is taken over, with a
// warning.
func listenAdminSocket(path string, log *slog.Logger, do func(adminRequest) adminReply) (*adminSocket, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("admin socket: %w (set [admin] socket to a path this user can create, or \"\" to disable it)", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("admin socket: %s exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			log.Warn("admin socket: another process answers on this path; taking it over", "socket", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("admin socket: %w", err)
		}
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	ln.SetUnlinkOnClose(false) // stop removes the file if it is still ours
	var st syscall.Stat_t
	if err = os.Chmod(path, 0o600); err == nil {
		err = syscall.Stat(path, &st)
	}
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	return &adminSocket{path: path, ln: ln, ino: st.Ino, log: log, uid: os.Geteuid(), do: do}, nil
}

// Run serves until ctx ends, then removes the socket file.
func (a *adminSocket) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { a.ln.Close() })
	defer stop()
	defer a.remove()
	for {
		c, err := a.ln.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				a.log.Warn("admin socket: accept", "err", err)
				time.Sleep(100 * time.Millisecond)
				continue
			}
			return fmt.Errorf("admin socket: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.serve(c)
		}()
	}
}

// remove deletes the socket file unless another process has taken the
// path over since.
func (a *adminSocket) remove() {
	a.ln.Close()
	var st syscall.Stat_t
	if syscall.Stat(a.path, &st) == nil && st.Ino == a.ino {
		_ = os.Remove(a.path)
	}
}

// serve answers one connection: the peer's uid first, then its command.
func (a *adminSocket) serve(c *net.UnixConn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(adminTimeout))
	enc := json.NewEncoder(c)
	uid, pid, err := peerCred(c)
	if err != nil {
		a.log.Error("admin socket: cannot tell who connected; refused", "err", err)
		return
	}
	if !a.allowed(uid) {
		a.log.Warn("admin socket: command refused: the peer is neither root nor the daemon's user",
			"peer_uid", uid, "peer_pid", pid, "daemon_uid", a.uid)
		_ = enc.Encode(adminReply{Error: fmt.Sprintf("refused: uid %d is neither root nor vrrplb's user (uid %d)", uid, a.uid)})
		return
	}
	line, err := bufio.NewReaderSize(c, 4096).ReadSlice('\n')
	if err != nil {
		a.log.Warn("admin socket: no command read", "peer_uid", uid, "peer_pid", pid, "err", err)
		return
	}
	var req adminRequest
	dec := json.NewDecoder(strings.NewReader(string(line)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		_ = enc.Encode(adminReply{Error: fmt.Sprintf("bad command: %v", err)})
		return
	}
	reply := a.do(req)
	if reply.Error != "" {
		a.log.Warn("admin command failed", "command", req.String(), "peer_uid", uid, "peer_pid", pid, "err", reply.Error)
	} else {
		a.log.Info("admin command", "command", req.String(), "peer_uid", uid, "peer_pid", pid)
	}
	_ = enc.Encode(reply)
}

// allowed reports whether a peer with uid may give commands: root and the
// daemon's own user may.
func (a *adminSocket) allowed(uid int) bool {
	return uid == 0 || uid == a.uid
}

// peerCred is the uid and pid of the process at the other end of c, as the
// kernel recorded them when it connected (SO_PEERCRED).
func peerCred(c *net.UnixConn) (uid, pid int, err error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, 0, err
	}
	var cred *syscall.Ucred
	var serr error
	if err := rc.Control(func(fd uintptr) {
		cred, serr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return 0, 0, err
	}
	if serr != nil {
		return 0, 0, fmt.Errorf("SO_PEERCRED: %w", serr)
	}
	return int(cred.Uid), int(cred.Pid), nil
}

// String is the command as a log line names it.
func (r adminRequest) String() string {
	switch {
	case r.Maintenance != nil:
		s := "maintenance off"
		if r.Maintenance.On {
			s = "maintenance on"
		}
		if r.Maintenance.Instance != "" {
			s += " --instance " + r.Maintenance.Instance
		}
		return s
	case r.Backend != nil:
		s := "backend enable "
		if r.Backend.Drain {
			s = "backend drain "
		}
		s += r.Backend.Address
		if r.Backend.Frontend != "" {
			s += " --frontend " + r.Backend.Frontend
		}
		if r.Backend.Force {
			s += " --force"
		}
		return s
	}
	return "(none)"
}

// run carries out a request with the handlers the daemon wired.
func (cmds *adminCommands) run(req adminRequest) adminReply {
	var done []string
	var err error
	switch {
	case req.Maintenance != nil && req.Backend == nil:
		if cmds.maintenance == nil {
			return adminReply{Error: "this vrrplb cannot put instances in maintenance"}
		}
		done, err = cmds.maintenance(*req.Maintenance)
	case req.Backend != nil && req.Maintenance == nil:
		if cmds.backend == nil {
			return adminReply{Error: "this vrrplb cannot drain or enable backends"}
		}
		done, err = cmds.backend(*req.Backend)
	default:
		return adminReply{Error: "bad command: exactly one of maintenance and backend must be given"}
	}
	if err != nil {
		return adminReply{Error: err.Error()}
	}
	return adminReply{Done: done}
}

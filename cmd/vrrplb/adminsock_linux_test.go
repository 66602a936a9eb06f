package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vrrplb/vrrplb/internal/testroot"
)

// fakeCommands records the requests the socket passes on.
type fakeCommands struct {
	mu   sync.Mutex
	reqs []adminRequest
}

func (f *fakeCommands) do(req adminRequest) adminReply {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, req)
	return adminReply{Done: []string{"did " + req.String()}}
}

func (f *fakeCommands) got() []adminRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]adminRequest(nil), f.reqs...)
}

// startAdminSocket serves an admin socket at path until the test ends.
func startAdminSocket(t *testing.T, path string, logs *syncBuffer, do func(adminRequest) adminReply) *adminSocket {
	t.Helper()
	log := slog.New(slog.NewTextHandler(logs, nil))
	a, err := listenAdminSocket(path, log, do)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("admin socket Run: %v", err)
		}
	})
	return a
}

func TestAdminSocketIsMadeOwnerOnlyAndTakesItsUsersCommands(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "vrrplb", "admin.sock") // the directory is missing
	var logs syncBuffer
	var cmds fakeCommands
	a := startAdminSocket(t, path, &logs, cmds.do)

	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket file mode %v, want a socket with mode 0600", fi.Mode())
	}
	var out bytes.Buffer
	req := adminRequest{Maintenance: &maintenanceRequest{On: true, Instance: "vip"}}
	if err := sendCommand(path, req, &out); err != nil {
		t.Fatalf("a command from the daemon's own user: %v", err)
	}
	if got, want := out.String(), "did maintenance on --instance vip\n"; got != want {
		t.Errorf("printed %q, want %q", got, want)
	}
	if diff := cmp.Diff([]adminRequest{req}, cmds.got()); diff != "" {
		t.Errorf("requests passed on (-want +got):\n%s", diff)
	}
	if !strings.Contains(logs.String(), `msg="admin command" command="maintenance on --instance vip"`) {
		t.Errorf("no log line names the command:\n%s", logs.String())
	}

	a.remove()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after stop the socket file is still there: %v", err)
	}
}

func TestAdminSocketReplacesAStaleSocketButNotAFile(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close() // the file stays, as after a crash
	var logs syncBuffer
	var cmds fakeCommands
	startAdminSocket(t, stale, &logs, cmds.do)
	if err := sendCommand(stale, adminRequest{Backend: &backendRequest{Drain: true, Address: "10.0.0.1:6443"}}, &bytes.Buffer{}); err != nil {
		t.Errorf("a command on a socket that replaced a stale one: %v", err)
	}

	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := listenAdminSocket(file, slog.New(slog.NewTextHandler(&logs, nil)), cmds.do); err == nil || !strings.Contains(err.Error(), "is not a socket") {
		t.Errorf("a socket path that is a regular file: err = %v, want it refused", err)
	}
	if b, _ := os.ReadFile(file); string(b) != "keep me" {
		t.Errorf("the regular file was changed: %q", b)
	}
}

// TestAdminSocketRefusesAnotherUID loosens the socket file's mode to 0666 so
// that a process of another user can connect at all, then connects as uid
// 65534: SO_PEERCRED names it, and the command is refused and logged.
func TestAdminSocketRefusesAnotherUID(t *testing.T) {
	testroot.Require(t, "connects to the admin socket as another uid")
	dir := t.TempDir()
	// uid 65534 must reach the socket through the test's directories.
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "admin.sock")
	var logs syncBuffer
	var cmds fakeCommands
	startAdminSocket(t, path, &logs, cmds.do)
	req := adminRequest{Maintenance: &maintenanceRequest{On: true}}

	// The file's mode alone keeps another user out...
	if _, err := exchangeAsUID(65534, path, req); !errors.Is(err, syscall.EACCES) {
		t.Errorf("connect as uid 65534 to the mode-0600 socket: err = %v, want EACCES", err)
	}
	// ...and when it is loosened, the peer's uid does.
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	reply, err := exchangeAsUID(65534, path, req)
	if err != nil {
		t.Fatal(err)
	}
	if want := "refused: uid 65534 is neither root nor vrrplb's user (uid 0)"; reply.Error != want {
		t.Errorf("reply error %q, want %q", reply.Error, want)
	}
	if got := cmds.got(); len(got) != 0 {
		t.Errorf("a refused command was carried out: %v", got)
	}
	if !strings.Contains(logs.String(), "command refused") || !strings.Contains(logs.String(), "peer_uid=65534") {
		t.Errorf("no log line names the refused uid:\n%s", logs.String())
	}
	// Root still gets in.
	if err := sendCommand(path, req, &bytes.Buffer{}); err != nil {
		t.Errorf("root's command: %v", err)
	}
}

// exchangeAsUID connects to path with its effective uid set to uid on this
// thread alone, sends req and reads the reply. The thread is never handed
// back to the Go scheduler: it exits with the goroutine.
func exchangeAsUID(uid int, path string, req adminRequest) (adminReply, error) {
	type result struct {
		reply adminReply
		err   error
	}
	res := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with its changed uid
		// setresuid(2) on this thread only; syscall.Setresuid would change
		// every thread of the test.
		if _, _, e := syscall.RawSyscall(syscall.SYS_SETRESUID, ^uintptr(0), uintptr(uid), ^uintptr(0)); e != 0 {
			res <- result{err: e}
			return
		}
		fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			res <- result{err: err}
			return
		}
		if err := syscall.Connect(fd, &syscall.SockaddrUnix{Name: path}); err != nil {
			syscall.Close(fd)
			res <- result{err: err}
			return
		}
		f := os.NewFile(uintptr(fd), "admin")
		defer f.Close()
		_ = json.NewEncoder(f).Encode(req) // a refused peer's write may fail: the answer is read anyway
		var r result
		line, err := bufio.NewReader(f).ReadBytes('\n')
		if err == nil {
			err = json.Unmarshal(line, &r.reply)
		}
		r.err = err
		res <- r
	}()
	r := <-res
	return r.reply, r.err
}

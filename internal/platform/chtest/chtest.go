// Package chtest starts a throwaway clickhouse-server from PATH for tests,
// benchmarks and the demo: the package's own config copied to a temp dir with
// its data and log paths and ports rewritten, so nothing on the machine is
// touched and several servers can run at once. Nothing outside tests, benches
// and dev wiring may use it.
package chtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Server is a running clickhouse-server.
type Server struct {
	Dir      string
	TCPAddr  string // native protocol host:port
	HTTPAddr string
	bin      string
	cmd      *exec.Cmd
	exited   chan error
}

// ErrNotInstalled means no clickhouse-server on PATH.
var ErrNotInstalled = errors.New("clickhouse-server not found on PATH (make test installs it: apt-get install clickhouse-server)")

// Binary returns the clickhouse-server path.
func Binary() (string, error) {
	for _, name := range []string{"clickhouse-server", "/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", ErrNotInstalled
}

// Required reports whether tests must fail rather than skip without ClickHouse
// (CI sets TOKENWATCH_REQUIRE_CLICKHOUSE=1).
func Required() bool { return os.Getenv("TOKENWATCH_REQUIRE_CLICKHOUSE") == "1" }

// New starts a server for t and stops it at cleanup. Without clickhouse-server
// it skips the test, or fails it when Required.
func New(t testing.TB) *Server {
	t.Helper()
	s, err := Start(context.Background(), t.TempDir())
	if err != nil {
		if errors.Is(err, ErrNotInstalled) && !Required() {
			t.Skip(err)
		}
		t.Fatalf("start clickhouse: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Start launches clickhouse-server with its data under dir and waits until it
// answers, at most 60 s.
func Start(ctx context.Context, dir string) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	src := "/etc/clickhouse-server"
	cfg, err := os.ReadFile(filepath.Join(src, "config.xml"))
	if err != nil {
		return nil, fmt.Errorf("read packaged config: %w", err)
	}
	users, err := os.ReadFile(filepath.Join(src, "users.xml"))
	if err != nil {
		return nil, fmt.Errorf("read packaged users.xml: %w", err)
	}
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data") + "/"
	logs := filepath.Join(dir, "log") + "/"
	for _, d := range []string{data, logs} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	c := string(cfg)
	c = strings.ReplaceAll(c, "/var/lib/clickhouse/", data)
	c = strings.ReplaceAll(c, "/var/log/clickhouse-server/", logs)
	c = replaceTag(c, "http_port", ports[0])
	c = replaceTag(c, "tcp_port", ports[1])
	c = replaceTag(c, "interserver_http_port", ports[2])
	// The packaged test clusters (test_shard_localhost…) point at 9000: aim
	// them at this server so Distributed tables work in tests.
	c = strings.ReplaceAll(c, "<port>9000</port>", fmt.Sprintf("<port>%d</port>", ports[1]))
	c = regexp.MustCompile(`<level>[a-z]+</level>`).ReplaceAllString(c, "<level>warning</level>")
	if err := os.WriteFile(filepath.Join(dir, "config.xml"), []byte(c), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "users.xml"), users, 0o644); err != nil {
		return nil, err
	}
	s := &Server{Dir: dir, TCPAddr: fmt.Sprintf("127.0.0.1:%d", ports[1]), HTTPAddr: fmt.Sprintf("127.0.0.1:%d", ports[0]), bin: bin}
	if err := s.launch(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Restart starts a stopped or killed server again on the same data and ports.
func (s *Server) Restart(ctx context.Context) error {
	if s.cmd != nil {
		return errors.New("clickhouse-server is still running")
	}
	return s.launch(ctx)
}

func (s *Server) launch(ctx context.Context) error {
	logs := filepath.Join(s.Dir, "log")
	stderr, err := os.OpenFile(filepath.Join(logs, "stderr.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	s.exited = make(chan error, 1)
	s.cmd = exec.Command(s.bin, "--config-file="+filepath.Join(s.Dir, "config.xml"))
	s.cmd.Dir = s.Dir
	s.cmd.Stdout, s.cmd.Stderr = stderr, stderr
	// Its own process group, so a killed test run does not leave it behind
	// attached to the terminal; Pdeathsig stops it if the test binary dies.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		stderr.Close()
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	exited := s.exited
	cmd := s.cmd
	go func() { exited <- cmd.Wait(); stderr.Close() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if err := s.ping(); err == nil {
			return nil
		}
		select {
		case err := <-exited:
			s.cmd = nil
			tail, _ := os.ReadFile(filepath.Join(logs, "clickhouse-server.err.log"))
			return fmt.Errorf("clickhouse-server exited: %v: %s", err, lastLines(string(tail), 5))
		case <-ctx.Done():
			s.Stop()
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			return errors.New("clickhouse-server did not answer within 60s")
		}
	}
}

func (s *Server) ping() error {
	resp, err := http.Get("http://" + s.HTTPAddr + "/?query=SELECT%201")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

// Stop terminates the server and waits for it.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	s.cmd = nil
}

// Kill stops the server abruptly (fault-injection tests).
func (s *Server) Kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		<-s.exited
		s.cmd = nil
	}
}

func replaceTag(c, tag string, port int) string {
	re := regexp.MustCompile(`<` + tag + `>\d+</` + tag + `>`)
	return re.ReplaceAllString(c, fmt.Sprintf("<%s>%d</%s>", tag, port, tag))
}

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// CPUTime is the CPU time (user + system) the running server has used so
// far, from /proc: benchmarks report the server's share of a run beside
// their own.
func (s *Server) CPUTime() (time.Duration, error) {
	if s.cmd == nil || s.cmd.Process == nil {
		return 0, errors.New("clickhouse-server is not running")
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// Fields after the parenthesised command name; utime and stime are the
	// 14th and 15th of the whole line, in clock ticks (USER_HZ, 100 on Linux).
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc stat of clickhouse-server: %d fields", len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc stat of clickhouse-server: %w", err)
	}
	return time.Duration(ut+st) * (time.Second / 100), nil
}

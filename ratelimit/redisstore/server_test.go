package redisstore

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// The tests run their own redis-server processes on 127.0.0.1, one per
// test, on a free port; never a system-wide instance.

var (
	redisBinOnce sync.Once
	redisBin     string
	redisBinErr  string
)

// redisServerPath finds redis-server on PATH. If it is missing and the
// tests run as root, it tries once to install Debian's package (bounded
// to five minutes). If it is still missing the test fails in CI (CI=true)
// and is skipped elsewhere.
func redisServerPath(tb testing.TB) string {
	tb.Helper()
	redisBinOnce.Do(func() {
		if p, err := exec.LookPath("redis-server"); err == nil {
			redisBin = p
			return
		}
		if os.Geteuid() == 0 {
			if apt, err := exec.LookPath("apt-get"); err == nil {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
				defer cancel()
				install := func() error {
					c := exec.CommandContext(ctx, apt, "install", "-y", "-q", "redis-server")
					c.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
					return c.Run()
				}
				if install() != nil {
					_ = exec.CommandContext(ctx, apt, "update", "-q").Run()
					_ = install()
				}
				if p, err := exec.LookPath("redis-server"); err == nil {
					redisBin = p
					return
				}
			}
		}
		redisBinErr = "redis-server not found on PATH (install Debian's redis-server package, e.g. apt-get install -y redis-server)"
	})
	if redisBin == "" {
		if os.Getenv("CI") == "true" {
			tb.Fatal(redisBinErr)
		}
		tb.Skip(redisBinErr)
	}
	return redisBin
}

// redisServer is a redis-server child process on 127.0.0.1 that a test can
// stop, restart on the same port, pause and resume.
type redisServer struct {
	tb   testing.TB
	bin  string
	dir  string
	port int
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// startRedis starts a redis-server for tb, killed in tb's cleanup.
func startRedis(tb testing.TB) *redisServer {
	tb.Helper()
	s := &redisServer{tb: tb, bin: redisServerPath(tb), dir: tb.TempDir()}
	tb.Cleanup(s.Stop)
	var err error
	for range 5 { // the free port may be taken between probe and start
		if s.port, err = freePort(); err != nil {
			tb.Fatal(err)
		}
		if err = s.start(); err == nil {
			return s
		}
	}
	tb.Fatalf("start redis-server: %v", err)
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Addr is the server's address.
func (s *redisServer) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

func (s *redisServer) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	log, err := os.OpenFile(filepath.Join(s.dir, "redis.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer log.Close()
	cmd := exec.Command(s.bin,
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", s.dir)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	exited := func() bool {
		select {
		case <-done:
			return true
		default:
			return false
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if ping(s.Addr()) == nil && !exited() {
			s.cmd, s.done = cmd, done
			return nil
		}
		if time.Now().After(deadline) || exited() {
			_ = cmd.Process.Kill()
			<-done
			b, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
			return &startError{string(b)}
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type startError struct{ log string }

func (e *startError) Error() string { return "redis-server did not answer PING; its log:\n" + e.log }

func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return &startError{line}
	}
	return nil
}

// Stop kills the server (as a crash would) and waits for it to exit.
func (s *redisServer) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// Restart starts the server again on the same port, empty.
func (s *redisServer) Restart() {
	s.tb.Helper()
	if err := s.start(); err != nil {
		s.tb.Fatal(err)
	}
}

// Pause freezes the server (SIGSTOP): connections are accepted by the
// kernel but nothing answers, as with an overloaded or hung Redis.
func (s *redisServer) Pause() { s.signal(syscall.SIGSTOP) }

// Resume undoes Pause.
func (s *redisServer) Resume() { s.signal(syscall.SIGCONT) }

func (s *redisServer) signal(sig os.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		_ = s.cmd.Process.Signal(sig)
	}
}

// newClient returns a go-redis client of addr that honours context
// deadlines, closed in tb's cleanup.
func newClient(tb testing.TB, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

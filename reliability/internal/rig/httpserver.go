package rig

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sturdyai/sturdy/sturdytest"
)

// Conns counts a server's connections through http.Server.ConnState.
type Conns struct {
	opened, closed, hijacked atomic.Int64
}

func (c *Conns) hook(_ net.Conn, s http.ConnState) {
	switch s {
	case http.StateNew:
		c.opened.Add(1)
	case http.StateClosed:
		c.closed.Add(1)
	case http.StateHijacked:
		c.hijacked.Add(1)
	}
}

// Opened is how many connections the server accepted.
func (c *Conns) Opened() int64 { return c.opened.Load() }

// Open is how many connections are open now (accepted, neither closed nor
// hijacked).
func (c *Conns) Open() int64 { return c.opened.Load() - c.closed.Load() - c.hijacked.Load() }

// HTTPServer is an http.Server on a loopback port that counts its
// connections.
type HTTPServer struct {
	URL   string
	Addr  string
	Conns *Conns
	hs    *http.Server
	wg    sync.WaitGroup
}

// StartHTTP serves h on http://127.0.0.1:<random port>.
func StartHTTP(h http.Handler) (*HTTPServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &HTTPServer{URL: "http://" + ln.Addr().String(), Addr: ln.Addr().String(), Conns: &Conns{}}
	s.hs = &http.Server{Handler: h, ConnState: s.Conns.hook, ReadHeaderTimeout: 10 * time.Second}
	s.wg.Go(func() { _ = s.hs.Serve(ln) })
	return s, nil
}

// Close closes the listener and every connection, and waits for Serve to
// return. Handlers still running must end on their own (their request
// contexts are cancelled as their connections close).
func (s *HTTPServer) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	if s.hs.Shutdown(ctx) != nil {
		_ = s.hs.Close()
	}
	cancel()
	s.wg.Wait()
}

// LLM is sturdytest's fake OpenAI-compatible server behind an HTTPServer
// that counts connections.
type LLM struct {
	*sturdytest.Server
	*HTTPServer
}

// StartLLM starts a fake LLM server on a loopback port. wrap, if given,
// wraps its handler (to add faults of one's own).
func StartLLM(cfg sturdytest.Config, wrap ...func(http.Handler) http.Handler) (*LLM, error) {
	srv := sturdytest.NewLLM(cfg)
	var h http.Handler = srv
	for _, w := range wrap {
		h = w(h)
	}
	hs, err := StartHTTP(h)
	if err != nil {
		return nil, err
	}
	return &LLM{Server: srv, HTTPServer: hs}, nil
}

// URL is the server's base URL.
func (l *LLM) URL() string { return l.HTTPServer.URL }

// Close ends every wait of the fake server, then closes the HTTP server.
func (l *LLM) Close() {
	l.Server.Close()
	l.HTTPServer.Close()
}

// EveryNth answers every N-th chat completion (N > 0) with Status, Header
// and an OpenAI-style error body of about 1 KiB, and passes the others on.
// The body is there to be drained: a retried error response must not cost
// its connection.
type EveryNth struct {
	N      int
	Status int
	Header http.Header
	// Sent counts the error answers sent.
	Sent atomic.Int64
	seen atomic.Int64
}

var errorBody = `{"error":{"message":"` + strings.Repeat("busy ", 200) + `","type":"server_error"}}`

// Wrap returns h with the error answers injected.
func (e *EveryNth) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/chat/completions" && e.seen.Add(1)%int64(e.N) == 0 {
			_, _ = io.Copy(io.Discard, r.Body)
			for k, v := range e.Header {
				w.Header()[k] = v
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(e.Status)
			_, _ = io.WriteString(w, errorBody)
			e.Sent.Add(1)
			return
		}
		h.ServeHTTP(w, r)
	})
}

package sturdytest

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Server is a fake OpenAI-compatible inference server. It is an
// http.Handler; Start also serves it on a loopback port. All methods are
// safe for concurrent use, also while requests are being served.
//
// To cut a connection (DownReset, MidStreamCut, a client gone, Close) the
// handler hijacks it; where the ResponseWriter cannot be hijacked (HTTP/2,
// httptest.ResponseRecorder) it panics with http.ErrAbortHandler instead,
// which net/http turns into a silent abort.
type Server struct {
	mu      sync.Mutex // guards cfg, the random sources and the token bucket
	cfg     Config
	rnd     randoms
	bucket  bucket
	created time.Time

	slots slots
	stats *stats

	done      chan struct{} // closed by Close: every wait ends
	closeOnce sync.Once

	trackMu  sync.RWMutex // guards closing against handlers.Add
	closing  bool
	handlers sync.WaitGroup

	hs      *http.Server
	url     string
	serveWG sync.WaitGroup
}

// New returns a server with the given configuration, not listening: use it
// as an http.Handler, or call Start instead.
func NewLLM(cfg Config) *Server {
	cfg = cfg.normalize()
	s := &Server{
		cfg:     cfg,
		created: time.Now(),
		stats:   newStats(),
		done:    make(chan struct{}),
	}
	s.rnd.seed(cfg.Seed)
	s.bucket.reset(cfg.RateLimit, s.created)
	s.slots.init(cfg.Concurrency)
	return s
}

// Start returns a server serving on http://127.0.0.1:<random port>.
// Close it when done.
func StartLLM(cfg Config) (*Server, error) {
	s := NewLLM(cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.url = "http://" + ln.Addr().String()
	s.hs = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
	}
	s.serveWG.Add(1)
	go func() {
		defer s.serveWG.Done()
		_ = s.hs.Serve(ln)
	}()
	return s, nil
}

// URL is the server's base URL, e.g. "http://127.0.0.1:34567" ("" unless
// started with Start). OpenAI clients take URL()+"/v1" as their base URL.
func (s *Server) URL() string { return s.url }

// Name is Config.Name.
func (s *Server) Name() string { return s.Config().Name }

// Close stops the server: every wait (latency, slot queue, stream pacing)
// ends at once, open connections are closed, and Close returns once every
// handler and goroutine of the server has returned. Requests arriving
// afterwards (when used as a plain handler) get 503. Close is idempotent.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.done)
		s.trackMu.Lock()
		s.closing = true
		s.trackMu.Unlock()
		if s.hs != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			if err := s.hs.Shutdown(ctx); err != nil {
				_ = s.hs.Close()
			}
			cancel()
			s.serveWG.Wait()
		}
		s.handlers.Wait()
	})
}

// Config returns the current configuration.
func (s *Server) Config() Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg.normalize()
}

// Update changes the configuration: f gets a copy of the current one to
// modify. Requests already past their start keep the snapshot they took.
// A new Seed restarts the random sources; a new RateLimit capacity or
// bucket size refills the bucket.
func (s *Server) Update(f func(c *Config)) {
	s.mu.Lock()
	old := s.cfg
	c := old.normalize()
	f(&c)
	c = c.normalize()
	s.cfg = c
	if c.Seed != old.Seed {
		s.rnd.seed(c.Seed)
	}
	if c.RateLimit.Capacity != old.RateLimit.Capacity || c.RateLimit.BucketSize != old.RateLimit.BucketSize {
		s.bucket.reset(c.RateLimit, time.Now())
	}
	s.slots.setCap(c.Concurrency) // under s.mu: concurrent Updates apply in order
	s.mu.Unlock()
}

// SetDown sets Config.Down.
func (s *Server) SetDown(m DownMode) { s.Update(func(c *Config) { c.Down = m }) }

// SetLatency sets Config.Latency.
func (s *Server) SetLatency(l Latency) { s.Update(func(c *Config) { c.Latency = l }) }

// SetErrorRate sets Config.ErrorRate.
func (s *Server) SetErrorRate(r float64) { s.Update(func(c *Config) { c.ErrorRate = r }) }

// SetRateLimit sets Config.RateLimit.
func (s *Server) SetRateLimit(r RateLimit) { s.Update(func(c *Config) { c.RateLimit = r }) }

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats { return s.stats.snapshot() }

// SeenCredentials returns every distinct credential (the Bearer token of
// Authorization, the api-key header) the server has received since
// creation or Reset, in order of first appearance (at most 1024).
func (s *Server) SeenCredentials() []string { return s.stats.credentials() }

// Reset zeroes the counters and forgets the credentials seen. InFlight
// keeps counting the requests being handled. Configuration, random
// sources and the token bucket are left alone.
func (s *Server) Reset() { s.stats.reset() }

const (
	pathChat       = "/v1/chat/completions"
	pathEmbeddings = "/v1/embeddings"
	pathModels     = "/v1/models"
	pathHealth     = "/health"
)

// ServeHTTP serves POST /v1/chat/completions, GET /v1/models and
// GET /health.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.track() {
		writeError(w, http.StatusServiceUnavailable, "The server is shutting down.", "server_error", "", "")
		return
	}
	defer s.handlers.Done()

	s.mu.Lock()
	cfg := s.cfg // Models is never mutated once stored
	s.mu.Unlock()
	path := r.URL.Path
	switch path {
	case pathChat, pathEmbeddings, pathModels, pathHealth:
	default:
		path = "other"
	}
	creds := credentials(r)
	s.stats.begin(path, creds, cfg.RequiredAPIKey)
	defer s.stats.end()

	w.Header().Set("X-Fakellm-Server", cfg.Name)
	switch cfg.Down {
	case Down503:
		s.error(w, http.StatusServiceUnavailable, "The server is overloaded or not ready yet.", "server_error", "", "")
		return
	case DownReset:
		s.cut(w, true)
		return
	}

	if path == pathHealth {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			s.error(w, http.StatusMethodNotAllowed, "Method not allowed.", "invalid_request_error", "", "")
			return
		}
		s.writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		return
	}
	if strings.HasPrefix(r.URL.Path, "/v1/") && !authorized(cfg.RequiredAPIKey, creds) {
		msg := "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
		if len(creds) > 0 {
			msg = "Incorrect API key provided: " + mask(creds[0]) + ". You can find your API key at https://platform.openai.com/account/api-keys."
		}
		s.error(w, http.StatusUnauthorized, msg, "invalid_request_error", "", "invalid_api_key")
		return
	}
	switch {
	case path == pathChat && r.Method == http.MethodPost:
		s.chat(w, r, &cfg)
	case path == pathEmbeddings && r.Method == http.MethodPost:
		s.embeddings(w, r, &cfg)
	case path == pathModels && r.Method == http.MethodGet:
		s.models(w, &cfg)
	default:
		s.error(w, http.StatusNotFound, "Invalid URL ("+r.Method+" "+r.URL.Path+")", "invalid_request_error", "", "")
	}
}

// track registers a handler unless the server is closing.
func (s *Server) track() bool {
	s.trackMu.RLock()
	defer s.trackMu.RUnlock()
	if s.closing {
		return false
	}
	s.handlers.Add(1)
	return true
}

// sleep waits d; it reports false if the request or the server ended first.
func (s *Server) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return s.alive(ctx)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.done:
		return false
	}
}

func (s *Server) alive(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return false
	case <-s.done:
		return false
	default:
		return true
	}
}

// cut closes the request's connection on purpose (an Aborted request).
func (s *Server) cut(w http.ResponseWriter, reset bool) {
	s.stats.aborted()
	abort(w, reset)
}

// giveUp ends a request whose client went away or whose server is
// closing: the connection is closed so that no implicit or partial
// response can pass for a complete one.
func (s *Server) giveUp(w http.ResponseWriter) {
	s.stats.canceled()
	abort(w, false)
}

// abort closes the request's connection without (the rest of) a response.
// reset asks for a TCP RST instead of an orderly close; use it only when
// nothing of the response is in flight, since a RST discards unsent data.
func abort(w http.ResponseWriter, reset bool) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// HTTP/2, or a wrapper that cannot hijack: net/http cuts the
		// stream or connection and does not log this panic.
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok && reset {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// credentials returns the credentials a request carries.
func credentials(r *http.Request) []string {
	var creds []string
	if a := r.Header.Get("Authorization"); a != "" {
		if tok, ok := strings.CutPrefix(a, "Bearer "); ok {
			a = tok
		}
		creds = append(creds, a)
	}
	if k := r.Header.Get("Api-Key"); k != "" {
		creds = append(creds, k)
	}
	return creds
}

func authorized(required string, creds []string) bool {
	if required == "" {
		return true
	}
	for _, c := range creds {
		if c == required {
			return true
		}
	}
	return false
}

// mask keeps the ends of a key, as OpenAI's error message does.
func mask(k string) string {
	if len(k) <= 8 {
		return strings.Repeat("*", len(k))
	}
	return k[:3] + strings.Repeat("*", len(k)-7) + k[len(k)-4:]
}

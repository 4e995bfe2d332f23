package sturdytest

import "github.com/sturdyai/sturdy/internal/fakellm"

// Server is a fake OpenAI-compatible inference server (POST
// /v1/chat/completions, streaming or not; GET /v1/models; GET /health).
type Server = fakellm.Server

// Config is a Server's behaviour and faults.
type Config = fakellm.Config

// Latency is a fixed delay plus an optional lognormal one.
type Latency = fakellm.Latency

// RateLimit answers 429 with Retry-After headers.
type RateLimit = fakellm.RateLimit

// DownMode is how a Server is down.
type DownMode = fakellm.DownMode

// Stats is a snapshot of a Server's counters.
type Stats = fakellm.Stats

// The ways a Server can be down.
const (
	Up        = fakellm.Up
	Down503   = fakellm.Down503
	DownReset = fakellm.DownReset
)

// StartLLM starts a Server on http://127.0.0.1:<random port>. Close it
// when done; Close returns once no goroutine of the server is left.
func StartLLM(cfg Config) (*Server, error) { return fakellm.Start(cfg) }

// NewLLM returns a Server that is not listening, for use as an
// http.Handler (for example in httptest.NewServer).
func NewLLM(cfg Config) *Server { return fakellm.New(cfg) }

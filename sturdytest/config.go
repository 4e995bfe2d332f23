package sturdytest

import (
	"math"
	"slices"
	"time"
)

// DefaultMaxBodyBytes bounds a request body when Config.MaxBodyBytes is zero.
const DefaultMaxBodyBytes = 4 << 20

// Config is a server's behaviour. Pass one to New or Start; change it while
// the server is serving with Server.Update or the Set methods. Each request
// reads one consistent snapshot of it when it arrives (stream pacing and
// cuts use that snapshot to the end of the stream).
type Config struct {
	// Name identifies the server in replies (the default reply text, the
	// X-Fakellm-Server header, /v1/models owned_by). Default "fakellm".
	Name string
	// Models the server accepts; a request for any other model gets 404
	// model_not_found. Empty accepts any model. /v1/models lists these.
	Models []string
	// Seed makes every random choice (latency, errors, 429 shares)
	// reproducible: the same seed and the same sequence of requests give
	// the same answers.
	Seed uint64

	// Reply is the assistant's content. Default "Hello from <Name>, this is
	// <model> speaking." Streams send it one word per chunk.
	Reply string
	// Latency is waited before the response headers of a chat completion
	// (after any wait for a concurrency slot).
	Latency Latency
	// SlowHeaders is an extra wait before the response headers.
	SlowHeaders time.Duration
	// SlowFirstByte is a wait after the headers are sent (and flushed)
	// before the first byte of the body, streaming or not.
	SlowFirstByte time.Duration
	// ChunkDelay is the wait between two stream chunks.
	ChunkDelay time.Duration

	// ErrorRate is the share of chat completions and embeddings (0..1)
	// answered 500.
	ErrorRate float64
	// RateLimit answers 429 to some or all chat completions.
	RateLimit RateLimit
	// Down simulates an outage of every endpoint, /health included.
	Down DownMode

	// MidStreamCut > 0 aborts a stream's connection after that many data
	// chunks (the first chunk carries the role) have been flushed; if the
	// stream has fewer, it is cut just before `data: [DONE]`. The client
	// sees an error reading the body (io.ErrUnexpectedEOF for HTTP/1.1).
	MidStreamCut int
	// TruncateStream ends streams cleanly but without `data: [DONE]`.
	TruncateStream bool

	// ContextWindow > 0 answers 400 context_length_exceeded when the
	// estimated prompt tokens exceed it. The estimate is, summed over the
	// messages, ceil(len(text)/4) where text is the message's content
	// string or the concatenated text of its content parts.
	ContextWindow int
	// RequiredAPIKey, if set, must come as "Authorization: Bearer <key>"
	// or "api-key: <key>" on /v1/ requests; otherwise 401 invalid_api_key.
	RequiredAPIKey string

	// Concurrency > 0 is the number of chat completions served at once;
	// the others queue for a slot (so load raises latency). A slot is held
	// from before Latency until the response is complete.
	Concurrency int
	// MaxBodyBytes bounds request bodies (413 above). Default 4 MiB.
	MaxBodyBytes int64
}

// Latency is a fixed delay plus an optional lognormal one, drawn from the
// server's seeded random source.
type Latency struct {
	// Fixed is always waited.
	Fixed time.Duration
	// Median > 0 adds a lognormal delay with this median ...
	Median time.Duration
	// ... and this shape (the standard deviation of its logarithm).
	// 0 makes the added delay exactly Median.
	Sigma float64
	// Max > 0 caps the total.
	Max time.Duration
}

// RateLimit answers 429 with Retry-After, retry-after-ms and
// x-ratelimit-* headers. The triggers add up: a request is limited if any
// of them says so.
type RateLimit struct {
	// Always limits every chat completion.
	Always bool
	// Share limits this share (0..1) of chat completions, chosen by the
	// seeded random source.
	Share float64
	// Capacity > 0 is the number of requests per second served; requests
	// above it are limited (token bucket of BucketSize, starting full).
	Capacity float64
	// BucketSize is the token bucket's depth. Default ceil(Capacity/10),
	// at least 1 (100 ms of capacity).
	BucketSize int
	// BurstPeriod and BurstLength limit every chat completion during the
	// first BurstLength of every BurstPeriod, counted from the server's
	// creation: "429 in bursts".
	BurstPeriod, BurstLength time.Duration
	// RetryAfter is the hint sent. Zero means computed: the time until the
	// bucket has a token, or until the burst ends; otherwise 1 s.
	RetryAfter time.Duration
	// NoRetryAfter omits the Retry-After and retry-after-ms headers.
	NoRetryAfter bool
}

// DownMode is how a server is down.
type DownMode int

const (
	// Up serves normally.
	Up DownMode = iota
	// Down503 answers every request 503 (without Retry-After).
	Down503
	// DownReset closes every connection without a response, resetting it
	// (TCP RST) where it can: the client sees a transport error.
	DownReset
)

// String returns "up", "down-503" or "down-reset".
func (m DownMode) String() string {
	switch m {
	case Up:
		return "up"
	case Down503:
		return "down-503"
	case DownReset:
		return "down-reset"
	}
	return "unknown"
}

// normalize fills defaults and copies what the caller could still mutate.
func (c Config) normalize() Config {
	if c.Name == "" {
		c.Name = "fakellm"
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	c.Models = slices.Clone(c.Models)
	return c
}

func (c *Config) acceptsModel(m string) bool {
	return len(c.Models) == 0 || slices.Contains(c.Models, m)
}

func (c *Config) reply(model string) string {
	if c.Reply != "" {
		return c.Reply
	}
	return "Hello from " + c.Name + ", this is " + model + " speaking."
}

func (r RateLimit) bucketSize() float64 {
	if r.BucketSize > 0 {
		return float64(r.BucketSize)
	}
	return max(1, math.Ceil(r.Capacity/10))
}

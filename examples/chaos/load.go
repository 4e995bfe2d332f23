package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// arrival is one call of the open-loop schedule.
type arrival struct {
	At   time.Duration // from the start of the load
	Long bool          // prompt too long for the primary's context window
}

// schedule draws the seeded Poisson arrivals of a run: exponential gaps of
// mean 1/rate, for duration. Both clients get the same schedule.
func schedule(seed uint64, rate float64, d time.Duration, longShare float64) []arrival {
	r := rand.New(rand.NewPCG(seed, 0x6368616f73)) // "chaos"
	var out []arrival
	t := 0.0
	for len(out) < maxCalls {
		t += r.ExpFloat64() / rate
		at := time.Duration(t * float64(time.Second))
		if at >= d {
			break
		}
		out = append(out, arrival{At: at, Long: r.Float64() < longShare})
	}
	return out
}

// record is what one call got.
type record struct {
	Start    time.Duration // scheduled start, from the start of the load
	Latency  time.Duration
	OK       bool
	Tier     int  // tier that served it; -1 if it failed
	Status   int  // HTTP status of the answer; 0 for a transport error
	Finished bool // false if the call never ran or Ctrl-C cut it
}

// caller sends one chat completion and returns the final response.
type caller interface {
	Call(ctx context.Context, body []byte) (*http.Response, error)
}

// counters are read by the progress display while the load runs.
type counters struct {
	started, done, ok, fallback atomic.Int64
}

// maxInFlight bounds the goroutines of one client's load; a call arriving
// when that many are running fails at once (the client is saturated).
const maxInFlight = 4096

// runLoad starts the calls of sched at their times after start, each with
// its own deadline, and waits for all of them. It stops starting calls when
// ctx is done; calls in flight then are cancelled and not counted. It fills
// recs, which must have len(sched) entries.
func runLoad(ctx context.Context, c caller, sched []arrival, start time.Time, timeout time.Duration, recs []record, cnt *counters) {
	var wg sync.WaitGroup
	defer wg.Wait()
	sem := make(chan struct{}, maxInFlight)
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for i, a := range sched {
		recs[i] = record{Start: a.At, Tier: -1}
		if wait := time.Until(start.Add(a.At)); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		} else if ctx.Err() != nil {
			return
		}
		cnt.started.Add(1)
		select {
		case sem <- struct{}{}:
		default:
			recs[i].Finished = true
			cnt.done.Add(1)
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			call(ctx, c, a, timeout, &recs[i], cnt)
		})
	}
}

// call runs one call and fills rec.
func call(ctx context.Context, c caller, a arrival, timeout time.Duration, rec *record, cnt *counters) {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t0 := time.Now()
	resp, err := c.Call(cctx, requestBody(a.Long))
	var model string
	if err == nil {
		rec.Status = resp.StatusCode
		model, err = readModel(resp)
	}
	rec.Latency = time.Since(t0)
	if ctx.Err() != nil { // interrupted: neither a success nor a failure
		return
	}
	rec.Finished = true
	if err == nil && rec.Status == http.StatusOK {
		switch model {
		case primaryModel:
			rec.OK, rec.Tier = true, 0
		case fallbackModel:
			rec.OK, rec.Tier = true, 1
			cnt.fallback.Add(1)
		}
	}
	if rec.OK {
		cnt.ok.Add(1)
	}
	cnt.done.Add(1)
}

// readModel reads and closes the body and returns the answer's "model".
func readModel(resp *http.Response) (string, error) {
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		return "", err
	}
	var v struct {
		Object string `json:"object"`
		Model  string `json:"model"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return "", err
	}
	if v.Object != "chat.completion" {
		return "", fmt.Errorf("unexpected object %q", v.Object)
	}
	return v.Model, nil
}

var (
	shortBody = mustBody("Say hello in one short sentence.")
	// About 12 000 tokens by the servers' len/4 estimate: more than the
	// primary's context window, well within the fallback's.
	longBody = mustBody(strings.Repeat("Summarise this long document. ", 1600))
)

func mustBody(prompt string) []byte {
	b, err := json.Marshal(map[string]any{
		"model":      primaryModel,
		"max_tokens": 16,
		"messages":   []map[string]string{{"role": "user", "content": prompt}},
	})
	if err != nil {
		panic(err)
	}
	return b
}

func requestBody(long bool) []byte {
	if long {
		return longBody
	}
	return shortBody
}

// newBaseTransport returns the connection pool each client builds on: the
// same for both, with room for the load's concurrency.
func newBaseTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	t.IdleConnTimeout = 30 * time.Second
	return t
}

// newChatRequest builds the POST of one call to baseURL.
func newChatRequest(ctx context.Context, baseURL string, body []byte) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, baseURL+"/v1/chat/completions", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	return req, nil
}

var errNoReplica = errors.New("chaos: no replica")

package main

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/sturdyai/sturdy"
)

// The plain client's retry loop, the kind most services write by hand (and
// close to openai-go's defaults, with one more retry and shorter waits).
const (
	plainAttempts     = 4 // the first and 3 retries
	plainBaseBackoff  = 100 * time.Millisecond
	plainMaxBackoff   = time.Second
	plainMaxRetryWait = time.Second
)

// roundRobin is an http.RoundTripper that sends each request to the next
// replica in turn: what a client does with a list of base URLs and no
// knowledge of their health.
type roundRobin struct {
	base  http.RoundTripper
	hosts []*url.URL
	next  atomic.Uint64
}

func newRoundRobin(base http.RoundTripper, urls []string) (*roundRobin, error) {
	rr := &roundRobin{base: base}
	for _, u := range urls {
		p, err := url.Parse(u)
		if err != nil {
			return nil, err
		}
		rr.hosts = append(rr.hosts, p)
	}
	return rr, nil
}

func (rr *roundRobin) RoundTrip(req *http.Request) (*http.Response, error) {
	if len(rr.hosts) == 0 {
		return nil, errNoReplica
	}
	h := rr.hosts[(rr.next.Add(1)-1)%uint64(len(rr.hosts))]
	// RoundTrip must not modify the request it was given.
	r := req.Clone(req.Context())
	r.URL.Scheme, r.URL.Host, r.Host = h.Scheme, h.Host, ""
	return rr.base.RoundTrip(r)
}

// plainClient retries a call on a 5xx, a 429 or a transport error, each
// attempt going to the next replica through the round-robin transport.
type plainClient struct {
	hc *http.Client
}

func newPlainClient(base http.RoundTripper, urls []string) (*plainClient, error) {
	rr, err := newRoundRobin(base, urls)
	if err != nil {
		return nil, err
	}
	return &plainClient{hc: &http.Client{Transport: rr}}, nil
}

func (p *plainClient) Call(ctx context.Context, body []byte) (*http.Response, error) {
	var (
		resp *http.Response
		err  error
	)
	for n := range plainAttempts {
		if n > 0 {
			wait := time.Duration(rand.Int64N(int64(min(plainMaxBackoff, plainBaseBackoff<<(n-1)))))
			if resp != nil {
				if ra, ok := sturdy.RetryAfterFromHeader(resp.Header, time.Now()); ok {
					wait = min(ra, plainMaxRetryWait)
				}
				drain(resp)
			}
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			case <-t.C:
			}
		}
		var req *http.Request
		req, err = newChatRequest(ctx, "http://primary.invalid", body)
		if err != nil {
			return nil, err
		}
		resp, err = p.hc.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			continue
		}
		if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode < 500 {
			return resp, nil
		}
	}
	return resp, err
}

// drain reads a little of a body we do not want and closes it, so that
// its connection can be reused.
func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

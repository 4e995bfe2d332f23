// Command soak runs sturdy's adapters against mixed real faults at a steady
// rate for a bounded time and reports memory and goroutines at the start
// and the end: a leak shows as growth that does not come back.
//
// Everything runs in this process on 127.0.0.1: toxiproxy (in-process),
// fake OpenAI-compatible servers behind it for httpmw (two tiers), and
// grpc-go TestService servers behind it for grpcmw. Every -fault-every the
// fault changes: none, connection refused, reset, black hole, latency with
// jitter, a cut mid-stream, slow bandwidth, 500s, 429s, and a total outage
// of every endpoint.
//
//	go run ./cmd/soak -duration 3m -rate 50
//
// It is not part of go test; the reliability tests are.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/degrade"
	"github.com/sturdyai/sturdy/failover"
	"github.com/sturdyai/sturdy/grpcmw"
	"github.com/sturdyai/sturdy/health"
	"github.com/sturdyai/sturdy/hedge"
	"github.com/sturdyai/sturdy/httpmw"
	"github.com/sturdyai/sturdy/reliability/internal/rig"
	"github.com/sturdyai/sturdy/sturdytest"
)

func main() {
	duration := flag.Duration("duration", 3*time.Minute, "how long to run (bounded: at most 1h)")
	rate := flag.Int("rate", 50, "calls per second, split between httpmw and grpcmw")
	every := flag.Duration("fault-every", 10*time.Second, "how long each fault lasts")
	inflight := flag.Int("max-inflight", 256, "calls in flight at most; beyond it a tick is skipped (and counted)")
	report := flag.Duration("report", 15*time.Second, "progress report interval")
	flag.Parse()
	if *duration <= 0 || *duration > time.Hour || *rate <= 0 || *rate > 1000 || *every <= 0 {
		log.Fatal("soak: -duration must be in (0, 1h], -rate in (0, 1000], -fault-every > 0")
	}
	if err := run(*duration, *rate, *every, *inflight, *report); err != nil {
		log.Fatal(err)
	}
}

type counters struct {
	calls, ok, errs, cut, skipped, badErr atomic.Int64
	mu                                    sync.Mutex
	slowest                               time.Duration
}

func (c *counters) took(d time.Duration) {
	c.mu.Lock()
	c.slowest = max(c.slowest, d)
	c.mu.Unlock()
}

type snapshot struct {
	heapAlloc, heapSys, sys uint64
	goroutines              int
}

func measure() snapshot {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return snapshot{heapAlloc: m.HeapAlloc, heapSys: m.HeapSys, sys: m.Sys, goroutines: runtime.NumGoroutine()}
}

func (s snapshot) String() string {
	return fmt.Sprintf("HeapAlloc %.1f MiB, HeapSys %.1f MiB, Sys %.1f MiB, goroutines %d",
		float64(s.heapAlloc)/(1<<20), float64(s.heapSys)/(1<<20), float64(s.sys)/(1<<20), s.goroutines)
}

func run(duration time.Duration, rate int, every time.Duration, maxInflight int, reportEvery time.Duration) error {
	before := measure()
	toxi := rig.StartToxi()
	defer toxi.Close()

	// httpmw: tier0 a, b, c; tier1 d.
	var llms []*rig.LLM
	proxies := map[string]*rig.Proxy{}
	tiers := []degrade.Tier{{Name: "tier0", Model: "big"}, {Name: "tier1", Model: "small"}}
	eps := make([][]httpmw.Endpoint, len(tiers))
	for i, n := range []string{"a", "b", "c", "d"} {
		l, err := rig.StartLLM(sturdytest.Config{Name: n, Seed: uint64(i + 1), Latency: sturdytest.Latency{Median: 2 * time.Millisecond, Sigma: 0.5}, ChunkDelay: time.Millisecond})
		if err != nil {
			return err
		}
		defer l.Close()
		llms = append(llms, l)
		p, err := toxi.Proxy("http-"+n, l.Addr)
		if err != nil {
			return err
		}
		proxies["http-"+n] = p
		t := 0
		if n == "d" {
			t = 1
		}
		eps[t] = append(eps[t], httpmw.URL(n, p.URL(), http.Header{"Authorization": {"Bearer sk-" + n}}))
	}
	count := &rig.CountingTransport{Base: &http.Transport{MaxIdleConnsPerHost: 32}}
	tr, err := httpmw.NewTransport(count, httpmw.WithTier(tiers[0], eps[0]...), httpmw.WithTier(tiers[1], eps[1]...),
		httpmw.WithTTFBTimeout(300*time.Millisecond), httpmw.WithResponseTimeout(300*time.Millisecond),
		httpmw.WithFailover(failover.Config{}),
		httpmw.WithHedge(hedge.Config{}),
		httpmw.WithProbes(health.ProbeConfig{Interval: time.Second, Timeout: 300 * time.Millisecond}))
	if err != nil {
		return err
	}
	client := &http.Client{Transport: tr}

	// grpcmw: one tier of three.
	var gsrv []*rig.GRPCServer
	var geps []grpcmw.Endpoint
	for _, n := range []string{"ga", "gb", "gc"} {
		s, err := rig.StartGRPC(n)
		if err != nil {
			return err
		}
		defer s.Stop()
		gsrv = append(gsrv, s)
		p, err := toxi.Proxy("grpc-"+n, s.Addr)
		if err != nil {
			return err
		}
		proxies["grpc-"+n] = p
		geps = append(geps, grpcmw.Target(n, p.Addr()))
	}
	gcount := &rig.CountingInterceptor{}
	gc, err := grpcmw.New(grpcmw.WithTier(degrade.Tier{Name: "tier0"}, geps...),
		grpcmw.WithDialOptions(append(gcount.DialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second}, MinConnectTimeout: time.Second}))...),
		grpcmw.WithFailover(failover.Config{AttemptTimeout: 300 * time.Millisecond}), grpcmw.WithHedge(hedge.Config{}),
		grpcmw.WithProbes(health.ProbeConfig{Interval: time.Second, Timeout: 300 * time.Millisecond}))
	if err != nil {
		return err
	}
	stub := testpb.NewTestServiceClient(gc)

	faults := []struct {
		name  string
		apply func() error
	}{
		{"none", func() error { return nil }},
		{"refused a, ga", func() error { return errors.Join(proxies["http-a"].Disable(), proxies["grpc-ga"].Disable()) }},
		{"reset_peer b, gb", func() error {
			return errors.Join(proxies["http-b"].Toxic("t", "reset_peer", "upstream", map[string]any{"timeout": 0}),
				proxies["grpc-gb"].Toxic("t", "reset_peer", "upstream", map[string]any{"timeout": 0}))
		}},
		{"black hole c, gc", func() error {
			return errors.Join(proxies["http-c"].Toxic("t", "timeout", "downstream", map[string]any{"timeout": 0}),
				proxies["grpc-gc"].Toxic("t", "timeout", "downstream", map[string]any{"timeout": 0}))
		}},
		{"latency 150±100ms a, ga", func() error {
			return errors.Join(proxies["http-a"].Toxic("t", "latency", "downstream", map[string]any{"latency": 150, "jitter": 100}),
				proxies["grpc-ga"].Toxic("t", "latency", "downstream", map[string]any{"latency": 150, "jitter": 100}))
		}},
		{"limit_data 300B b, gb", func() error {
			return errors.Join(proxies["http-b"].Toxic("t", "limit_data", "downstream", map[string]any{"bytes": 300}),
				proxies["grpc-gb"].Toxic("t", "limit_data", "downstream", map[string]any{"bytes": 300}))
		}},
		{"bandwidth 1KB/s c, gc", func() error {
			return errors.Join(proxies["http-c"].Toxic("t", "bandwidth", "downstream", map[string]any{"rate": 1}),
				proxies["grpc-gc"].Toxic("t", "bandwidth", "downstream", map[string]any{"rate": 1}))
		}},
		{"500s on a (30%), 429s on b (30%)", func() error {
			llms[0].SetErrorRate(0.3)
			llms[1].SetRateLimit(sturdytest.RateLimit{Share: 0.3, RetryAfter: 200 * time.Millisecond})
			return nil
		}},
		{"total outage", func() error {
			var errs []error
			for _, p := range proxies {
				errs = append(errs, p.Disable())
			}
			return errors.Join(errs...)
		}},
	}
	clear := func() error {
		var errs []error
		for _, p := range proxies {
			errs = append(errs, p.Clear())
		}
		for _, l := range llms {
			l.SetErrorRate(0)
			l.SetRateLimit(sturdytest.RateLimit{})
		}
		return errors.Join(errs...)
	}

	var c counters
	start := measure()
	fmt.Printf("soak: %v at %d calls/s, faults change every %v\n", duration, rate, every)
	fmt.Printf("start (servers and clients up): %v\n", start)
	t0 := time.Now()
	sem := make(chan struct{}, maxInflight)
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / time.Duration(rate))
	rep := time.NewTicker(reportEvery)
	fault := -1
	var i int64
loop:
	for {
		select {
		case now := <-tick.C:
			el := now.Sub(t0)
			if el >= duration {
				break loop
			}
			if f := int(el/every) % len(faults); f != fault {
				fault = f
				if err := clear(); err != nil {
					return err
				}
				if err := faults[f].apply(); err != nil {
					return err
				}
				fmt.Printf("%7.1fs fault: %s\n", el.Seconds(), faults[f].name)
			}
			select {
			case sem <- struct{}{}:
			default:
				c.skipped.Add(1)
				continue
			}
			i++
			n := i
			wg.Go(func() {
				defer func() { <-sem }()
				if n%2 == 0 {
					httpCall(client, &c, n%4 == 1)
				} else {
					grpcCall(stub, &c)
				}
			})
		case <-rep.C:
			fmt.Printf("%7.1fs calls %d ok %d errors %d cut %d skipped %d | attempts http %d grpc %d | goroutines %d\n",
				time.Since(t0).Seconds(), c.calls.Load(), c.ok.Load(), c.errs.Load(), c.cut.Load(), c.skipped.Load(),
				count.Path("/v1/chat/completions"), gcount.N(), runtime.NumGoroutine())
		}
	}
	tick.Stop()
	rep.Stop()
	wg.Wait()
	_ = clear()
	end := measure()
	attempts := count.Path("/v1/chat/completions") + gcount.N()
	fmt.Printf("end (load done, clients still up): %v\n", end)
	fmt.Printf("calls %d: ok %d, errors %d (%d not a *sturdy.Error), cut after first byte %d, skipped ticks %d; attempts %d (%.2f per call); slowest %v\n",
		c.calls.Load(), c.ok.Load(), c.errs.Load(), c.badErr.Load(), c.cut.Load(), c.skipped.Load(), attempts,
		float64(attempts)/float64(max(1, c.calls.Load())), c.slowest.Round(time.Millisecond))
	_ = tr.Close()
	tr.CloseIdleConnections()
	_ = gc.Close()
	toxi.Close()
	for _, l := range llms {
		l.Close()
	}
	for _, s := range gsrv {
		s.Stop()
	}
	time.Sleep(500 * time.Millisecond)
	after := measure()
	fmt.Printf("after teardown: %v (before setup: %v)\n", after, before)
	if after.goroutines > before.goroutines {
		fmt.Println("goroutines left after teardown:")
		_ = pprof.Lookup("goroutine").WriteTo(os.Stdout, 1)
	}
	if c.badErr.Load() > 0 {
		os.Exit(1)
	}
	return nil
}

const deadline = 3 * time.Second

func httpCall(client *http.Client, c *counters, stream bool) {
	c.calls.Add(1)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	defer func() { c.took(time.Since(start)) }()
	body, _ := json.Marshal(map[string]any{"model": "big", "stream": stream, "messages": []map[string]string{{"role": "user", "content": "soak"}}})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://llm.invalid/v1/chat/completions", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		c.errs.Add(1)
		if _, ok := errors.AsType[*sturdy.Error](err); !ok {
			c.badErr.Add(1)
		}
		return
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	switch {
	case resp.StatusCode != http.StatusOK:
		c.errs.Add(1)
	case err != nil:
		c.cut.Add(1)
	default:
		c.ok.Add(1)
	}
}

func grpcCall(stub testpb.TestServiceClient, c *counters) {
	c.calls.Add(1)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	defer func() { c.took(time.Since(start)) }()
	if _, err := stub.UnaryCall(ctx, &testpb.SimpleRequest{ResponseSize: 256}); err != nil {
		c.errs.Add(1)
		if _, ok := errors.AsType[*sturdy.Error](err); !ok {
			c.badErr.Add(1)
		}
		return
	}
	c.ok.Add(1)
}

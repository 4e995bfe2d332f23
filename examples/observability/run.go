package main

import (
	"github.com/sturdyai/sturdy/examples/internal/cli"

	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sturdyai/sturdy/degrade"
	"github.com/sturdyai/sturdy/health"
	"github.com/sturdyai/sturdy/hedge"
	"github.com/sturdyai/sturdy/httpmw"
	"github.com/sturdyai/sturdy/sturdytest"
)

type config struct {
	listen     string
	duration   time.Duration
	linger     time.Duration
	workers    int
	maxCalls   int
	traces     int
	hedgeDelay time.Duration
	probe      time.Duration
	render     string        // a PNG of the dashboard, drawn from the run's scrapes
	every      time.Duration // the render's scrape interval
}

func (c config) validate() error {
	host, _, err := net.SplitHostPort(c.listen)
	switch {
	case err != nil:
		return fmt.Errorf("-listen %q: %w", c.listen, err)
	case host != "127.0.0.1":
		return fmt.Errorf("-listen %q: this example serves /metrics on 127.0.0.1 only", c.listen)
	case c.duration <= 0 || c.duration > 10*time.Minute:
		return fmt.Errorf("-duration %v: want more than 0 and at most 10m", c.duration)
	case c.linger < 0 || c.linger > 24*time.Hour:
		return fmt.Errorf("-linger %v: want 0 to 24h", c.linger)
	case c.workers < 1 || c.workers > 64:
		return fmt.Errorf("-workers %d: want 1 to 64", c.workers)
	case c.maxCalls < 1:
		return fmt.Errorf("-calls %d: want at least 1", c.maxCalls)
	case c.traces < 0:
		return fmt.Errorf("-traces %d: want 0 or more", c.traces)
	case c.hedgeDelay <= 0:
		return fmt.Errorf("-hedge-delay %v: want more than 0", c.hedgeDelay)
	case c.probe <= 0:
		return fmt.Errorf("-probe %v: want more than 0", c.probe)
	case c.render != "" && !strings.HasSuffix(c.render, ".png"):
		return fmt.Errorf("-render %q: want a .png file", c.render)
	case c.every < 100*time.Millisecond || c.every > 10*time.Second:
		return fmt.Errorf("-render-every %v: want 100ms to 10s", c.every)
	}
	return nil
}

// callTimeout bounds one call.
const callTimeout = 5 * time.Second

// loadDone is printed when the traffic is over and /metrics holds its
// final values.
const loadDone = "load done"

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("observability", flag.ContinueOnError)
	var cfg config
	fs.StringVar(&cfg.listen, "listen", "127.0.0.1:9464", "address of the /metrics endpoint (127.0.0.1 only; port 0 picks one)")
	fs.DurationVar(&cfg.duration, "duration", 20*time.Second, "how long to send traffic, in four phases of faults")
	fs.DurationVar(&cfg.linger, "linger", 0, "keep serving /metrics this long after the traffic (for a Prometheus to scrape); an interrupt ends it")
	fs.IntVar(&cfg.workers, "workers", 4, "concurrent callers")
	fs.IntVar(&cfg.maxCalls, "calls", 20000, "stop after this many calls even if -duration has not passed")
	fs.IntVar(&cfg.traces, "traces", 2, "print the spans of this many calls (the first ones) as JSON")
	fs.DurationVar(&cfg.hedgeDelay, "hedge-delay", 50*time.Millisecond, "hedge a call not answered within this")
	fs.DurationVar(&cfg.probe, "probe", 500*time.Millisecond, "interval of the /health probes")
	fs.StringVar(&cfg.render, "render", "", "draw dashboard.json's panels from scrapes of /metrics taken during the run into this PNG")
	fs.DurationVar(&cfg.every, "render-every", time.Second, "-render's scrape interval; the rate window is "+fmt.Sprint(rateWindowScrapes)+" of them")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: observability [flags]\n\n"+
			"Sends calls through sturdy's httpmw to local fake model servers with faults, prints\n"+
			"a few traces and serves the sturdy.* metrics on /metrics for Prometheus.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := cli.ParseFlags(fs, args, stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if err := cfg.validate(); err != nil {
		return cli.UsageError{Err: err}
	}
	out := &syncWriter{w: stdout}
	var (
		dashTitle string
		panels    []dashboardPanel
	)
	if cfg.render != "" {
		// Before any traffic: a query the renderer cannot read fails now.
		var err error
		if dashTitle, panels, err = readDashboard(dashboardJSON); err != nil {
			return err
		}
	}

	tel, err := newTelemetry(out, cfg.listen, cfg.traces)
	if err != nil {
		return err
	}
	defer tel.shutdown()

	fl, err := startFleet()
	if err != nil {
		return err
	}
	defer fl.close()

	tr, err := httpmw.NewTransport(nil,
		httpmw.WithTier(degrade.Tier{Name: "primary", Model: "gpt-4o"}, fl.primary...),
		httpmw.WithTier(degrade.Tier{Name: "fallback", Model: "gpt-4o-mini"}, fl.fallback...),
		httpmw.WithHedge(hedge.Config{Delay: cfg.hedgeDelay, BudgetRatio: 0.1}),
		httpmw.WithProbes(health.ProbeConfig{Interval: cfg.probe, Timeout: cfg.probe}),
		httpmw.WithTracerProvider(tel.tp),
		httpmw.WithMeterProvider(tel.mp),
	)
	if err != nil {
		return err
	}
	defer tr.Close()
	client := &http.Client{Transport: tr}
	defer client.CloseIdleConnections()

	fmt.Fprintf(out, "metrics: %s\n", tel.metrics)
	var sc *scraper
	if cfg.render != "" {
		sc = startScraper(tel.metrics, cfg.every)
		defer sc.close()
	}
	fmt.Fprintf(out, "traffic: %d workers for %v (at most %d calls); the spans of the first %d calls follow as JSON\n",
		cfg.workers, cfg.duration, cfg.maxCalls, cfg.traces)

	loadCtx, stopLoad := context.WithTimeout(ctx, cfg.duration)
	defer stopLoad()
	start := time.Now()
	var st stats
	var wg sync.WaitGroup
	wg.Go(func() { fl.phases(loadCtx, cfg.duration, func(p string) { st.phase(out, start, p) }) })
	var issued atomic.Int64
	for w := range cfg.workers {
		wg.Go(func() {
			for n := 0; loadCtx.Err() == nil && issued.Add(1) <= int64(cfg.maxCalls); n++ {
				// Every third call streams.
				st.record(ask(ctx, tel, client, (w+n)%3 == 0))
			}
		})
	}
	wg.Wait()
	st.phase(out, start, "")
	if err := ctx.Err(); err != nil {
		return err
	}

	s := tr.Stats()
	fmt.Fprintf(out, "%s: %d calls, %d failed; served by tier:", loadDone, st.ok.Load()+st.failed.Load(), st.failed.Load())
	for i, name := range tr.Tiers() {
		if i < len(s.Served) {
			fmt.Fprintf(out, " %s %d (%.0f%%)", name, s.Served[i], 100*s.Shares[i])
		}
	}
	fmt.Fprintf(out, "; %d fallbacks\n", s.Fallbacks)
	for _, name := range tr.Endpoints() {
		if a, ok := tr.Availability(name); ok {
			fmt.Fprintf(out, "  %-8s %-9v ejections %d, availability %.3f\n", name, tr.State(name), a.Failures, a.Availability)
		}
	}

	if sc != nil {
		ss, err := sc.finish()
		if err != nil {
			return fmt.Errorf("-render: scraping %s: %w", tel.metrics, err)
		}
		if err := renderDashboard(cfg.render, dashTitle, panels, ss, rateWindowScrapes*cfg.every); err != nil {
			return fmt.Errorf("-render: %w", err)
		}
		fmt.Fprintf(out, "rendered %s from %d scrapes\n", cfg.render, len(ss))
	}

	if cfg.linger > 0 {
		fmt.Fprintf(out, "serving %s for %v (interrupt to stop)\n", tel.metrics, cfg.linger)
		t := time.NewTimer(cfg.linger)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done(): // an interrupt ends the wait, not in error
		}
	}
	return nil
}

// ask sends one chat completion, under an application span of its own so
// that sturdy's spans nest in it, and reads the whole answer.
func ask(ctx context.Context, tel *telemetry, client *http.Client, stream bool) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	ctx, span := tel.tp.Tracer("example/observability").Start(ctx, "ask")
	defer span.End()
	body := fmt.Sprintf(`{"model":"gpt-4o","stream":%t,"messages":[{"role":"user","content":"Why is the sky blue?"}]}`, stream)
	// The host is replaced by the endpoint sturdy picks.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://sturdy.invalid/v1/chat/completions", bytes.NewReader([]byte(body)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}

// stats counts calls, and prints them at each phase change.
type stats struct {
	ok, failed       atomic.Int64
	lastOK, lastFail int64
	lastPhase        string
	mu               sync.Mutex
}

func (st *stats) record(err error) {
	if err != nil {
		st.failed.Add(1)
	} else {
		st.ok.Add(1)
	}
}

// phase ends the current phase (printing its counts) and starts the next;
// "" ends the last one.
func (st *stats) phase(out io.Writer, start time.Time, next string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	ok, failed := st.ok.Load(), st.failed.Load()
	if st.lastPhase != "" {
		fmt.Fprintf(out, "        %d calls ok, %d failed\n", ok-st.lastOK, failed-st.lastFail)
	}
	st.lastOK, st.lastFail, st.lastPhase = ok, failed, next
	if next != "" {
		fmt.Fprintf(out, "[%5.1fs] %s\n", time.Since(start).Seconds(), next)
	}
}

// fleet is the fake model servers.
type fleet struct {
	servers           []*sturdytest.Server
	primary, fallback []httpmw.Endpoint
}

func startFleet() (*fleet, error) {
	fl := &fleet{}
	// Latencies with a lognormal tail, so that some calls are slow enough
	// to hedge; vllm-2 is slow on every call.
	tail := sturdytest.Latency{Fixed: 5 * time.Millisecond, Median: 15 * time.Millisecond, Sigma: 0.8}
	for i, c := range []sturdytest.Config{
		{Name: "vllm-0", Latency: tail, ErrorRate: 0.03},
		{Name: "vllm-1", Latency: tail},
		{Name: "vllm-2", Latency: sturdytest.Latency{Fixed: 150 * time.Millisecond}},
		{Name: "mini-0", Latency: sturdytest.Latency{Fixed: 5 * time.Millisecond, Median: 10 * time.Millisecond}},
	} {
		c.Seed = uint64(i + 1)
		c.ChunkDelay = time.Millisecond
		srv, err := sturdytest.StartLLM(c)
		if err != nil {
			fl.close()
			return nil, err
		}
		fl.servers = append(fl.servers, srv)
		ep := httpmw.URL(c.Name, srv.URL(), nil)
		if i < 3 {
			fl.primary = append(fl.primary, ep)
		} else {
			fl.fallback = append(fl.fallback, ep)
		}
	}
	return fl, nil
}

func (fl *fleet) close() {
	for _, s := range fl.servers {
		s.Close()
	}
}

// phases runs the four phases of faults, a quarter of d each, and calls
// announce at the start of each.
func (fl *fleet) phases(ctx context.Context, d time.Duration, announce func(string)) {
	wait := func() bool {
		t := time.NewTimer(d / 4)
		defer t.Stop()
		select {
		case <-t.C:
			return true
		case <-ctx.Done():
			return false
		}
	}
	vllm1 := fl.servers[1]
	primaries := fl.servers[:3]
	announce("steady: vllm-0 fails 3% of calls, vllm-2 is slow (hedges)")
	if !wait() {
		return
	}
	announce("vllm-1 is down (503, /health too): the probes eject it")
	vllm1.SetDown(sturdytest.Down503)
	if !wait() {
		vllm1.SetDown(sturdytest.Up)
		return
	}
	vllm1.SetDown(sturdytest.Up)
	announce("vllm-1 is back; every primary endpoint answers 429: calls fall back to gpt-4o-mini")
	for _, s := range primaries {
		s.SetRateLimit(sturdytest.RateLimit{Always: true, RetryAfter: 500 * time.Millisecond})
	}
	ok := wait()
	for _, s := range primaries {
		s.SetRateLimit(sturdytest.RateLimit{})
	}
	if !ok {
		return
	}
	announce("recovered")
	<-ctx.Done()
}

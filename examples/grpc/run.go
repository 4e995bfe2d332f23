package main

import (
	"github.com/sturdyai/sturdy/examples/internal/cli"

	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"

	"github.com/sturdyai/sturdy/grpcmw"
	"github.com/sturdyai/sturdy/health"
	"github.com/sturdyai/sturdy/hedge"
)

type config struct {
	duration   time.Duration
	report     time.Duration
	workers    int
	maxCalls   int
	slow       time.Duration
	hedgeDelay time.Duration
	probe      time.Duration
}

func (c config) validate() error {
	switch {
	case c.duration <= 0 || c.duration > 10*time.Minute:
		return fmt.Errorf("-duration %v: want more than 0 and at most 10m", c.duration)
	case c.report <= 0:
		return fmt.Errorf("-report %v: want more than 0", c.report)
	case c.workers < 1 || c.workers > 256:
		return fmt.Errorf("-workers %d: want 1 to 256", c.workers)
	case c.maxCalls < 1:
		return fmt.Errorf("-calls %d: want at least 1", c.maxCalls)
	case c.slow < 0:
		return fmt.Errorf("-slow %v: want 0 or more", c.slow)
	case c.hedgeDelay <= 0:
		return fmt.Errorf("-hedge-delay %v: want more than 0", c.hedgeDelay)
	case c.probe <= 0:
		return fmt.Errorf("-probe %v: want more than 0", c.probe)
	}
	return nil
}

// callTimeout bounds one call, whatever the load phase.
const callTimeout = 2 * time.Second

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("grpc", flag.ContinueOnError)
	var cfg config
	fs.DurationVar(&cfg.duration, "duration", 6*time.Second, "how long to send load; drain-3 drains during its middle third")
	fs.DurationVar(&cfg.report, "report", time.Second, "print a line of counts this often")
	fs.IntVar(&cfg.workers, "workers", 4, "concurrent callers, each sending one call after another")
	fs.IntVar(&cfg.maxCalls, "calls", 20000, "stop after this many calls even if -duration has not passed")
	fs.DurationVar(&cfg.slow, "slow", 120*time.Millisecond, "latency of the slow server, slow-2")
	fs.DurationVar(&cfg.hedgeDelay, "hedge-delay", 25*time.Millisecond, "send a hedge to another server when a call has not been answered within this")
	fs.DurationVar(&cfg.probe, "probe", 100*time.Millisecond, "interval of the grpc.health.v1 probes")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: grpc [flags]\n\n"+
			"Sends gRPC calls through sturdy's grpcmw to three local servers (fast, slow,\n"+
			"and one that drains for a while) and prints who served them.\n\nFlags:\n")
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
	start := time.Now()
	stamp := func() string { return fmt.Sprintf("[%5.1fs]", time.Since(start).Seconds()) }

	// The servers: fast-1 and drain-3 answer in 5 ms but stall now and
	// then (the tail that hedging cuts); slow-2 is slow on every call.
	stall := 4 * cfg.hedgeDelay
	servers := []*modelServer{
		{name: "fast-1", latency: 5 * time.Millisecond, stall: stall, stallRate: 0.03},
		{name: "slow-2", latency: cfg.slow},
		{name: "drain-3", latency: 5 * time.Millisecond, stall: stall, stallRate: 0.03},
	}
	defer func() {
		for _, s := range servers {
			s.stop()
		}
	}()
	fmt.Fprintln(out, "servers:")
	for _, s := range servers {
		if err := s.start(); err != nil {
			return fmt.Errorf("start %s: %w", s.name, err)
		}
		fmt.Fprintln(out, "  "+s.describe())
	}
	draining := servers[2]

	// sturdy's side: one tier of three endpoints that grpcmw dials, P2C
	// Peak-EWMA (the default balancer), failover (the default policy: 3
	// attempts, 10% retry budget), a hedge after -hedge-delay, passive
	// outlier detection and grpc.health.v1 probes.
	wins := &winCounter{}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(wins))
	defer func() { _ = tp.Shutdown(context.Background()) }()

	insecureCreds := grpc.WithTransportCredentials(insecure.NewCredentials())
	eps := make([]grpcmw.Endpoint, len(servers))
	for i, s := range servers {
		eps[i] = grpcmw.Target(s.name, s.addr)
	}
	client, err := grpcmw.New(
		grpcmw.WithEndpoints(eps...),
		grpcmw.WithDialOptions(insecureCreds),
		grpcmw.WithHedge(hedge.Config{Delay: cfg.hedgeDelay, BudgetRatio: 0.1}),
		grpcmw.WithOnStateChange(func(sc health.StateChange) {
			fmt.Fprintf(out, "%s health: %s %v → %v (%s)\n", stamp(), sc.Endpoint, sc.From, sc.To, sc.Reason)
		}),
		grpcmw.WithProbes(health.ProbeConfig{Interval: cfg.probe, Timeout: cfg.probe}),
		grpcmw.WithTracerProvider(tp),
	)
	if err != nil {
		return err
	}
	defer client.Close()

	// The program's own conn, with sturdy's interceptors installed. It
	// never connects: every call goes to the endpoint the balancer picks.
	// Its own retries are off so that they do not multiply sturdy's.
	cc, err := grpc.NewClient("passthrough:///sturdy",
		append(client.DialOptions(), insecureCreds, grpc.WithDisableRetry())...)
	if err != nil {
		return err
	}
	defer cc.Close()
	stub := testpb.NewTestServiceClient(cc)

	fmt.Fprintf(out, "sturdy: P2C Peak-EWMA over 3 endpoints, failover, hedge after %v, health probe every %v\n", cfg.hedgeDelay, cfg.probe)
	fmt.Fprintf(out, "load: %d workers for %v (at most %d calls); drain-3 drains from %.1fs to %.1fs\n\n",
		cfg.workers, cfg.duration, cfg.maxCalls, (cfg.duration / 3).Seconds(), (2 * cfg.duration / 3).Seconds())

	st := newStats(servers)
	loadCtx, stopLoad := context.WithTimeout(ctx, cfg.duration)
	defer stopLoad()
	var wg sync.WaitGroup

	// The drain: health goes NOT_SERVING at once; calls are refused after a
	// grace period of a few probes, as when a server is rolled out; then
	// it comes back.
	wg.Go(func() {
		if !sleep(loadCtx, cfg.duration/3) {
			return
		}
		grace := 3 * cfg.probe
		fmt.Fprintf(out, "%s drain-3: health NOT_SERVING; refusing calls in %v\n", stamp(), grace)
		draining.drain(loadCtx, grace)
		if draining.refusing.Load() {
			fmt.Fprintf(out, "%s drain-3: refusing calls (UNAVAILABLE)\n", stamp())
		}
		sleep(loadCtx, 2*cfg.duration/3-time.Since(start))
		draining.resume()
		fmt.Fprintf(out, "%s drain-3: serving again, health SERVING\n", stamp())
	})

	var issued atomic.Int64
	for range cfg.workers {
		wg.Go(func() {
			req := &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte("Why is the sky blue?")}}
			for loadCtx.Err() == nil && issued.Add(1) <= int64(cfg.maxCalls) {
				callCtx, cancel := context.WithTimeout(ctx, callTimeout)
				resp, err := stub.UnaryCall(callCtx, req)
				cancel()
				if st.record(resp.GetServerId(), err) {
					fmt.Fprintf(out, "%s call failed: %v\n", stamp(), err)
				}
			}
		})
	}

	// Report until the load is over.
	reported := make(chan struct{})
	go func() {
		defer close(reported)
		tick := time.NewTicker(cfg.report)
		defer tick.Stop()
		var last snapshot
		for {
			select {
			case <-tick.C:
				last = st.report(out, stamp(), last, wins, client)
			case <-loadCtx.Done():
				return
			}
		}
	}()
	wg.Wait()
	stopLoad()
	<-reported
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if draining.refusing.Load() { // the calls ran out before the drain ended
		draining.resume()
	}

	// A token stream goes through the same pool (streams fail over but are
	// never hedged).
	fmt.Fprint(out, "\nstream: ")
	if err := streamOnce(ctx, stub, out); err != nil {
		return fmt.Errorf("stream: %w", err)
	}

	fmt.Fprintln(out, "\nsummary:")
	st.summary(out, wins, client)
	return nil
}

// streamOnce reads one server-streaming call, printing its words as they
// arrive.
func streamOnce(ctx context.Context, stub testpb.TestServiceClient, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	req := &testpb.StreamingOutputCallRequest{ResponseParameters: make([]*testpb.ResponseParameters, 9)}
	stream, err := stub.StreamingOutputCall(ctx, req)
	if err != nil {
		return err
	}
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			fmt.Fprintln(out)
			return nil
		}
		if err != nil {
			return err
		}
		fmt.Fprint(out, string(msg.GetPayload().GetBody())+" ")
	}
}

// sleep waits d or until ctx is done; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// syncWriter serializes writes from the workers, the health callback and
// the reporter.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// stats counts calls: succeeded, failed, and served by each server.
type stats struct {
	names        []string
	served       map[string]*atomic.Int64
	ok, failed   atomic.Int64
	printedError atomic.Int64
}

type snapshot struct {
	ok, failed, hedgeWins, retryWins int64
	served                           map[string]int64
}

func newStats(servers []*modelServer) *stats {
	st := &stats{served: make(map[string]*atomic.Int64)}
	for _, s := range servers {
		st.names = append(st.names, s.name)
		st.served[s.name] = new(atomic.Int64)
	}
	return st
}

// record counts one call; it reports whether the error is one of the
// first few, worth printing.
func (st *stats) record(server string, err error) bool {
	if err != nil {
		st.failed.Add(1)
		return st.printedError.Add(1) <= 3
	}
	st.ok.Add(1)
	if c, ok := st.served[server]; ok {
		c.Add(1)
	}
	return false
}

func (st *stats) snap(wins *winCounter) snapshot {
	s := snapshot{ok: st.ok.Load(), failed: st.failed.Load(),
		hedgeWins: wins.hedge.Load(), retryWins: wins.retry.Load(), served: make(map[string]int64)}
	for n, c := range st.served {
		s.served[n] = c.Load()
	}
	return s
}

// report prints what happened since last.
func (st *stats) report(out io.Writer, stamp string, last snapshot, wins *winCounter, t *grpcmw.Client) snapshot {
	now := st.snap(wins)
	var served, states []string
	for _, n := range st.names {
		served = append(served, fmt.Sprintf("%s %d", n, now.served[n]-last.served[n]))
		states = append(states, fmt.Sprintf("%s %v", n, t.State(n)))
	}
	fmt.Fprintf(out, "%s ok %d, failed %d | served: %s | won by hedge %d, by retry %d | %s\n",
		stamp, now.ok-last.ok, now.failed-last.failed, strings.Join(served, ", "),
		now.hedgeWins-last.hedgeWins, now.retryWins-last.retryWins, strings.Join(states, ", "))
	return now
}

func (st *stats) summary(out io.Writer, wins *winCounter, t *grpcmw.Client) {
	s := st.snap(wins)
	fmt.Fprintf(out, "  calls: %d ok, %d failed\n", s.ok, s.failed)
	for _, n := range st.names {
		a, _ := t.Availability(n)
		fmt.Fprintf(out, "  %-8s served %5d  ejections %d  availability %.3f\n", n, s.served[n], a.Failures, a.Availability)
	}
	hs := t.Stats().Hedge[0]
	fmt.Fprintf(out, "  hedges: %d sent, %d won, %d refused by the budget\n", hs.Hedges, s.hedgeWins, hs.BudgetRefusals)
	fmt.Fprintf(out, "  retries that won: %d\n", s.retryWins)
}

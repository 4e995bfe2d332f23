package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"time"

	"github.com/sturdyai/sturdy/health"
)

// run is the whole program: it parses args, runs both clients, prints the
// table to stdout and progress to stderr, and returns the exit status: 0
// after a run (also one stopped early through ctx), 2 for bad flags, 1 if
// the run could not start.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	switch {
	case errors.Is(err, errHelp):
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "chaos: %v\n", err)
		fmt.Fprintln(stderr, "run with -h for the scenarios and flags")
		return 2
	}
	if _, err := runChaos(ctx, cfg, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "chaos: %v\n", err)
		return 1
	}
	return 0
}

// runChaos runs both clients as cfg says, prints the table to stdout and
// returns what it printed.
func runChaos(ctx context.Context, cfg config, stdout, stderr io.Writer) (*report, error) {
	pl := buildPlan(cfg)
	sched := schedule(cfg.Seed, cfg.Rate, cfg.Duration, pl.LongShare)

	plainF, err := startFleet(pl)
	if err != nil {
		return nil, err
	}
	defer plainF.Close()
	sturdyF, err := startFleet(pl)
	if err != nil {
		return nil, err
	}
	defer sturdyF.Close()

	plainBase, sturdyBase := newBaseTransport(), newBaseTransport()
	defer plainBase.CloseIdleConnections()
	defer sturdyBase.CloseIdleConnections()
	plain, err := newPlainClient(plainBase, plainF.URLs(0))
	if err != nil {
		return nil, err
	}
	sc, err := newSturdyClient(sturdyBase, sturdyF, cfg.Duration)
	if err != nil {
		return nil, err
	}
	defer sc.Close()

	fmt.Fprintf(stderr, "chaos: scenario %s, %v at %g calls/s (seed %d): plain and sturdy clients at once, each on its own fresh server set\n",
		cfg.Scenario, cfg.Duration, cfg.Rate, cfg.Seed)

	start := time.Now()
	stopTimeline := startTimeline(ctx, start, pl.Events, plainF, sturdyF)
	primaries := primaryNames(pl)
	sampler := startSampler(100*time.Millisecond, len(primaries), func() int {
		n := 0
		for _, name := range primaries {
			if sc.t.State(name) != health.Ejected {
				n++
			}
		}
		return n
	})
	var pc, scnt counters
	var prog *progress
	if !cfg.Quiet {
		prog = startProgress(stderr, cfg.Every, start, len(sched), &pc, &scnt)
	}

	plainRecs, sturdyRecs := make([]record, len(sched)), make([]record, len(sched))
	var wg sync.WaitGroup
	wg.Go(func() { runLoad(ctx, plain, sched, start, cfg.Timeout, plainRecs, &pc) })
	wg.Go(func() { runLoad(ctx, sc, sched, start, cfg.Timeout, sturdyRecs, &scnt) })
	wg.Wait()
	elapsed := time.Since(start)

	if prog != nil {
		prog.Stop()
	}
	stopTimeline()
	upCounts := sampler.Stop()

	seconds := max(1, int(math.Ceil(cfg.Duration.Seconds())))
	plainReq, sturdyReq := plainF.chatRequests(), sturdyF.chatRequests()
	r := &report{
		cfg:     cfg,
		calls:   len(sched),
		elapsed: elapsed,
		stopped: ctx.Err() != nil,
		plain:   summarize("plain", plainRecs, plainReq, seconds),
		sturdy:  summarize("sturdy", sturdyRecs, sturdyReq, seconds),
		chainFB: sc.t.Stats().Fallbacks,
	}
	var avail []float64
	for _, sp := range pl.Servers {
		row := endpointRow{Name: sp.Name, Fault: sp.Fault, Tier: sp.Tier, PlainReq: plainReq[sp.Name], SturdyReq: sturdyReq[sp.Name]}
		row.Health, row.HasHealth = sc.t.Availability(sp.Name)
		if sp.Tier == 0 && row.HasHealth {
			avail = append(avail, row.Health.Availability)
		}
		r.endpoints = append(r.endpoints, row)
	}
	r.pool = newPoolFigure(avail, upCounts)

	if cfg.Out != "" {
		title := fmt.Sprintf("%s, %g calls/s", cfg.Scenario, cfg.Rate)
		if err := writePicture(cfg.Out, title, r.plain, r.sturdy, pl.Events); err != nil {
			fmt.Fprintf(stderr, "chaos: writing the picture: %v\n", err)
		} else {
			r.picture = cfg.Out
		}
	}
	if cfg.CSV != "" {
		if err := writeCSV(cfg.CSV, plainRecs, sturdyRecs); err != nil {
			fmt.Fprintf(stderr, "chaos: writing the CSV: %v\n", err)
		}
	}
	r.print(stdout)
	if cfg.CSV != "" {
		fmt.Fprintf(stdout, "calls: %s\n", cfg.CSV)
	}
	return r, nil
}

func primaryNames(p plan) []string {
	var out []string
	for _, sp := range p.Servers {
		if sp.Tier == 0 {
			out = append(out, sp.Name)
		}
	}
	return out
}

// sampler counts, every interval, how many replicas are up.
type sampler struct {
	stop   chan struct{}
	wg     sync.WaitGroup
	counts []int // counts[j]: samples with exactly j replicas up
}

func startSampler(every time.Duration, n int, up func() int) *sampler {
	s := &sampler{stop: make(chan struct{}), counts: make([]int, n+1)}
	s.wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				s.counts[min(max(up(), 0), n)]++
			}
		}
	})
	return s
}

// Stop ends the sampling and returns counts[j], the number of samples with
// exactly j replicas up.
func (s *sampler) Stop() []int {
	close(s.stop)
	s.wg.Wait()
	return s.counts
}

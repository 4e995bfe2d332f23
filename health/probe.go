package health

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/sturdyai/sturdy"
)

// Prober checks one endpoint actively. Probe returns nil if the endpoint
// is up. It must return soon after ctx is done: RunProbes gives each probe
// a context with the probe timeout, and waits for every probe to return
// before it returns itself.
type Prober interface {
	Probe(ctx context.Context, ep sturdy.Endpoint) error
}

// Probe defaults.
const (
	DefaultProbeInterval = 10 * time.Second
	DefaultProbeJitter   = 0.1
	DefaultProbeTimeout  = 2 * time.Second
)

// ProbeConfig configures Tracker.RunProbes.
type ProbeConfig struct {
	// Interval is the time between the starts of two probes of one
	// endpoint, before jitter. Zero means 10s; negative is an error.
	Interval time.Duration
	// Jitter spreads the probes: each wait is drawn uniformly from
	// Interval × [1−Jitter, 1+Jitter]. Zero means 0.1; negative means no
	// jitter; 1 or more is an error (a wait could be zero).
	Jitter float64
	// Timeout bounds one probe; a probe that times out has failed. Zero
	// means 2s; negative is an error.
	Timeout time.Duration
}

// Validate reports a value of c that cannot work, as RunProbes would: an
// adapter that runs probes on its own goroutine checks its config first.
func (c ProbeConfig) Validate() error {
	_, err := c.withDefaults()
	return err
}

func (c ProbeConfig) withDefaults() (ProbeConfig, error) {
	if err := positiveOr(&c.Interval, DefaultProbeInterval, "ProbeConfig.Interval"); err != nil {
		return c, err
	}
	switch {
	case math.IsNaN(c.Jitter) || c.Jitter >= 1:
		return c, fmt.Errorf("health: ProbeConfig.Jitter %v is not below 1", c.Jitter)
	case c.Jitter < 0:
		c.Jitter = 0
	case c.Jitter == 0:
		c.Jitter = DefaultProbeJitter
	}
	if err := positiveOr(&c.Timeout, DefaultProbeTimeout, "ProbeConfig.Timeout"); err != nil {
		return c, err
	}
	return c, nil
}

// randFloat is the jitter's source of randomness, in [0, 1); a test seam.
var randFloat = rand.Float64

// RunProbes probes every endpoint of eps with p until ctx is done, and
// reports each result to the endpoint's member (Member.ProbeResult),
// adding the members it lacks (Tracker.Add). Each endpoint has its own
// goroutine; it probes at once, then every Interval ± Jitter, each probe
// bounded by Timeout. A probe still running when ctx ends is not
// reported: its failure says nothing about the endpoint.
//
// RunProbes blocks until ctx is done and every probe goroutine has
// returned, then returns nil: cancelling ctx is the normal way to stop it.
// It returns an error at once, starting nothing, if p is nil, cfg has a
// value that cannot work, or two endpoints share a name. It leaves the
// members in the tracker when it returns; a member removed while it runs
// keeps being probed, on its own, until ctx ends.
func (t *Tracker) RunProbes(ctx context.Context, p Prober, eps []sturdy.Endpoint, cfg ProbeConfig) error {
	if p == nil {
		return errors.New("health: RunProbes needs a Prober")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	seen := make(map[string]bool, len(eps))
	for _, ep := range eps {
		if seen[ep.Name] {
			return fmt.Errorf("health: RunProbes: endpoint name %q appears twice", ep.Name)
		}
		seen[ep.Name] = true
	}
	var wg sync.WaitGroup
	for _, ep := range eps {
		m := t.Add(ep.Name)
		wg.Go(func() { probeLoop(ctx, p, ep, m, cfg) })
	}
	wg.Wait()
	return nil
}

// probeLoop probes ep until ctx is done.
func probeLoop(ctx context.Context, p Prober, ep sturdy.Endpoint, m *Member, cfg ProbeConfig) {
	var timer *time.Timer
	for ctx.Err() == nil {
		start := time.Now()
		probeOnce(ctx, p, ep, m, cfg.Timeout)
		// Probes start every Interval ± Jitter, however long each took.
		wait := time.Duration(float64(cfg.Interval)*(1+cfg.Jitter*(2*randFloat()-1))) - time.Since(start)
		wait = max(wait, 0)
		if timer == nil {
			timer = time.NewTimer(wait)
			defer timer.Stop()
		} else {
			timer.Reset(wait)
		}
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
	}
}

func probeOnce(ctx context.Context, p Prober, ep sturdy.Endpoint, m *Member, timeout time.Duration) {
	pctx, cancel := context.WithTimeout(ctx, timeout)
	err := p.Probe(pctx, ep)
	cancel()
	if ctx.Err() != nil {
		return
	}
	m.ProbeResult(err)
}

package main

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"time"
)

// The shape of every scenario's server set.
const (
	primaryModel    = "gpt-4o"
	fallbackModel   = "gpt-4o-mini"
	primaryReplicas = 4
	// Quality of each tier's answers, for the expected-quality figure
	// Σ share × quality = (1 − r)·Q + r·Q′.
	primaryQuality  = 0.95
	fallbackQuality = 0.90
	// Context windows in tokens; the fallback's is larger, so a prompt too
	// long for the primary can still be served (the context-overflow scenario).
	primaryContext  = 8_192
	fallbackContext = 128_000
)

// serverSpec is one fake server of a set.
type serverSpec struct {
	Name  string
	Tier  int    // 0 primary, 1 fallback
	Fault string // what is wrong with it, for the table
	Cfg   fakeConfig
}

// event changes one server's behaviour at a point of the run.
type event struct {
	At     time.Duration // from the start of the load
	Server string
	What   string
	Apply  func(*fakeServer)
}

// plan is a scenario made concrete for one duration, rate and seed.
type plan struct {
	Servers   []serverSpec
	Events    []event // sorted by At
	LongShare float64 // share of calls whose prompt overflows the primary's context window
}

// scenario builds a plan.
type scenario struct {
	about string
	build func(d time.Duration, rate float64, seed uint64) plan
}

// healthyLatency is a well-behaved replica: about 40 ms, a mild tail.
var healthyLatency = fakeLatency{Fixed: 15 * time.Millisecond, Median: 25 * time.Millisecond, Sigma: 0.35, Max: 400 * time.Millisecond}

// tailLatency is a replica with a heavy tail: half its answers are fast,
// one in a hundred takes over a second.
var tailLatency = fakeLatency{Fixed: 15 * time.Millisecond, Median: 40 * time.Millisecond, Sigma: 1.45, Max: 3 * time.Second}

// fallbackLatency is the smaller, faster model.
var fallbackLatency = fakeLatency{Fixed: 10 * time.Millisecond, Median: 15 * time.Millisecond, Sigma: 0.3, Max: 300 * time.Millisecond}

// baseServers returns four healthy primary replicas and one fallback.
// Each primary replica can take 35% of the offered load, so the pool has
// 1.4× the load's capacity with all four, 1.05× with three and too little
// with two
// (each a token bucket one second deep, as providers' per-minute quotas are):
// losing replicas overloads the survivors (429 with Retry-After), as it
// does in production.
func baseServers(rate float64, seed uint64) []serverSpec {
	capacity := math.Max(2, 0.35*rate)
	var s []serverSpec
	for i := range primaryReplicas {
		s = append(s, serverSpec{
			Name: fmt.Sprintf("primary-%d", i+1),
			Tier: 0,
			Cfg: fakeConfig{
				Name:          fmt.Sprintf("primary-%d", i+1),
				Models:        []string{primaryModel},
				Seed:          seed*100 + uint64(i+1),
				Latency:       healthyLatency,
				ErrorRate:     0.005,
				RateLimit:     fakeRateLimit{Capacity: capacity, BucketSize: int(math.Ceil(capacity))},
				ContextWindow: primaryContext,
			},
		})
	}
	s = append(s, serverSpec{
		Name: "fallback-1",
		Tier: 1,
		Cfg: fakeConfig{
			Name:          "fallback-1",
			Models:        []string{fallbackModel},
			Seed:          seed*100 + 50,
			Latency:       fallbackLatency,
			RateLimit:     fakeRateLimit{Capacity: math.Max(4, 2*rate)},
			ContextWindow: fallbackContext,
		},
	})
	return s
}

func frac(d time.Duration, f float64) time.Duration {
	return time.Duration(float64(d) * f).Round(time.Millisecond)
}

// outage returns the events taking server name down (every request
// answered 503) at from and back at to.
func outage(name string, from, to time.Duration) []event {
	return []event{
		{At: from, Server: name, What: "down (503)", Apply: func(s *fakeServer) { s.SetDown(fakeDown503) }},
		{At: to, Server: name, What: "back up", Apply: func(s *fakeServer) { s.SetDown(fakeUp) }},
	}
}

// wedgeAndRestart returns the events of a replica that hangs at from (it
// accepts requests and never answers them, while its /health still says
// 200), is restarted at restart (connections reset) and serves again at to.
func wedgeAndRestart(name string, from, restart, to time.Duration) []event {
	return []event{
		{At: from, Server: name, What: "hangs", Apply: func(s *fakeServer) {
			s.Update(func(c *fakeConfig) { c.SlowHeaders = time.Hour })
		}},
		{At: restart, Server: name, What: "restarting (connections reset)", Apply: func(s *fakeServer) {
			s.Update(func(c *fakeConfig) { c.SlowHeaders, c.Down = 0, fakeDownReset })
		}},
		{At: to, Server: name, What: "back up", Apply: func(s *fakeServer) { s.SetDown(fakeUp) }},
	}
}

var scenarios = map[string]scenario{
	"mixed": {
		about: "the default: 4 primary replicas, one with a heavy latency tail, one that hangs from 30% of the run (requests never answered, /health still 200), restarts at 45% (connections reset) and is back at 60%, one answering 429 with Retry-After in bursts (35% of every fifth of the run); each replica has 35% of the load's capacity, so losing some overloads the rest; a healthy fallback model",
		build: func(d time.Duration, rate float64, seed uint64) plan {
			s := baseServers(rate, seed)
			s[1].Fault, s[1].Cfg.Latency = "latency tail", tailLatency
			s[2].Fault = fmt.Sprintf("hung %v–%v, reset –%v", frac(d, 0.3), frac(d, 0.45), frac(d, 0.6))
			period := frac(d, 0.2)
			s[3].Fault = fmt.Sprintf("429 bursts %v every %v", frac(period, 0.35), period)
			s[3].Cfg.RateLimit.BurstPeriod, s[3].Cfg.RateLimit.BurstLength = period, frac(period, 0.35)
			return plan{Servers: s, Events: wedgeAndRestart(s[2].Name, frac(d, 0.3), frac(d, 0.45), frac(d, 0.6))}
		},
	},
	"total-outage": {
		about: "every primary replica down (503 to every request, /health included) from 30% to 60% of the run; the fallback model is healthy",
		build: func(d time.Duration, rate float64, seed uint64) plan {
			s := baseServers(rate, seed)
			var ev []event
			for i := range primaryReplicas {
				s[i].Fault = fmt.Sprintf("down %v–%v", frac(d, 0.3), frac(d, 0.6))
				ev = append(ev, outage(s[i].Name, frac(d, 0.3), frac(d, 0.6))...)
			}
			return plan{Servers: s, Events: ev}
		},
	},
	"slow-replica": {
		about: "no errors, only latency: one primary replica with a heavy tail, one slow throughout (about 10× the others)",
		build: func(d time.Duration, rate float64, seed uint64) plan {
			s := baseServers(rate, seed)
			s[1].Fault, s[1].Cfg.Latency = "latency tail", tailLatency
			s[2].Fault = "slow (~400 ms)"
			s[2].Cfg.Latency = fakeLatency{Fixed: 150 * time.Millisecond, Median: 250 * time.Millisecond, Sigma: 0.5, Max: 3 * time.Second}
			return plan{Servers: s}
		},
	},
	"429-storm": {
		about: "from 25% to 75% of the run every primary replica's capacity drops to 12% of the load (429 with Retry-After for the rest); the fallback model has room",
		build: func(d time.Duration, rate float64, seed uint64) plan {
			s := baseServers(rate, seed)
			var ev []event
			for i := range primaryReplicas {
				s[i].Fault = fmt.Sprintf("capacity 12%% %v–%v", frac(d, 0.25), frac(d, 0.75))
				normal := s[i].Cfg.RateLimit
				storm := normal
				storm.Capacity = math.Max(1, 0.12*rate)
				storm.BucketSize = int(math.Ceil(storm.Capacity))
				ev = append(ev,
					event{At: frac(d, 0.25), Server: s[i].Name, What: "capacity cut", Apply: func(srv *fakeServer) { srv.SetRateLimit(storm) }},
					event{At: frac(d, 0.75), Server: s[i].Name, What: "capacity restored", Apply: func(srv *fakeServer) { srv.SetRateLimit(normal) }},
				)
			}
			return plan{Servers: s, Events: ev}
		},
	},
	"context-overflow": {
		about: fmt.Sprintf("healthy servers, but 15%% of the prompts (about 12k tokens) overflow the primary's %d-token context window (400 context_length_exceeded); the fallback's window is %d", primaryContext, fallbackContext),
		build: func(d time.Duration, rate float64, seed uint64) plan {
			s := baseServers(rate, seed)
			for i := range primaryReplicas {
				s[i].Fault = fmt.Sprintf("context %d", primaryContext)
			}
			return plan{Servers: s, LongShare: 0.15}
		},
	},
}

func scenarioNames() []string {
	names := make([]string, 0, len(scenarios))
	for n := range scenarios {
		names = append(names, n)
	}
	slices.Sort(names)
	// The default first.
	i := slices.Index(names, "mixed")
	return append([]string{"mixed"}, slices.Delete(names, i, i+1)...)
}

func buildPlan(cfg config) plan {
	p := scenarios[cfg.Scenario].build(cfg.Duration, cfg.Rate, cfg.Seed)
	slices.SortStableFunc(p.Events, func(a, b event) int { return cmp.Compare(a.At, b.At) })
	return p
}

package kvsim

import (
	"fmt"
	"github.com/sturdyai/sturdy/balancer"
	"slices"
	"time"
)

// Options size a suite run.
type Options struct {
	Seeds []uint64 // one run of every workload and client per seed
	Scale float64  // multiplies every workload's duration; 1 for the report
	// Specs and Clients default to Specs and Clients().
	Specs   []Spec
	Clients []Client
	Log     func(format string, args ...any)
	// Sweep, if set, also runs PrefixAffinity's knobs over SweepSpecs
	// for the first seed.
	Sweep bool
}

// SweepSpecs are the workloads of the knob sweep: the ones where the
// knobs change the outcome.
var SweepSpecs = []string{"shared-context", "chat", "hot-prefixes"}

// SweepRow is one PrefixAffinity setting on one workload, with one client
// and with NumClients.
type SweepRow struct {
	Workload  string
	Bound     float64 // Affinity.LoadBound
	WarmBound float64 // Affinity.WarmLoadBound; negative: none
	MinBlocks int
	Index     bool
	One, Many Result
}

// SweepSettings are the PrefixAffinity settings of the knob sweep: each
// pair of LoadBound ε ∈ {0.25, 0.5} and WarmLoadBound ∈ {0.25, 1, none},
// with the index and without, at MinBlocks 8; and the defaults at
// MinBlocks 1.
func SweepSettings() []SweepRow {
	var out []SweepRow
	for _, eps := range []float64{0.25, 0.5} {
		for _, warm := range []float64{0.25, 1, -1} {
			for _, idx := range []bool{true, false} {
				out = append(out, SweepRow{Bound: eps, WarmBound: warm, MinBlocks: 8, Index: idx})
			}
		}
	}
	for _, idx := range []bool{true, false} {
		out = append(out, SweepRow{Bound: balancer.DefaultAffinityLoadBound, WarmBound: balancer.DefaultAffinityWarmLoadBound, MinBlocks: 1, Index: idx})
	}
	return out
}

// Config returns the balancer configuration of the row's setting.
func (r SweepRow) Config() balancer.Config {
	cfg := balancer.Config{Policy: balancer.PrefixAffinity, Affinity: balancer.Affinity{LoadBound: r.Bound, WarmLoadBound: r.WarmBound, MinBlocks: r.MinBlocks}}
	if !r.Index {
		cfg.Affinity.Index = -1
	}
	return cfg
}

// Suite is every run of a comparison.
type Suite struct {
	Specs   []Spec
	Clients []string
	Seeds   []uint64
	Runs    []Result
	Sweep   []SweepRow
	Elapsed time.Duration
}

// RunSuite runs every workload for every seed under every client; the
// clients of a workload and seed see the same arrivals.
func RunSuite(o Options) (*Suite, error) {
	start := time.Now()
	if o.Specs == nil {
		o.Specs = Specs
	}
	if o.Clients == nil {
		o.Clients = Clients()
	}
	s := &Suite{Specs: o.Specs, Seeds: o.Seeds}
	for _, c := range o.Clients {
		s.Clients = append(s.Clients, c.Name)
	}
	for _, sp := range o.Specs {
		for _, seed := range o.Seeds {
			w := sp.Gen(seed, o.Scale)
			for _, c := range o.Clients {
				r, err := Run(&w, DefaultHardware, c, seed)
				if err != nil {
					return nil, fmt.Errorf("kvsim: %s, seed %d: %w", sp.Name, seed, err)
				}
				s.Runs = append(s.Runs, r)
			}
			if o.Log != nil {
				o.Log("kvsim: %s seed %d: %d requests, %v so far", sp.Name, seed, len(w.Requests), time.Since(start).Round(time.Millisecond))
			}
		}
	}
	if o.Sweep && len(o.Seeds) > 0 {
		if err := s.sweep(o.Seeds[0], o.Scale); err != nil {
			return nil, err
		}
	}
	s.Elapsed = time.Since(start)
	return s, nil
}

// Summary is one client on one workload over every seed: means, and the
// range over seeds of the figures that vary most.
type Summary struct {
	Workload, Client     string
	Seeds                int
	HitRate              float64
	HitMin, HitMax       float64
	P50, P90, P99        time.Duration
	P90Min, P90Max       time.Duration
	OutputRate           float64
	LoadSkew             float64
	MaxLoad, MeanLoad    float64
	SkewMin, SkewMax     float64
	OutputMin, OutputMax float64
}

// Summary returns the summary of client on workload, or false if it did
// not run.
func (s *Suite) Summary(workload, client string) (Summary, bool) {
	m := Summary{Workload: workload, Client: client}
	for _, r := range s.Runs {
		if r.Workload != workload || r.Client != client {
			continue
		}
		if m.Seeds == 0 {
			m.HitMin, m.HitMax, m.P90Min, m.P90Max = r.HitRate, r.HitRate, r.P90, r.P90
			m.SkewMin, m.SkewMax, m.OutputMin, m.OutputMax = r.LoadSkew, r.LoadSkew, r.OutputRate, r.OutputRate
		}
		m.Seeds++
		m.HitRate += r.HitRate
		m.HitMin, m.HitMax = min(m.HitMin, r.HitRate), max(m.HitMax, r.HitRate)
		m.P50 += r.P50
		m.P90 += r.P90
		m.P99 += r.P99
		m.P90Min, m.P90Max = min(m.P90Min, r.P90), max(m.P90Max, r.P90)
		m.OutputRate += r.OutputRate
		m.OutputMin, m.OutputMax = min(m.OutputMin, r.OutputRate), max(m.OutputMax, r.OutputRate)
		m.LoadSkew += r.LoadSkew
		m.SkewMin, m.SkewMax = min(m.SkewMin, r.LoadSkew), max(m.SkewMax, r.LoadSkew)
		m.MaxLoad += r.MaxLoad
		m.MeanLoad += r.MeanLoad
	}
	if m.Seeds == 0 {
		return m, false
	}
	n := float64(m.Seeds)
	d := time.Duration(m.Seeds)
	m.HitRate /= n
	m.P50, m.P90, m.P99 = m.P50/d, m.P90/d, m.P99/d
	m.OutputRate /= n
	m.LoadSkew /= n
	m.MaxLoad /= n
	m.MeanLoad /= n
	return m, true
}

// Check is one target and what was measured against it.
type Check struct {
	Workload string
	Client   string
	Target   string
	Got      string
	Met      bool
}

// Checks measures the targets for the PrefixAffinity client with
// the library's defaults (single and ×4).
func (s *Suite) Checks() []Check {
	var out []Check
	get := func(w, c string) (Summary, bool) { return s.Summary(w, c) }
	aff := "prefix-affinity"
	multi := aff + " ×4"
	for _, w := range []string{"shared-context", "events"} {
		a, ok1 := get(w, aff)
		rr, ok2 := get(w, "round-robin")
		p2c, ok3 := get(w, "p2c-peak-ewma")
		or, ok4 := get(w, "oracle")
		if ok1 && ok2 {
			x := float64(rr.P90) / float64(a.P90)
			out = append(out, Check{w, aff, "TTFT p90 ≥ 5× lower than round-robin", fmt.Sprintf("%.1f× (%s vs %s)", x, FormatDuration(a.P90), FormatDuration(rr.P90)), x >= 5})
			y := a.OutputRate / rr.OutputRate
			out = append(out, Check{w, aff, "output tok/s ≥ 1.5× round-robin", fmt.Sprintf("%.2f× (%.0f vs %.0f)", y, a.OutputRate, rr.OutputRate), y >= 1.5})
		}
		if ok1 && ok3 {
			x := float64(p2c.P90) / float64(a.P90)
			out = append(out, Check{w, aff, "TTFT p90 ≥ 3× lower than P2C", fmt.Sprintf("%.1f× (%s vs %s)", x, FormatDuration(a.P90), FormatDuration(p2c.P90)), x >= 3})
		}
		if ok1 && ok4 {
			x := a.HitRate / or.HitRate
			out = append(out, Check{w, aff, "hit rate ≥ 85% of the oracle's", fmt.Sprintf("%.0f%% (%.3f vs %.3f)", 100*x, a.HitRate, or.HitRate), x >= 0.85})
		}
	}
	if a, ok := get("no-sharing", aff); ok {
		if p2c, ok := get("no-sharing", "p2c-peak-ewma"); ok {
			x := float64(a.P90)/float64(p2c.P90) - 1
			out = append(out, Check{"no-sharing", aff, "TTFT p90 within 5% of P2C (or lower)", fmt.Sprintf("%+.1f%% (%s vs %s)", 100*x, FormatDuration(a.P90), FormatDuration(p2c.P90)), x <= 0.05})
		}
	}
	for _, c := range []string{aff, multi} {
		if a, ok := get("hot-prefixes", c); ok {
			out = append(out, Check{"hot-prefixes", c, "max replica load ≤ 1.3× mean", fmt.Sprintf("%.2f× (worst seed %.2f×)", a.LoadSkew, a.SkewMax), a.LoadSkew <= 1.3})
		}
	}
	for _, sp := range s.Specs {
		if sp.Name == "no-sharing" {
			continue
		}
		one, ok1 := get(sp.Name, aff)
		four, ok2 := get(sp.Name, multi)
		if ok1 && ok2 && one.HitRate > 0 {
			x := four.HitRate/one.HitRate - 1
			out = append(out, Check{sp.Name, multi, "K=4 hit rate within 10% of one client's", fmt.Sprintf("%+.1f%% (%.3f vs %.3f)", 100*x, four.HitRate, one.HitRate), x >= -0.10})
		}
	}
	return out
}

// FormatDuration writes d as the report does: ms below a second, then s.
func FormatDuration(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
	return fmt.Sprintf("%d ms", d.Milliseconds())
}

func (s *Suite) sweep(seed uint64, scale float64) error {
	for _, sp := range Specs {
		if !slices.Contains(SweepSpecs, sp.Name) {
			continue
		}
		w := sp.Gen(seed, scale)
		for _, row := range SweepSettings() {
			row.Workload = sp.Name
			cfg := row.Config()
			var err error
			if row.One, err = Run(&w, DefaultHardware, Balancer("sweep", cfg, 1), seed); err != nil {
				return err
			}
			if row.Many, err = Run(&w, DefaultHardware, Balancer("sweep", cfg, NumClients), seed); err != nil {
				return err
			}
			s.Sweep = append(s.Sweep, row)
		}
	}
	return nil
}

package sim

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/sturdyai/sturdy/balancer"
	"github.com/sturdyai/sturdy/degrade"
	"github.com/sturdyai/sturdy/httpmw"
)

// env is the backends of one run.
type env struct {
	Backends []*Backend
	Names    []string
	URLs     []string
	Addrs    []string
	Series   *Series
	Start    time.Time
	Seed     uint64
}

// Backend returns the backend named name.
func (e *env) Backend(name string) *Backend {
	for _, b := range e.Backends {
		if b.Name() == name {
			return b
		}
	}
	return nil
}

// client is one client under test, built fresh for every run.
type client struct {
	Call  CallFunc
	Close func()
	// During, if set, runs on its own goroutine for the length of the run
	// and must return when ctx is done.
	During func(ctx context.Context)
	// After, if set, reads scenario figures after the run.
	After func(run *Run) map[string]float64
}

// clientSpec names a client and builds it over a run's backends.
type clientSpec struct {
	Name string
	GRPC bool
	New  func(e *env) (*client, error)
}

// runSpec is one condition of a scenario.
type runSpec struct {
	Condition string
	Backends  []BackendConfig
	Load      Load
	// Events, if set, runs on its own goroutine during the run (pin a
	// backend, make it fail, ...) and must return when ctx is done.
	Events func(ctx context.Context, e *env)
}

// at runs fn at e.Start+d, unless ctx ends first.
func at(ctx context.Context, e *env, d time.Duration, fn func()) bool {
	t := time.NewTimer(time.Until(e.Start.Add(d)))
	defer t.Stop()
	select {
	case <-t.C:
		fn()
		return true
	case <-ctx.Done():
		return false
	}
}

// runOne runs one client under one condition once.
func runOne(ctx context.Context, rs runSpec, cs clientSpec, seed uint64) (*Run, *env, map[string]float64, error) {
	e := &env{Start: time.Now().Add(30 * time.Millisecond), Seed: seed}
	e.Series = NewSeries(e.Start, 100*time.Millisecond)
	defer func() {
		for _, b := range e.Backends {
			b.Close()
		}
	}()
	quotas := map[string]*bucket{} // shared rate limits, fresh for every run
	for i, bc := range rs.Backends {
		bc.Seed = seed*1000 + uint64(i)
		var b *Backend
		var err error
		if cs.GRPC {
			b, err = NewGRPCBackend(bc, e.Series)
		} else {
			b, err = NewBackend(bc, e.Series)
		}
		if err != nil {
			return nil, nil, nil, err
		}
		if bc.Quota != "" && b.bucket != nil {
			if q, ok := quotas[bc.Quota]; ok {
				b.bucket = q
			} else {
				quotas[bc.Quota] = b.bucket
			}
		}
		e.Backends = append(e.Backends, b)
		e.Names = append(e.Names, bc.Name)
		e.URLs = append(e.URLs, b.URL)
		e.Addrs = append(e.Addrs, b.Addr)
	}
	c, err := cs.New(e)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", cs.Name, err)
	}
	defer c.Close()
	e.Start = time.Now().Add(20 * time.Millisecond)
	e.Series.Start = e.Start
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{}, 2)
	bg := 0
	if rs.Events != nil {
		bg++
		go func() { rs.Events(rctx, e); done <- struct{}{} }()
	}
	if c.During != nil {
		bg++
		go func() { c.During(rctx); done <- struct{}{} }()
	}
	l := rs.Load
	l.Seed = seed
	run := Drive(ctx, l, e.Start, c.Call)
	cancel()
	for range bg {
		<-done
	}
	var extra map[string]float64
	if c.After != nil {
		extra = c.After(run)
	}
	return run, e, extra, nil
}

// suite runs every client under every condition, Reps times, interleaving
// clients within each repetition so that drift in the machine's load hits
// them alike. merge folds the extras of one repetition into the row.
func suite(ctx context.Context, o Options, id int, specs []runSpec, clients []clientSpec, merge func(row *Row, run *Run, e *env, extra map[string]float64, rep int)) ([]*Row, error) {
	reps := max(1, o.Reps)
	var rows []*Row
	idx := map[[2]string]*Row{}
	for _, rs := range specs {
		for _, cs := range clients {
			r := &Row{Condition: rs.Condition, Client: cs.Name, Hist: NewHist(), Extra: map[string]float64{}}
			rows = append(rows, r)
			idx[[2]string{rs.Condition, cs.Name}] = r
		}
	}
	for rep := range reps {
		for _, rs := range specs {
			for _, cs := range clients {
				if ctx.Err() != nil {
					return rows, ctx.Err()
				}
				seed := o.Seed + uint64(id)*100 + uint64(rep)
				run, e, extra, err := runOne(ctx, rs, cs, seed)
				if err != nil {
					return rows, err
				}
				row := idx[[2]string{rs.Condition, cs.Name}]
				row.Hist.Merge(run.Hist)
				row.Calls += run.Calls
				row.OK += run.OK
				row.Extra["allcalls"] += float64(len(run.Records))
				for _, b := range e.Backends {
					row.Attempts += b.Attempts.Load()
				}
				row.RepP99 = append(row.RepP99, time.Duration(run.Hist.ValueAtQuantile(99))*time.Microsecond)
				if merge != nil {
					merge(row, run, e, extra, rep)
				}
				o.logf("scenario %d rep %d %-8s %-34s calls %5d ok %5.1f%% p99 %7sms p99.9 %7sms", id, rep+1, rs.Condition, cs.Name,
					run.Calls, 100*float64(run.OK)/float64(max(1, run.Calls)), Ms(time.Duration(run.Hist.ValueAtQuantile(99))*time.Microsecond),
					Ms(time.Duration(run.Hist.ValueAtQuantile(99.9))*time.Microsecond))
			}
		}
	}
	return rows, nil
}

// httpClient wraps a RoundTripper built over a fresh base transport.
func httpClient(rt func(base *http.Transport, e *env) http.RoundTripper) func(e *env) (*client, error) {
	return func(e *env) (*client, error) {
		base := NewBase()
		return &client{Call: HTTPCall(rt(base, e)), Close: base.CloseIdleConnections}, nil
	}
}

// sturdyTransport builds an httpmw.Transport with one tier over the run's
// backends, plus opts.
func sturdyTransport(e *env, base http.RoundTripper, opts ...httpmw.Option) (*httpmw.Transport, error) {
	eps := make([]httpmw.Endpoint, len(e.Names))
	for i := range e.Names {
		eps[i] = httpmw.URL(e.Names[i], e.URLs[i], nil)
	}
	all := append([]httpmw.Option{
		httpmw.WithTier(degrade.Tier{Name: "primary"}, eps...),
		httpmw.WithBalancer(balancer.Config{Seed: e.Seed + 1}),
	}, opts...)
	return httpmw.NewTransport(base, all...)
}

// sturdyClient is a client over sturdyTransport.
func sturdyClient(opts ...httpmw.Option) func(e *env) (*client, error) {
	return func(e *env) (*client, error) {
		base := NewBase()
		tr, err := sturdyTransport(e, base, opts...)
		if err != nil {
			return nil, err
		}
		return &client{Call: HTTPCall(tr), Close: func() { _ = tr.Close(); base.CloseIdleConnections() }}, nil
	}
}

// grpcPoolClient is a conn over the run's gRPC backends balanced by policy.
func grpcPoolClient(policy string) func(e *env) (*client, error) {
	return func(e *env) (*client, error) {
		cc, err := DialPool(e.Addrs, policy)
		if err != nil {
			return nil, err
		}
		return &client{Call: GRPCCall(cc), Close: func() { _ = cc.Close() }}, nil
	}
}

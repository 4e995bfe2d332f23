package sim

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sturdyai/sturdy/balancer"
	"github.com/sturdyai/sturdy/degrade"
	"github.com/sturdyai/sturdy/httpmw"
	"github.com/sturdyai/sturdy/ratelimit"
	"github.com/sturdyai/sturdy/ratelimit/redisstore"
)

// redisServer is a redis-server child process on 127.0.0.1, for scenario
// 9.
type redisServer struct {
	cmd  *exec.Cmd
	addr string
	dir  string
}

// errNoRedis says redis-server is not installed: scenario 9 cannot run.
var errNoRedis = errors.New("redis-server not found on PATH (Debian package redis-server)")

func startRedis(ctx context.Context) (*redisServer, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errNoRedis
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	dir, err := os.MkdirTemp("", "sturdy-sim-redis")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir)
	if err := cmd.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	s := &redisServer{cmd: cmd, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), dir: dir}
	c := redis.NewClient(&redis.Options{Addr: s.addr})
	defer c.Close()
	for deadline := time.Now().Add(5 * time.Second); ; {
		if c.Ping(ctx).Err() == nil {
			return s, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			s.stop()
			return nil, fmt.Errorf("redis-server on %s did not answer", s.addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *redisServer) stop() {
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	_ = os.RemoveAll(s.dir)
}

// FleetOnRedis is scenario 9: three client processes (three independent
// httpmw Transports) share one provider key and, in one row, a Redis
// store; nothing is configured but that.
func FleetOnRedis(ctx context.Context, o Options) (*Result, error) {
	t0 := time.Now()
	const capacity, offered, retryAfter = 200.0, 400.0, time.Second
	calm, storm, after := o.dur(time.Second), o.dur(30*time.Second), o.dur(2*time.Second)
	res := &Result{ID: 9, Title: "Three client processes, one provider key"}
	srv, err := startRedis(ctx)
	if err != nil {
		res.Notes = append(res.Notes, "Not run: "+err.Error())
		res.Elapsed = time.Since(t0)
		if errors.Is(err, errNoRedis) {
			return res, nil
		}
		return res, err
	}
	defer srv.stop()
	spec := runSpec{
		Condition: "3 processes",
		Backends: []BackendConfig{
			{Name: "primary", Slots: 512, Median: 40 * time.Millisecond, Sigma: 0.3, RPS: capacity, Burst: capacity / 10, RetryAfter: retryAfter},
			{Name: "fallback", Slots: 512, Median: 80 * time.Millisecond, Sigma: 0.3},
		},
		Load: Load{Phases: []Phase{{calm, 100}, {storm, offered}, {after, 100}}, Timeout: 5 * time.Second},
	}
	var prefix atomic.Int64 // a fresh Redis namespace for every run
	fleet := func(shared bool, opts ...httpmw.Option) func(e *env) (*client, error) {
		return func(e *env) (*client, error) {
			ns := fmt.Sprintf("sim%d", prefix.Add(1))
			var calls []CallFunc
			var closers []func()
			for p := range 3 {
				base := NewBase()
				all := append([]httpmw.Option{
					httpmw.WithTier(degrade.Tier{Name: "primary", Model: "m"}, httpmw.URL("primary", e.URLs[0], nil)),
					httpmw.WithTier(degrade.Tier{Name: "fallback", Model: "small"}, httpmw.URL("fallback", e.URLs[1], nil)),
					httpmw.WithBalancer(balancer.Config{Seed: e.Seed + uint64(p) + 1}),
				}, opts...)
				if shared {
					rdb := redis.NewClient(&redis.Options{Addr: srv.addr, ContextTimeoutEnabled: true})
					st, err := redisstore.New(redisstore.Config{Client: rdb, Prefix: ns, Share: 1.0 / 3})
					if err != nil {
						return nil, err
					}
					all = append(all, httpmw.WithLimiter(ratelimit.Config{Store: st}))
					closers = append(closers, func() { _ = rdb.Close() })
				}
				tr, err := httpmw.NewTransport(base, all...)
				if err != nil {
					return nil, err
				}
				calls = append(calls, HTTPCall(tr))
				closers = append(closers, func() { _ = tr.Close(); base.CloseIdleConnections() })
			}
			// Each call goes to one of the three processes at random: three
			// Poisson streams of a third of the load each.
			var n atomic.Uint64
			seed := e.Seed
			return &client{
				Call: func(ctx context.Context) (string, error) {
					i := splitmix(seed+n.Add(1)) % 3
					return calls[i](ctx)
				},
				Close: func() {
					for _, c := range closers {
						c()
					}
				},
			}, nil
		}
	}
	clients := []clientSpec{
		{Name: "learning off (Retry-After only)", New: fleet(false, noLearning)},
		{Name: "learned, each process alone", New: fleet(false)},
		{Name: "learned, shared on Redis", New: fleet(true)},
	}
	if o.Short {
		clients = clients[2:]
	}
	bucketD := 100 * time.Millisecond
	nb := func(d time.Duration) int { return int(d / bucketD) }
	rows, err := suite(ctx, o, 9, []runSpec{spec}, clients, func(row *Row, run *Run, e *env, _ map[string]float64, rep int) {
		n := nb(calm + storm + after)
		att, lim := e.Series.Get("primary", n), e.Series.Get("primary/429", n)
		first := -1
		for i, v := range lim {
			if v > 0 {
				first = i
				break
			}
		}
		from := nb(calm + storm)
		if first >= 0 {
			from = min(from, first+nb(retryAfter)+1) // after the first 429s and their Retry-After
		}
		var sent, refused float64
		for i := from; i < nb(calm+storm); i++ {
			sent += att[i]
			refused += lim[i]
		}
		secs := float64(nb(calm+storm)-from) / 10
		served := 0.0
		for _, r := range run.Records {
			if r.OK && r.Served == "primary" && r.At >= time.Duration(from)*bucketD && r.At < calm+storm {
				served++
			}
		}
		reps := float64(max(1, o.Reps))
		ratio := sent / math.Max(secs, 0.1) / capacity
		row.Extra["sent"] += ratio / reps
		row.Extra["sentMax"] = math.Max(row.Extra["sentMax"], ratio)
		row.Extra["served"] += served / math.Max(secs, 0.1) / capacity / reps
		row.Extra["refused"] += refused / math.Max(sent, 1) / reps
		o.logf("scenario 9 rep %d %-34s from %.1fs: sent %.3f× served %.3f× of the limit, 429s %.2f%%", rep+1, row.Client,
			float64(from)/10, ratio, served/math.Max(secs, 0.1)/capacity, 100*refused/math.Max(sent, 1))
	})
	x := func(v float64) string { return fmt.Sprintf("%.3f×", v) }
	res.Rows = rows
	res.Columns = []Column{
		{Head: "primary attempts ÷ limit after the first 429s (mean)", Key: "sent", Format: x},
		{Head: "worst rep", Key: "sentMax", Format: x},
		{Head: "primary served ÷ limit after the first 429s", Key: "served", Format: x},
		{Head: "primary attempts answered 429", Key: "refused", Format: pct},
	}
	res.Setup = fmt.Sprintf("Three client processes — three independent httpmw Transports, each with its own connections, balancer and limiter — "+
		"share one provider key: a primary model limited to %.0f req/s (token bucket, burst %.0f, 429 with Retry-After: %.0f) and an unlimited "+
		"fallback model. Open-loop Poisson load, each call sent by one of the three at random: 100 req/s for %.0fs, %.0f req/s for %.0fs, 100 req/s for %.0fs. "+
		"No limit is configured. \"Shared on Redis\" gives each Transport a redisstore.Store (its own Redis client, Share 1/3) on one redis-server "+
		"started for the run; the other rows share nothing. Figures count from the first 429 plus its Retry-After to the storm's end.",
		capacity, capacity/10, retryAfter.Seconds(), calm.Seconds(), offered, storm.Seconds(), after.Seconds())
	res.Elapsed = time.Since(t0)
	if err != nil {
		return res, err
	}
	if s := res.Row(spec.Condition, "learned, shared on Redis"); s != nil {
		res.Checks = append(res.Checks, Check{Target: "three processes learning on Redis: together ≤ 1.1× the provider's limit after the first 429s",
			Got: fmt.Sprintf("%s (worst rep %s)", x(s.Extra["sent"]), x(s.Extra["sentMax"])), Met: s.Extra["sentMax"] <= 1.1})
	}
	return res, nil
}

// splitmix is SplitMix64's finalizer: a seeded, stateless choice.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

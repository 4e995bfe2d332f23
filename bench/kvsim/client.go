package kvsim

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/balancer"
)

// Fleet is what a router may know of the replicas: how many serve and,
// for the oracle only, their caches and queues.
type Fleet struct{ sim *sim }

// Active is the number of replicas serving; they are numbered from 0.
func (f Fleet) Active() int { return f.sim.active }

// Cached returns how many leading blocks of prompt replica i holds.
func (f Fleet) Cached(i int, prompt []uint64) int { return f.sim.replicas[i].cache.match(prompt) }

// Inflight returns the requests replica i holds, waiting or running.
func (f Fleet) Inflight(i int) int { return f.sim.replicas[i].inflight }

// Router routes a run's requests. Pick returns the replica and a func the
// simulator calls with the request's end.
type Router interface {
	Pick(req *Request, now time.Duration) (int, func(end time.Duration), error)
	Update(f Fleet) error
}

// Client is a named way of routing, built afresh for every run.
type Client struct {
	Name string
	New  func(f Fleet, seed uint64) (Router, error)
}

// Clients compared in the report, in order.
func Clients() []Client {
	return []Client{
		Balancer("round-robin", RoundRobinConfig, 1),
		Balancer("p2c-peak-ewma", balancer.Config{Policy: balancer.P2CPeakEWMA}, 1),
		Balancer("least-outstanding", balancer.Config{Policy: balancer.LeastOutstanding}, 1),
		Balancer("prefix-affinity", AffinityConfig, 1),
		Oracle(),
		Balancer("prefix-affinity ×4", AffinityConfig, NumClients),
	}
}

// RoundRobinConfig is the round-robin client's configuration.
var RoundRobinConfig = balancer.Config{Policy: balancer.RoundRobin}

// AffinityConfig is the PrefixAffinity client's configuration: the
// library's defaults (Affinity.MinBlocks 8, LoadBound 0.25, WarmLoadBound
// 1, Index 4096).
var AffinityConfig = balancer.Config{Policy: balancer.PrefixAffinity}

// Balancer routes with n independent sturdy balancers built from cfg
// (each request goes through the one Request.Client names, modulo n),
// over endpoints named r0, r1, …. For PrefixAffinity each request carries
// balancer.PrefixKey of every KeyStride-th name of its prompt's blocks.
func Balancer(name string, cfg balancer.Config, n int) Client {
	return Client{Name: name, New: func(f Fleet, seed uint64) (Router, error) {
		r := &balancers{}
		for k := range n {
			c := cfg
			c.Endpoints = endpoints(f.Active())
			c.Seed = seed*16 + uint64(k) + 1
			b, err := balancer.New(c)
			if err != nil {
				return nil, err
			}
			// The balancer measures time from its New; the simulation's
			// virtual time starts at epoch, a few microseconds later.
			r.bs = append(r.bs, b)
			r.epochs = append(r.epochs, time.Now())
		}
		return r, nil
	}}
}

type balancers struct {
	bs     []*balancer.Balancer
	epochs []time.Time
}

func endpoints(n int) []sturdy.Endpoint {
	eps := make([]sturdy.Endpoint, n)
	for i := range eps {
		eps[i] = sturdy.Endpoint{Name: "r" + strconv.Itoa(i)}
	}
	return eps
}

func (r *balancers) Pick(req *Request, now time.Duration) (int, func(time.Duration), error) {
	k := req.Client % len(r.bs)
	b, epoch := r.bs[k], r.epochs[k]
	ctx := balancer.WithKey(context.Background(), balancer.PrefixKey(keyBlocks(req.Prompt)))
	ep, done, err := b.Pick(ctx, nil)
	if err != nil {
		return -1, nil, err
	}
	i, err := strconv.Atoi(ep.Name[1:])
	if err != nil {
		return -1, nil, fmt.Errorf("kvsim: endpoint %q", ep.Name)
	}
	return i, func(end time.Duration) {
		done(sturdy.Outcome{Class: sturdy.Success, Latency: end - now, End: epoch.Add(end)})
	}, nil
}

// KeyStride is how many KV blocks one block of a request's key stands
// for: 4 blocks of 16 tokens, 64 tokens, about the 256 bytes of text that
// httpmw hashes into one block (balancer.DefaultAffinityBlockSize), so
// that Affinity.MinBlocks means here what it means to a client of httpmw.
const KeyStride = 4

// keyBlocks returns the key of a prompt whose KV blocks are named by
// prompt: every KeyStride-th name, each of which stands for the whole
// prefix up to its end.
func keyBlocks(prompt []uint64) []uint64 {
	out := make([]uint64, 0, len(prompt)/KeyStride)
	for i := KeyStride - 1; i < len(prompt); i += KeyStride {
		out = append(out, prompt[i])
	}
	return out
}

func (r *balancers) Update(f Fleet) error {
	for _, b := range r.bs {
		if err := b.Update(endpoints(f.Active())); err != nil {
			return err
		}
	}
	return nil
}

// Oracle routes each request to the replica holding most of its prompt
// (ties to the one with fewest requests, then the lowest number): what a
// router that sees every cache, as llm-d's precise prefix-cache scorer
// does, would achieve by hits alone.
func Oracle() Client {
	return Client{Name: "oracle", New: func(f Fleet, _ uint64) (Router, error) {
		return &oracle{f: f}, nil
	}}
}

type oracle struct{ f Fleet }

func (o *oracle) Pick(req *Request, _ time.Duration) (int, func(time.Duration), error) {
	best, bestHit, bestLoad := -1, -1, 0
	for i := range o.f.Active() {
		h, l := o.f.Cached(i, req.Prompt), o.f.Inflight(i)
		if h > bestHit || h == bestHit && l < bestLoad {
			best, bestHit, bestLoad = i, h, l
		}
	}
	return best, func(time.Duration) {}, nil
}

func (o *oracle) Update(f Fleet) error { o.f = f; return nil }

package kvsim

import (
	"cmp"
	"math/bits"
	"math/rand/v2"
	"slices"
	"time"
)

// Request is one chat completion: its prompt as the chained hashes of its
// blocks (prompt[i] stands for the first i+1 blocks, as vLLM names cached
// blocks and as balancer.PrefixKey expects), how many tokens it generates,
// and the names its output's blocks will have if a later prompt (the
// next turn of a conversation) extends it.
type Request struct {
	At     time.Duration
	Prompt []uint64
	Output int      // tokens
	Next   []uint64 // names of the output's blocks; nil if no later prompt extends it
	Client int      // which of NumClients independent client processes sends it
}

// Tokens is the prompt's length in tokens; prompts are whole blocks (a
// partial last block is never cached, so rounding changes hit counts by
// less than a block a request).
func (r *Request) Tokens() int { return len(r.Prompt) * BlockTokens }

// EventKind is a change to the fleet during a run.
type EventKind int

const (
	// Restart empties one replica's cache (a restart after draining: the
	// requests in flight finish, the cache is lost).
	Restart EventKind = iota
	// ScaleOut adds the next replica to the fleet and to every client.
	ScaleOut
)

// Event is a fleet change at a time.
type Event struct {
	At      time.Duration
	Kind    EventKind
	Replica int // Restart only
}

// Workload is one seeded arrival sequence and the fleet that serves it.
// Every client of a comparison sees the same Workload.
type Workload struct {
	Name     string
	Title    string
	Replicas int // serving from the start
	Max      int // replicas after every ScaleOut
	Capacity int // KV blocks a replica
	Duration time.Duration
	Warmup   time.Duration // requests arriving earlier are not measured
	Requests []Request
	Events   []Event
}

// NumClients is how many independent client processes the multi-client
// comparison runs; Request.Client says which one sends each request.
const NumClients = 4

// Spec describes a workload to generate for a seed.
type Spec struct {
	Name  string
	Title string
	Gen   func(seed uint64, scale float64) Workload
}

// Specs are the workloads of the report, in order.
var Specs = []Spec{
	{"shared-context", "(a) llm-d's shared-context B2B mix", SharedContext},
	{"chat", "(b) multi-turn chat appending to its history", Chat},
	{"no-sharing", "(c) no sharing", NoSharing},
	{"hot-prefixes", "(d) a few hot prefixes", HotPrefixes},
	{"zipf", "(e) Zipf popularity of documents", Zipf},
	{"events", "(a) with a replica restart and a scale-out", SharedContextEvents},
}

// base fills what every workload shares.
func base(name string, scale float64) Workload {
	if scale <= 0 {
		scale = 1
	}
	return Workload{Name: name, Replicas: 8, Max: 8,
		Duration: time.Duration(float64(120*time.Second) * scale),
		Warmup:   time.Duration(float64(20*time.Second) * scale)}
}

// gen is a seeded generator of arrivals and block contents.
type gen struct {
	rng  *rand.Rand
	w    *Workload
	seed uint64
}

func newGen(w *Workload, seed, salt uint64) *gen {
	return &gen{rng: rand.New(rand.NewPCG(seed, salt)), w: w, seed: seed}
}

// poisson calls f at each arrival of a Poisson process of rate per second
// over the workload's duration.
func (g *gen) poisson(rate float64, f func(at time.Duration)) {
	for t := time.Duration(0); ; {
		t += time.Duration(g.rng.ExpFloat64() / rate * float64(time.Second))
		if t >= g.w.Duration {
			return
		}
		f(t)
	}
}

func (g *gen) between(lo, hi int) int { return lo + g.rng.IntN(hi-lo+1) }

// unique returns n block contents never seen before.
func (g *gen) unique(n int) []uint64 {
	out := make([]uint64, n)
	for i := range out {
		out[i] = g.rng.Uint64()
	}
	return out
}

// fixed returns the n block contents of a shared text named id.
func fixed(id uint64, n int) []uint64 {
	out := make([]uint64, n)
	for i := range out {
		out[i] = mix(id, uint64(i)+1)
	}
	return out
}

// chain returns the chained names of the blocks of contents after prev
// (0 for a prompt's start): h_i = mix(h_{i-1}, content_i).
func chain(prev uint64, contents ...[]uint64) []uint64 {
	var out []uint64
	for _, c := range contents {
		for _, x := range c {
			prev = mix(prev, x)
			out = append(out, prev)
		}
	}
	return out
}

// mix is a 64-bit hash of two words (wyhash's mum), as internal/prefix
// chains blocks; any good mix will do, since only equality matters here.
func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a^0xa0761d6478bd642f, b^0xe7037ed1a0b428db)
	return hi ^ lo
}

func (g *gen) finish() Workload {
	// Client assignment draws from its own stream, so that it never
	// changes the arrivals.
	r := rand.New(rand.NewPCG(g.seed, 0xc11e))
	for i := range g.w.Requests {
		g.w.Requests[i].Client = r.IntN(NumClients)
	}
	return *g.w
}

func (g *gen) add(at time.Duration, prompt []uint64, output int) {
	g.w.Requests = append(g.w.Requests, Request{At: at, Prompt: prompt, Output: output})
}

// SharedContext is the workload of llm-d's "KV-cache wins you can see"
// (llm-d blog, 2025; summarised in Red Hat Developer's "Master KV cache
// aware routing with llm-d", Oct 2025): a B2B service with 150 customers,
// each with its own ~6,000-token context (documents, instructions) ahead
// of ~1,200-token queries, sized so that the contexts need about 70% of
// the cluster's KV memory. Customers are equally popular; outputs are
// 128–384 tokens.
func SharedContext(seed uint64, scale float64) Workload {
	w := base("shared-context", scale)
	sharedContextInto(&w, seed)
	return w
}

func sharedContextInto(w *Workload, seed uint64) Workload {
	const customers, ctxBlocks, queryBlocks = 150, 375, 75 // 6,000 and 1,200 tokens
	w.Capacity = int(float64(customers*ctxBlocks) / 0.70 / float64(w.Replicas))
	g := newGen(w, seed, 0xa)
	ctx := make([][]uint64, customers)
	for c := range ctx {
		ctx[c] = chain(0, fixed(uint64(c)+1, ctxBlocks))
	}
	g.poisson(sharedRate, func(at time.Duration) {
		c := ctx[g.rng.IntN(customers)]
		p := append(append([]uint64(nil), c...), chain(c[len(c)-1], g.unique(queryBlocks))...)
		g.add(at, p, g.between(128, 384))
	})
	return g.finish()
}

// SharedContextEvents is SharedContext with replica 0 restarted (cache
// lost) at 40% of the run and two replicas added at 60%.
func SharedContextEvents(seed uint64, scale float64) Workload {
	w := base("events", scale)
	w = sharedContextInto(&w, seed)
	w.Max = w.Replicas + 2
	w.Events = []Event{
		{At: w.Duration * 4 / 10, Kind: Restart, Replica: 0},
		{At: w.Duration * 6 / 10, Kind: ScaleOut},
		{At: w.Duration * 6 / 10, Kind: ScaleOut},
	}
	return w
}

// Chat is multi-turn conversations: sessions start as a Poisson process,
// each of 2–8 turns; every turn's prompt is the shared 256-token system
// prompt, the whole history (earlier questions and answers) and a new
// 64–400-token question; answers are 100–400 tokens. Turns are scheduled
// 20 s plus an exponential think time (mean 10 s) after the previous
// turn's arrival, independent of the answer's latency, so that every
// client sees the same arrivals.
func Chat(seed uint64, scale float64) Workload {
	w := base("chat", scale)
	w.Capacity = 6000 // 96k tokens: the conversations in flight do not all fit
	g := newGen(&w, seed, 0xb)
	system := fixed(0x5157, 16)
	type turn struct {
		at     time.Duration
		prompt []uint64
		out    int
		next   []uint64
	}
	var turns []turn
	g.poisson(1.5, func(at time.Duration) {
		hist := chain(0, system)
		n := g.between(2, 8)
		for k := 0; k < n && at < w.Duration; k++ {
			q := chain(hist[len(hist)-1], g.unique(g.between(4, 25)))
			p := append(append([]uint64(nil), hist...), q...)
			out := g.between(100, 400)
			ans := chain(p[len(p)-1], g.unique(out/BlockTokens))
			turns = append(turns, turn{at, p, out, ans})
			hist = append(p[:len(p):len(p)], ans...)
			at += 20*time.Second + time.Duration(g.rng.ExpFloat64()*float64(10*time.Second))
		}
	})
	slices.SortStableFunc(turns, func(a, b turn) int { return cmp.Compare(a.at, b.at) })
	for _, t := range turns {
		w.Requests = append(w.Requests, Request{At: t.at, Prompt: t.prompt, Output: t.out, Next: t.next})
	}
	return g.finish()
}

// NoSharing is unique prompts of 1,000–3,000 tokens with 100–300-token
// outputs: nothing to cache, so routing can only balance load.
func NoSharing(seed uint64, scale float64) Workload {
	w := base("no-sharing", scale)
	w.Capacity = 10000
	g := newGen(&w, seed, 0xc)
	g.poisson(24, func(at time.Duration) {
		g.add(at, chain(0, g.unique(g.between(63, 188))), g.between(100, 300))
	})
	return g.finish()
}

// HotPrefixes is four hot 2,048-token system prompts taking 80% of the
// requests (each followed by a 128–512-token question), the rest unique
// 1,000–2,000-token prompts; outputs are 100–300 tokens.
func HotPrefixes(seed uint64, scale float64) Workload {
	w := base("hot-prefixes", scale)
	w.Capacity = 10000
	g := newGen(&w, seed, 0xd)
	hot := make([][]uint64, 4)
	for i := range hot {
		hot[i] = chain(0, fixed(0x407+uint64(i), 128))
	}
	g.poisson(30, func(at time.Duration) {
		if g.rng.Float64() < 0.8 {
			h := hot[g.rng.IntN(len(hot))]
			g.add(at, append(append([]uint64(nil), h...), chain(h[len(h)-1], g.unique(g.between(8, 32)))...), g.between(100, 300))
			return
		}
		g.add(at, chain(0, g.unique(g.between(63, 125))), g.between(100, 300))
	})
	return g.finish()
}

// Zipf is 2,000 documents of 1,000–4,000 tokens whose popularity follows
// Zipf's law (s = 1.1), each request a document and a 64–320-token
// question; the documents need four times the cluster's KV memory.
func Zipf(seed uint64, scale float64) Workload {
	w := base("zipf", scale)
	w.Capacity = 10000
	g := newGen(&w, seed, 0xe)
	const docs = 2000
	z := rand.NewZipf(g.rng, 1.1, 1, docs-1)
	size := make([]int, docs)
	for i := range size {
		size[i] = g.between(63, 250)
	}
	g.poisson(20, func(at time.Duration) {
		d := z.Uint64()
		doc := chain(0, fixed(0x21bf0000+d, size[d]))
		g.add(at, append(doc, chain(doc[len(doc)-1], g.unique(g.between(4, 20)))...), g.between(100, 300))
	})
	return g.finish()
}

// sharedRate is SharedContext's arrivals a second.
const sharedRate = 20.0

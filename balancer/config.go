package balancer

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/bits"
	"sync/atomic"
	"time"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/health"
	"github.com/sturdyai/sturdy/internal/prefix"
)

// Defaults for the zero values of Config.
const (
	// DefaultPanicThreshold is Envoy's healthy_panic_threshold (50%).
	DefaultPanicThreshold = 0.5
	// DefaultDecay is the Peak-EWMA time constant of Finagle and
	// linkerd2-proxy.
	DefaultDecay = 10 * time.Second
	// DefaultRTT is linkerd2-proxy's cost of an endpoint never observed.
	DefaultRTT = 30 * time.Millisecond
	// DefaultPeakDecay is how fast a Timeout's penalty fades: with
	// 500ms, a replica that was stuck and has recovered is tried again
	// within about a second of its last cut attempt, and, each answer in
	// time halving what is left of the penalty, has its share back within
	// about one more (TestP2CRecoveredReplicaBackWithinASecond, bench/sim's
	// recovery scenario).
	DefaultPeakDecay = 500 * time.Millisecond
	// DefaultAffinityMinBlocks is 8 blocks, of whatever size the caller
	// hashed into its PrefixKey (2 KiB of text at the adapters'
	// DefaultAffinityBlockSize): a key shorter than that goes by P2C
	// Peak-EWMA, since so short a shared prefix is not worth a replica that
	// is not the least loaded; and the anchor lies past a common system
	// prompt of that length (bench/kvsim's chat workload).
	DefaultAffinityMinBlocks = 8
	// DefaultAffinityLoadBound is the ε of consistent hashing with bounded
	// loads that KubeAI uses (a mean load factor of 125%).
	DefaultAffinityLoadBound = 0.25
	// DefaultAffinityWarmLoadBound lets a warm key's first replica hold
	// twice the mean: rendezvous hashing of 150 keys over 8 replicas
	// (bench/kvsim's workload (a)) gives the busiest replica 1.4–1.6× the
	// mean share of keys, and a bound below that moves keys whose prefix
	// that replica alone holds (see Affinity.WarmLoadBound).
	DefaultAffinityWarmLoadBound = 1
	// DefaultAffinityBlockSize is the adapters' block: 256 bytes of
	// prompt text, about 64 tokens of English.
	DefaultAffinityBlockSize = prefix.DefaultBlockSize
	// DefaultAffinityIndex is the number of entries of PrefixAffinity's
	// index of recent prompts (64 KiB).
	DefaultAffinityIndex = 4096
)

// maxPenalty caps how far a failed attempt can push an endpoint's
// Peak-EWMA cost (see load.finish): doubling must stop somewhere, or an
// endpoint that failed a few dozen times would take hours of idle decay to
// be tried again after it recovers.
const maxPenalty = time.Minute

// Config configures a Balancer. Every zero field means its documented
// default.
type Config struct {
	// Endpoints is the initial set. Names must be non-empty and unique;
	// weights must not be negative. It may be empty (Pick then fails
	// until Update adds endpoints). The Balancer keeps its own copy.
	Endpoints []sturdy.Endpoint

	// Policy chooses among the endpoints. Zero is P2CPeakEWMA.
	Policy Policy

	// Health, if set, decides which endpoints may take traffic: Pick only
	// returns endpoints whose member is Allowed (outside panic mode). The
	// Balancer Adds its endpoints to the tracker (get-or-create, so a
	// tracker may be shared), Removes the ones Update drops, and the done
	// func of each Pick reports the outcome to the endpoint's member, so
	// one done call feeds both. Members are per name: Balancers sharing a
	// tracker share the members of common names, and an Update that drops
	// a name removes it for all of them. Nil means every endpoint is
	// allowed.
	Health *health.Tracker

	// PanicThreshold is the share of the pool that must be allowed by
	// Health for health to be honoured. When fewer are, the Balancer
	// picks over every endpoint as if all were healthy (Envoy's panic
	// mode): spreading load over a half-broken pool beats piling it on the
	// few survivors. Zero means 0.5; negative means never panic. Values
	// above 1 are rejected.
	PanicThreshold float64

	// Decay is the Peak-EWMA time constant: how fast old latency
	// observations fade and how fast an idle endpoint's cost decays toward
	// zero (so a slow endpoint is tried again once it has rested). Zero
	// means 10s. Only P2CPeakEWMA uses it.
	Decay time.Duration

	// PeakDecay is the time constant with which the penalty of an
	// endpoint's Timeouts (attempts cut by an attempt or first-byte
	// timeout) fades back to its usual latency, the Peak-EWMA of
	// everything else it answered, while the estimate as a whole decays
	// with Decay; each success also halves what is left of it. A replica
	// that was stuck for a moment thus regains its share in a few
	// PeakDecay instead of a few Decay; without Timeouts nothing changes.
	// Zero means 500ms; negative means the penalties fade with Decay
	// alone, as in Finagle and Linkerd. Only P2CPeakEWMA (and
	// PrefixAffinity's fallback to it) uses it.
	PeakDecay time.Duration

	// DefaultRTT is the cost of an endpoint with no observations yet, and
	// the least a failed attempt costs. Zero means 30ms. Only P2CPeakEWMA
	// uses it.
	DefaultRTT time.Duration

	// Affinity configures PrefixAffinity (only it reads Affinity) and
	// how httpmw and grpcmw find each request's Key. The zero value is the
	// default of every field.
	Affinity Affinity

	// Seed, if non-zero, makes every random choice (P2C sampling, tie
	// breaks, start offsets) follow a deterministic sequence, for tests
	// and simulations; the generator is then shared under a mutex, which
	// is slower under contention. RoundRobin starts at the first endpoint
	// when Seed is set, at a random one otherwise. Zero uses the runtime's
	// lock-free random source.
	Seed uint64
}

// Affinity configures cache-aware routing: PrefixAffinity's choices, and
// how the adapters turn a request into its Key. Every zero field means its
// documented default. httpmw and grpcmw take it in WithAffinity; the
// Balancer itself reads MinBlocks, LoadBound, WarmLoadBound and Index, and the adapters
// the rest.
type Affinity struct {
	// MinBlocks is how many leading blocks a prefix Key must have for
	// PrefixAffinity to route by it; shorter ones, and requests with no
	// Key, go to P2C Peak-EWMA. It is also the depth of the block whose
	// hash chooses a new prompt's replicas, so that all prompts sharing
	// that much prefix agree: it should lie past any prefix that all
	// requests share (a common system prompt), or they all rank the same
	// replicas first. Zero means 8 (2 KiB of prompt text with the adapters'
	// 256-byte blocks, about 512 tokens).
	MinBlocks int

	// LoadBound is the ε of consistent hashing with bounded loads: a
	// replica takes a keyed request only if its attempts in flight stay
	// within ⌈(1+ε)·m/n⌉ + 1, m the pool's attempts in flight counting
	// this one and n the endpoints health allows; otherwise the request
	// goes to the key's next replica. It bounds keys this Balancer has not
	// sent recently, and every replica but a key's first; warm keys'
	// first replicas have WarmLoadBound, and hot keys (more than half a
	// replica's share of the requests) are held to ⌈m/n⌉ on every
	// replica (the package doc says why). Zero means 0.25; negative means
	// no bound at all (a key sticks to its replica however busy, hot or
	// not).
	LoadBound float64

	// WarmLoadBound is the ε of the bound on a warm key's first replica:
	// a key this Balancer sent within its last 64·n picks, and that has
	// less than half a replica's share of them, goes to its first replica
	// while that holds fewer than ⌈(1+ε)·m/n⌉ + 1 attempts. Its prefix is
	// cached there and, most likely, nowhere else, so moving it costs a
	// whole prefill and a second copy of the prefix. Zero means 1 (twice
	// the mean); negative means no bound for warm keys.
	WarmLoadBound float64

	// Index is the number of entries of PrefixAffinity's index of recent
	// prompts: for the last block of each prompt it routed, the endpoint
	// it went to, so that a longer prompt extending it (the next turn of a
	// conversation) follows it there. It is rounded up to a power of two.
	// Zero means 4096; negative means no index (keys go by hashing alone).
	Index int

	// BlockSize is the number of bytes of prompt text each block of a
	// prefix Key stands for when httpmw reads the prompt from an
	// OpenAI-style body (a hook that calls PromptKey passes its own).
	// Every client of a pool must use the same size. Zero means 256 (about
	// 64 tokens of English, four of vLLM's 16-token blocks).
	BlockSize int

	// SessionHeader, if set, names the HTTP header (httpmw) or the
	// outgoing metadata key (grpcmw) whose value is a request's session:
	// requests with the same value go to the same replica while its load
	// allows, whatever their prompts. It wins over the prompt. Empty means
	// no header.
	SessionHeader string

	// SessionFromUser makes httpmw take the body's "user" field as the
	// session when the body has no "prompt_cache_key" (which is always a
	// session, as OpenAI routes on it). Off by default: "user" names the
	// end user for abuse monitoring, and routing each user to one replica
	// loses the prompts that users share.
	SessionFromUser bool
}

// maxBlockSize bounds Affinity.BlockSize.
const maxBlockSize = 1 << 20

// params are the resolved, immutable settings every snapshot and
// per-endpoint state refers to.
type params struct {
	policy     Policy
	health     *health.Tracker
	panicShare float64 // < 0: never panic
	rate       float64 // 1/Decay, per ns
	fast       float64 // 1/PeakDecay, per ns; 0: peaks fade with rate
	defaultRTT float64 // ns
	maxPenalty float64 // ns
	start      time.Time

	// PrefixAffinity only.
	minBlocks  int
	loadFactor float64 // 1+ε; ≤ 0: no bound
	warmFactor float64 // 1+ε of a warm key's first replica; ≤ 0: no bound
	indexSize  int     // 0: no index
	total      *count  // attempts in flight on the whole pool, and keyed picks
	heat       *heatTable
}

// count is a counter on a cache line of its own: every pick and done of a
// PrefixAffinity Balancer writes it, and beside anything else it would take
// that from every other core's cache.
type count struct {
	atomic.Int64
	// picks counts keyed picks: the clock of the heat table, written by
	// the same picks.
	picks atomic.Uint64
	_     [cacheLine - 16]byte
}

func newParams(cfg *Config) (*params, error) {
	if int(cfg.Policy) >= numPolicies {
		return nil, fmt.Errorf("balancer: Config.Policy %d is not a known policy", cfg.Policy)
	}
	if math.IsNaN(cfg.PanicThreshold) || cfg.PanicThreshold > 1 {
		return nil, fmt.Errorf("balancer: Config.PanicThreshold %v is not a share (want ≤ 1; 0 means %v, negative never panics)", cfg.PanicThreshold, DefaultPanicThreshold)
	}
	if cfg.Decay < 0 {
		return nil, fmt.Errorf("balancer: Config.Decay %v is negative (0 means %v)", cfg.Decay, DefaultDecay)
	}
	if cfg.DefaultRTT < 0 {
		return nil, fmt.Errorf("balancer: Config.DefaultRTT %v is negative (0 means %v)", cfg.DefaultRTT, DefaultRTT)
	}
	if err := cfg.Affinity.validate(); err != nil {
		return nil, err
	}
	p := &params{
		policy:     cfg.Policy,
		health:     cfg.Health,
		panicShare: cfg.PanicThreshold,
		rate:       1 / float64(cmp.Or(cfg.Decay, DefaultDecay)),
		defaultRTT: float64(cmp.Or(cfg.DefaultRTT, DefaultRTT)),
		start:      time.Now(),
	}
	if cfg.PeakDecay >= 0 {
		p.fast = 1 / float64(cmp.Or(cfg.PeakDecay, DefaultPeakDecay))
	}
	if p.panicShare == 0 {
		p.panicShare = DefaultPanicThreshold
	}
	p.maxPenalty = max(float64(maxPenalty), 2*p.defaultRTT)
	if p.policy == PrefixAffinity {
		a := &cfg.Affinity
		p.minBlocks = cmp.Or(a.MinBlocks, DefaultAffinityMinBlocks)
		p.loadFactor = 1 + cmp.Or(a.LoadBound, DefaultAffinityLoadBound)
		if a.LoadBound < 0 {
			p.loadFactor = 0
		}
		p.warmFactor = 1 + cmp.Or(a.WarmLoadBound, DefaultAffinityWarmLoadBound)
		if a.WarmLoadBound < 0 || p.loadFactor == 0 {
			p.warmFactor = 0
		}
		if a.Index >= 0 {
			p.indexSize = 1 << bits.Len(uint(cmp.Or(a.Index, DefaultAffinityIndex)-1))
		}
		p.total = new(count)
		p.heat = newHeatTable()
	}
	return p, nil
}

// validate checks the fields; messages name them as Config.Affinity's.
func (a *Affinity) validate() error {
	var errs []error
	if a.MinBlocks < 0 || a.MinBlocks > maxKeyBlocks {
		errs = append(errs, fmt.Errorf("balancer: Config.Affinity.MinBlocks %d is not a number of blocks from 1 to %d (0 means %d)", a.MinBlocks, maxKeyBlocks, DefaultAffinityMinBlocks))
	}
	if math.IsNaN(a.LoadBound) {
		errs = append(errs, fmt.Errorf("balancer: Config.Affinity.LoadBound is NaN (0 means %v, negative means no bound)", DefaultAffinityLoadBound))
	}
	if math.IsNaN(a.WarmLoadBound) {
		errs = append(errs, fmt.Errorf("balancer: Config.Affinity.WarmLoadBound is NaN (0 means %v, negative means no bound)", DefaultAffinityWarmLoadBound))
	}
	if a.Index > maxAffinityIndex {
		errs = append(errs, fmt.Errorf("balancer: Config.Affinity.Index %d is more than %d entries (0 means %d, negative means no index)", a.Index, maxAffinityIndex, DefaultAffinityIndex))
	}
	if a.BlockSize < 0 || a.BlockSize > maxBlockSize {
		errs = append(errs, fmt.Errorf("balancer: Config.Affinity.BlockSize %d is not a number of bytes from 1 to %d (0 means %d)", a.BlockSize, maxBlockSize, DefaultAffinityBlockSize))
	}
	return errors.Join(errs...)
}

// validate checks an endpoint set; where names the slice in messages
// ("Config.Endpoints" or "Update: eps").
func validate(where string, eps []sturdy.Endpoint) error {
	seen := make(map[string]int, len(eps))
	total := 0
	for i := range eps {
		e := &eps[i]
		if e.Name == "" {
			return fmt.Errorf("balancer: %s[%d].Name is empty; every endpoint needs a unique name", where, i)
		}
		if j, dup := seen[e.Name]; dup {
			return fmt.Errorf("balancer: %s[%d].Name %q duplicates %s[%d].Name; names must be unique", where, i, e.Name, where, j)
		}
		seen[e.Name] = i
		if e.Weight < 0 {
			return fmt.Errorf("balancer: %s[%d].Weight %d (endpoint %q) is negative (0 means 1)", where, i, e.Weight, e.Name)
		}
		w := e.EffectiveWeight()
		if w > math.MaxInt32-total {
			return fmt.Errorf("balancer: %s[%d].Weight %d (endpoint %q) makes the total weight exceed %d", where, i, e.Weight, e.Name, math.MaxInt32)
		}
		total += w
	}
	return nil
}

// cloneEndpoint copies e with its own Labels map, so that neither the
// caller's later writes nor a caller of Endpoints can race with the
// snapshot.
func cloneEndpoint(e sturdy.Endpoint) sturdy.Endpoint {
	e.Labels = maps.Clone(e.Labels)
	return e
}

// now is the Balancer's clock: monotonic nanoseconds since New. Under
// testing/synctest it follows the bubble's fake time.
func (p *params) now() int64 {
	return int64(time.Since(p.start))
}

// nowAt is the Balancer's time of end, or now if end is zero.
func (p *params) nowAt(end time.Time) int64 {
	if end.IsZero() {
		return p.now()
	}
	return int64(end.Sub(p.start))
}

// Package balancer picks which endpoint of a pool each attempt of an
// inference call goes to.
//
// Model servers behind one name differ and drift: a replica is busy with
// long prompts, another is being restarted, a provider region is slow this
// minute. A client that spreads requests blindly sends its share to the
// slow one and waits. A Balancer steers each attempt to an endpoint likely
// to answer fast, skips endpoints the call has already tried (so failover
// and hedging land elsewhere), and honours health ejections.
//
// # Policies
//
//   - P2CPeakEWMA (default): the power of two choices over Peak-EWMA cost,
//     as in Finagle and Linkerd. Two endpoints are drawn at random and the
//     one with the lower latency estimate × (outstanding + 1) wins. The
//     estimate jumps to any slower sample at once, averages faster samples
//     in over Config.Decay (10s), and decays toward zero while an endpoint
//     is idle, so a slow endpoint is shunned quickly and retried once it has
//     rested. Failed attempts count as slow, never fast (below). What a
//     peak adds above the endpoint's usual latency fades faster, over
//     Config.PeakDecay (below). Servers that send load reports are priced
//     with them too (below). Drawing two instead of taking the global best
//     keeps many clients from herding onto the same endpoint.
//   - RoundRobin: in turn, as grpc-go's round_robin.
//   - WeightedRoundRobin: in proportion to Endpoint.Weight, interleaved as
//     nginx's smooth weighted round-robin, whose order is computed once per
//     endpoint set.
//   - LeastOutstanding: fewest attempts in flight ("least connections"),
//     by a scan that stops at the first idle endpoint; grpc-go's
//     least_request samples instead.
//   - PrefixAffinity: requests with the same Key to the same replica,
//     within a load bound, for servers with a prompt cache (below).
//
// # What an outcome teaches
//
// Each Pick returns a done func that takes the attempt's sturdy.Outcome.
// For Peak-EWMA its class decides what the latency means:
//
//   - Success: a latency sample.
//   - Unavailable, Timeout, Auth, Overloaded: an endpoint that fails fast
//     must not look fast, so the sample is max(latency, DefaultRTT, twice
//     the current estimate), the doubling capped at one minute. Repeated
//     failures steer P2C away before health ejects the endpoint; decay
//     brings it back once it has rested. A failure never lowers the
//     estimate.
//   - Canceled, TooLarge, Fatal: the endpoint did not finish the work, so
//     the latency is only a lower bound: it may raise the estimate, never
//     lower it.
//
// Samples no higher than the stored estimate that arrive within 1e-5 of
// the decay time (100 µs by default) of the last one written are dropped
// (one between the decayed and the stored value would raise it by less
// than that share), so
// that a busy endpoint's estimate is not rewritten by every attempt; the
// next sample written weighs the whole gap, and the estimate they would
// have moved changes by less than that share.
//
// # Recovery
//
// Finagle's and Linkerd's Peak-EWMA let a peak fade only as the whole
// estimate does, over Decay (10s): a replica that was stuck for a moment
// (or failed a few attempts, each doubling its estimate) stays shunned
// for several Decay after it has recovered, since it is only tried again
// once its estimate has decayed below the others' cost, and its first
// fast answers then move the estimate by little. In bench/sim's recovery
// scenario (one of 11 replicas stuck at 2s for 2.5s, its attempts cut by
// the adaptive attempt timeout, health ejection off) pure Peak-EWMA gave
// it none of its share back in the three seconds after it recovered,
// where LeastOutstanding, whose counts drain as soon as the replica
// answers, had it back within two.
//
// Health does not eject such a replica: attempts cut by sturdy's own
// attempt timeout count for neither of its rules (see health.Config).
//
// So each endpoint also keeps its usual latency: the same Peak-EWMA, fed
// the same samples, except the penalties of its Timeouts (attempts cut by
// an attempt or first-byte timeout, which say the endpoint was slow, not
// broken). Without Timeouts the two are equal and P2C behaves exactly as
// Finagle's. With them, the part of the estimate above the usual latency
// fades over Config.PeakDecay (500ms): an estimate c with usual latency b,
// stamped age ago, reads as (b + (c − b)·exp(−age/PeakDecay))·exp(−age/Decay),
// and each success halves c − b before its sample is folded in, as each
// Timeout doubled c: fading alone ignored the answers, and a recovered
// replica traced in bench/sim answered in 20–75ms for a second while
// its estimate fell from 317ms to the others' 95ms, with half its share.
// A replica stuck long enough for its attempts to be cut is thus tried
// again within about a second of its last cut attempt and, its answers
// fast again, has most of its share back within one more
// (TestP2CRecoveredReplicaBackWithinASecond, TestP2CRecoveredReplicaRegainsShare;
// bench/sim's recovery scenario). The answers cost something when a
// replica is stuck only now and then: one whose attempts are cut one
// time in ten keeps about 60% of its share (36% without the halving), so
// more calls pay a cut attempt and a failover; one cut half the time
// stays shunned, at about 16% (12%), since each Timeout doubles the
// estimate that a success halves only above the usual latency
// (TestP2CIntermittentlyStuckReplicaStaysShunned). Every slow answer,
// every lower bound (Canceled) and every other failure (Unavailable,
// Auth, Overloaded, whose penalty lifts the usual latency with it) is
// held as pure Peak-EWMA holds it. A negative
// PeakDecay restores pure Peak-EWMA.
//
// # Load reports
//
// Model servers can say how loaded they are with each answer: vLLM and
// Triton send an ORCA load report (the endpoint-load-metrics header) when
// asked, grpc-go servers an endpoint-load-metrics-bin trailer (gRFC A51).
// An adapter that asks for them (WithLoadReports) passes each attempt's
// report to the done func in Outcome.Load, and P2C prices the endpoint
// with its latest report:
//
//	cost = estimate × (outstanding + 1 + queue·w) / (1 − ρ·w)
//
// where queue is the server's waiting requests (vLLM's
// num_requests_waiting), ρ the larger of its KV-cache use
// (kv_cache_usage_perc) and its utilization (application_utilization, else
// cpu_utilization, as gRFC A58's weighted round-robin reads it), capped at
// 0.9, and w = exp(−age/Decay) fades a report as the estimate ages. The
// queue counts as attempts ahead of a new one, since a client's own
// outstanding count sees none of the other clients' requests a server
// holds; 1/(1 − ρ) is how far an M/M/1 queue at utilization ρ stretches
// a service time. These are the two signals llm-d's inference scheduler
// scores replicas by (its queue and KV-cache utilization scorers);
// A58's weights use utilization over queries per second instead, which
// needs a rate this balancer does not keep. A replica whose latency is
// still normal but whose queue is long thus gets less traffic than
// latency alone would give it (TestP2CLoadReportQueueTakesShare; bench/sim's
// load-report scenario). Without reports, or with reports of all zeros,
// the cost, and the work to compute it, are Peak-EWMA's alone.
//
// P2CPeakEWMA and RoundRobin do constant work per pick whatever the pool's
// size, as does WeightedRoundRobin (logarithmic in it for weights too large
// for its table; when the endpoints a pick must skip hold most of the
// weight it falls back to nginx's linear scan under a lock, which above
// 1024 endpoints allocates), and they allocate nothing otherwise; LeastOutstanding scans the
// pool. PrefixAffinity allocates nothing and does constant work too (it
// keeps the 32 KiB table of keys' heat and, for pools of 8 or more, a
// 512 KiB table of each key slot's first replicas, filled as slots are
// used, allocated anew by an Update that changes the names or their
// order), except when a key's first four
// replicas are all tried, ejected or over the load bound: then it ranks
// the whole pool. Peak-EWMA's update in a done func reads the clock only
// if Outcome.End is zero (sturdy's own policies and grpcmw/p2c set it from
// the attempt's start and latency); with Config.Health, reporting a
// success to a healthy member reads no clock either (it counts as of End)
// and takes no lock, while other outcomes read the tracker's clock and
// take the member's lock.
//
// # Cache affinity
//
// Self-hosted model servers keep the attention state of the prompts they
// have processed (vLLM's automatic prefix caching, SGLang's RadixAttention)
// and skip the prefill of any prompt that starts the same way; but only
// the replica that saw the prefix has it. PrefixAffinity sends requests
// that share a prefix, or a session, to the same replica as long as its
// load allows. The request's Key reaches Pick through its context
// (WithKey): PrefixKey holds the chained hashes of the prompt's leading
// blocks, SessionKey a conversation or user.
//
// A Key goes, in order:
//
//   - to the replica that rendezvous (highest-random-weight) hashing ranks
//     first for the Key's anchor, its Config.Affinity.MinBlocks-th block
//     or the session, if it may take it (below). The ranking hashes the
//     anchor with each endpoint's name, so every client with the same
//     endpoint names proposes the same replicas in the same order without
//     sharing state, and a replica that joins or leaves moves only the
//     keys it ranks first, about 1/n of them. Anchoring on a fixed depth
//     makes every prompt sharing that much prefix (a document, a
//     conversation's first question) agree; it should lie past any
//     prefix all requests share (a common system prompt), or they all
//     rank the same replicas first.
//   - else to the replica this Balancer sent the longest prompt it
//     extends (a conversation's previous turn, which may have overflowed
//     too), from a small index of recent prompts (Config.Affinity.Index).
//     llm-d's approximate prefix-cache scorer and SGLang's cache-aware
//     router likewise learn from what they routed, SGLang with a radix
//     tree per worker; llm-d's precise scorer instead indexes the
//     KV-cache events each vLLM replica publishes, exact but needing an
//     event stream from every server, which a client library does not
//     have. The index yields to the first choice because each client has
//     its own: if it won, a key that overflowed once from one client would
//     stay where that client sent it while the others went back to the
//     first choice, and its prefix would be cached twice (bench/kvsim
//     measured 15–19% fewer hits with four clients than with one that
//     way, 5–8% this way).
//   - else to the next replicas in the key's order.
//
// Each step takes a replica only under the load bound of consistent
// hashing with bounded loads (Mirrokni, Thorup and Zadimoghaddam,
// arXiv:1608.01350): while its attempts in flight stay within
// ⌈(1+ε)·m/n⌉ (m the pool's attempts in flight with this one, n the
// endpoints health allows). The bound applies to requests, but what a
// cache needs is keys that stay put, so ε depends on what moving the key
// would cost, which the Balancer reads from the key's recent picks (a
// 32 KiB table of, per key, its last pick and the mean gap between its
// picks, counted in this Balancer's keyed picks, not in time):
//
//   - A hot key, one that takes at least half of a replica's share of
//     the picks, is held to ⌈m/n⌉ on every replica: it must spread
//     anyway, and each replica it spreads to caches its prefix, so
//     moving it costs nothing after the first time.
//   - A warm key, picked within the last 64·n picks and not hot, may
//     load its first replica up to ⌈(1+ε)·m/n⌉ + 1 with ε
//     Config.Affinity.WarmLoadBound (1): its prefix is cached there and
//     most likely nowhere else. The per-request bound alone moved a share
//     of the requests of every key of the replicas that hashing gave more
//     keys than the mean (1.4–1.6× for 150 keys over 8 replicas), each
//     move a whole prefill and a second copy of a prefix that evicts
//     others; on bench/kvsim's workload (a) that cost a quarter of the
//     hits an oracle gets, and raising ε for every key instead let a hot
//     prefix load its replica 1.46× the mean at ε = 0.5.
//   - Other keys, and every replica but a warm key's first, have
//     ⌈(1+ε)·m/n⌉ + 1 with ε Config.Affinity.LoadBound (0.25, as in
//     KubeAI's PrefixHash strategy).
//
// The one attempt of slack is the absolute tolerance SGLang's router has
// (balance_abs_threshold, 32 requests by default) in a small dose: with a
// few attempts in flight per endpoint ⌈(1+ε)·m/n⌉ is 1 or 2, and one
// attempt would turn a key away from its cache; it matters most to
// clients that each send a share of a fleet's traffic. Heat is each
// Balancer's own, learned from the picks it made: with K clients sharing
// a fleet, each sees a key's requests at 1/K of the rate and its own
// picks at 1/K too, so its window covers the same share of the key's
// requests; a key a client has not yet seen is cold to it.
// Failover and hedging exclude the replicas a call tried, so its next
// attempt goes to the next replica in the key's order; health and panic
// mode filter as for any policy. Requests without a Key, or whose prompt
// has fewer blocks than Config.Affinity.MinBlocks (too short for its cache
// to matter), go by P2C Peak-EWMA. Endpoint weights are ignored.
//
// # Health and panic mode
//
// With Config.Health set, only endpoints the health tracker allows are
// picked, and each done func reports the outcome to the tracker. When fewer
// than Config.PanicThreshold (50%) of the pool is allowed, the Balancer
// ignores health and balances over every endpoint, as Envoy's panic mode
// does: when most of a pool looks broken, the detector is more likely
// wrong, or the survivors would collapse under the whole load.
//
// # Snapshots
//
// The endpoint set is an immutable snapshot swapped atomically on Update,
// as grpc-go publishes pickers; what the Balancer learned about an endpoint
// (latency, outstanding attempts, health) lives beside the snapshot and is
// carried over for endpoints that stay.
package balancer

package balancer

// Policy is how a Balancer chooses among the endpoints it may pick.
type Policy uint8

const (
	// P2CPeakEWMA (the default) samples two endpoints at random and takes
	// the one with the lower cost, Peak-EWMA latency × (outstanding + 1),
	// as in Finagle and Linkerd, with timed-out attempts' penalties fading
	// faster than the estimate (Config.PeakDecay) and servers' load
	// reports priced in
	// when there are any (see the package doc). It adapts to slow
	// endpoints within a few requests and avoids the herd that
	// always-pick-the-best causes.
	P2CPeakEWMA Policy = iota
	// RoundRobin takes the endpoints in turn.
	RoundRobin
	// WeightedRoundRobin takes the endpoints in proportion to their
	// Endpoint.Weight, interleaved as nginx's smooth weighted round-robin
	// does (weights 5,1,1 give a a b a c a a): every Σweights picks take
	// each endpoint exactly its weight's times. The order is computed once
	// per endpoint set, so a pick costs the same whatever the pool's size.
	// Weights that, over their greatest common divisor, sum to more than
	// 65536 keep the exact shares in an order spread by Fibonacci hashing
	// instead of nginx's.
	WeightedRoundRobin
	// LeastOutstanding takes the endpoint with the fewest attempts in
	// flight, ties broken at random ("least connections").
	LeastOutstanding
	// PrefixAffinity sends requests that carry the same Key (WithKey) to
	// the same replica while its load allows, so that the replica's prompt
	// cache hits: rendezvous hashing over endpoint names proposes replicas
	// in an order fixed by the key, the same in every client, and the load
	// bound of consistent hashing with bounded loads decides among them.
	// Requests without a Key, or with too short a one, go by P2CPeakEWMA.
	// The package doc has the details.
	PrefixAffinity

	numPolicies = int(PrefixAffinity) + 1
)

var policyNames = [numPolicies]string{
	P2CPeakEWMA:        "p2c_peak_ewma",
	RoundRobin:         "round_robin",
	WeightedRoundRobin: "weighted_round_robin",
	LeastOutstanding:   "least_outstanding",
	PrefixAffinity:     "prefix_affinity",
}

// String returns the policy's low-cardinality name ("p2c_peak_ewma",
// "round_robin", "weighted_round_robin", "least_outstanding",
// "prefix_affinity").
func (p Policy) String() string {
	if int(p) < numPolicies {
		return policyNames[p]
	}
	return "unknown"
}

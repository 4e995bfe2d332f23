package health

import "math"

// AtLeastK returns the probability that at least k of n = len(p)
// independent endpoints are up, endpoint i being up with probability
// p[i] (for instance its Availability.Availability).
//
// It is exact for unequal probabilities: the distribution of the number
// of endpoints up (a Poisson binomial distribution) is built one endpoint
// at a time by dynamic programming, in O(n²) time and O(n) space. For
// equal p it is Σ_{i=k..n} C(n,i) pⁱ (1−p)ⁿ⁻ⁱ.
//
// A k of zero or less gives 1; a k above n gives 0. If any p[i] is NaN or
// outside [0, 1] the question has no answer and AtLeastK returns NaN,
// whatever k is, so that a bad input shows instead of being clamped away.
func AtLeastK(k int, p []float64) float64 {
	for _, q := range p {
		if !(q >= 0 && q <= 1) { // also catches NaN
			return math.NaN()
		}
	}
	n := len(p)
	switch {
	case k <= 0:
		return 1
	case k > n:
		return 0
	}
	// dist[j] = P(exactly j of the endpoints seen so far are up).
	dist := make([]float64, n+1)
	dist[0] = 1
	for i, q := range p {
		for j := i + 1; j > 0; j-- {
			dist[j] = dist[j]*(1-q) + dist[j-1]*q
		}
		dist[0] *= 1 - q
	}
	var sum float64
	for j := k; j <= n; j++ {
		sum += dist[j]
	}
	return min(sum, 1)
}

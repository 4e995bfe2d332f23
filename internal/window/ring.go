package window

// Counts are two counters kept side by side (calls and failures;
// requests and accepts).
type Counts struct{ A, B int64 }

type bucket struct {
	slot int64 // absolute index of the time slice it holds: time / width; -1: empty
	c    Counts
}

// Ring is a sliding window of Counts. Times are nanoseconds on the
// owner's clock, from any origin at or before the first time given (never
// negative), never decreasing by much.
type Ring struct {
	width   int64
	buckets []bucket
}

// New returns a Ring over span nanoseconds in n buckets (n ≥ 1; each
// bucket at least 1 ns wide).
func New(span int64, n int) Ring {
	n = max(n, 1)
	r := Ring{width: max(span/int64(n), 1), buckets: make([]bucket, n)}
	r.Reset()
	return r
}

// Reset forgets every count.
func (r *Ring) Reset() {
	for i := range r.buckets {
		r.buckets[i] = bucket{slot: -1}
	}
}

// Add counts a and b at now.
func (r *Ring) Add(now, a, b int64) {
	slot := now / r.width
	bk := &r.buckets[slot%int64(len(r.buckets))]
	if bk.slot != slot {
		*bk = bucket{slot: slot}
	}
	bk.c.A += a
	bk.c.B += b
}

// Sum returns the counts of the buckets still inside the window at now.
func (r *Ring) Sum(now int64) Counts {
	oldest := now/r.width - int64(len(r.buckets)-1)
	var c Counts
	for i := range r.buckets {
		if bk := &r.buckets[i]; bk.slot >= oldest && bk.slot >= 0 {
			c.A += bk.c.A
			c.B += bk.c.B
		}
	}
	return c
}

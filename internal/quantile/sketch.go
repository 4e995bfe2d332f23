package quantile

import (
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

const (
	subBits    = 4
	subBuckets = 1 << subBits
	// Values up to 2^42 ns (about 73 minutes) are kept apart; larger ones
	// share the last bucket.
	maxExp     = 42
	numBuckets = (maxExp-subBits+2)*subBuckets + 1
)

// Sketch is a concurrency-safe quantile sketch of durations.
type Sketch struct {
	window int64
	cur    atomic.Pointer[hist]
	prev   atomic.Pointer[hist]
	mu     sync.Mutex // serialises rotation
}

type hist struct {
	n       atomic.Int64
	hi      atomic.Int32 // one past the highest bucket used: Quantile scans no further
	buckets [numBuckets]atomic.Int64
}

// New returns a sketch whose windows hold window observations each; zero
// means 1000.
func New(window int) *Sketch {
	if window <= 0 {
		window = 1000
	}
	s := &Sketch{window: int64(window)}
	s.cur.Store(new(hist))
	s.prev.Store(new(hist))
	return s
}

func index(v int64) int {
	if v < subBuckets {
		if v < 0 {
			return 0
		}
		return int(v)
	}
	k := bits.Len64(uint64(v)) - 1 // v in [2^k, 2^(k+1))
	if k > maxExp {
		return numBuckets - 1
	}
	shift := k - subBits
	mant := int(v>>uint(shift)) - subBuckets // [0, 16)
	return (k-subBits+1)*subBuckets + mant
}

// upper returns the largest value that falls in bucket i.
func upper(i int) int64 {
	if i < subBuckets {
		return int64(i)
	}
	if i >= numBuckets-1 {
		return 1<<62 - 1
	}
	k := i/subBuckets + subBits - 1
	mant := int64(i%subBuckets + subBuckets)
	shift := uint(k - subBits)
	return (mant+1)<<shift - 1
}

// Add records one observation.
func (s *Sketch) Add(d time.Duration) {
	h := s.cur.Load()
	i := index(int64(d))
	h.buckets[i].Add(1)
	for hi := h.hi.Load(); int32(i) >= hi && !h.hi.CompareAndSwap(hi, int32(i)+1); hi = h.hi.Load() {
	}
	if h.n.Add(1) >= s.window {
		s.rotate(h)
	}
}

func (s *Sketch) rotate(full *hist) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur.Load() != full {
		return // another writer rotated already
	}
	old := s.prev.Load()
	for i := range old.buckets {
		old.buckets[i].Store(0)
	}
	old.n.Store(0)
	old.hi.Store(0)
	s.prev.Store(full)
	s.cur.Store(old)
}

// Count returns the number of observations the sketch currently answers
// from (between Window and 2×Window once warm).
func (s *Sketch) Count() int64 {
	return s.cur.Load().n.Load() + s.prev.Load().n.Load()
}

// Quantile returns the q-quantile (0 ≤ q ≤ 1) of the recent observations,
// or 0 when there are none. The result is the upper edge of the bucket
// holding the quantile, so it overstates by at most 1/16.
//
// It takes the number of observations from the windows' counts and scans
// the buckets from the end nearer the quantile: for the high quantiles
// its callers ask for, the few buckets above it rather than all of them
// twice.
func (s *Sketch) Quantile(q float64) time.Duration {
	cur, prev := s.cur.Load(), s.prev.Load()
	// Buckets past hi are empty. A concurrent Add may fill one past it
	// after hi was read, or count an observation in its bucket before its
	// window's total: the answer then misses that observation, or counts
	// it a moment early, as if it had come at another time.
	hi := int(max(cur.hi.Load(), prev.hi.Load()))
	total := cur.n.Load() + prev.n.Load()
	if total <= 0 || hi == 0 {
		return 0
	}
	q = min(max(q, 0), 1)
	rank := int64(q*float64(total) + 0.5)
	rank = min(max(rank, 1), total)
	if q < 0.5 {
		var seen int64
		for i := range hi {
			seen += cur.buckets[i].Load() + prev.buckets[i].Load()
			if seen >= rank {
				return time.Duration(upper(i))
			}
		}
		return time.Duration(upper(hi - 1))
	}
	// The answer is the lowest bucket at or below which rank observations
	// lie: the highest one with fewer than rank below it.
	above := int64(0)
	for i := hi - 1; i > 0; i-- {
		above += cur.buckets[i].Load() + prev.buckets[i].Load()
		if total-above < rank {
			return time.Duration(upper(i))
		}
	}
	return time.Duration(upper(0))
}

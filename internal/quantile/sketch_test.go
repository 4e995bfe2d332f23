package quantile

import (
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestIndexUpperAgree(t *testing.T) {
	prev := -1
	for _, v := range []int64{0, 1, 15, 16, 17, 31, 32, 33, 1000, 1 << 20, 1<<20 + 12345, 1 << 40, 1<<42 + 5, 1 << 50} {
		i := index(v)
		if i < prev {
			t.Fatalf("index not monotonic at %d", v)
		}
		prev = i
		if i < numBuckets-1 && upper(i) < v {
			t.Fatalf("upper(index(%d)) = %d < value", v, upper(i))
		}
		if i > 0 && i < numBuckets-1 && upper(i-1) >= v {
			t.Fatalf("value %d also fits bucket %d (upper %d)", v, i-1, upper(i-1))
		}
	}
	if index(-5) != 0 {
		t.Fatal("negative values must land in bucket 0")
	}
}

func TestQuantileWithinRelativeError(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	s := New(100000)
	var vals []float64
	for range 50000 {
		d := time.Duration(r.ExpFloat64() * float64(20*time.Millisecond))
		vals = append(vals, float64(d))
		s.Add(d)
	}
	slices.Sort(vals)
	for _, q := range []float64{0.5, 0.9, 0.95, 0.99} {
		exact := vals[int(q*float64(len(vals)))-1]
		got := float64(s.Quantile(q))
		if got < exact*0.99 || got > exact*(1+1.0/16)*1.01 {
			t.Errorf("q%.2f = %v, exact %v: outside the sketch's error", q, time.Duration(got), time.Duration(exact))
		}
	}
}

func TestQuantileFollowsRecentWindow(t *testing.T) {
	s := New(100)
	for range 300 {
		s.Add(100 * time.Millisecond)
	}
	if got := s.Quantile(0.5); got < 95*time.Millisecond || got > 107*time.Millisecond {
		t.Fatalf("median %v, want about 100ms", got)
	}
	// Two windows of a new regime push the old one out.
	for range 200 {
		s.Add(time.Millisecond)
	}
	if got := s.Quantile(0.99); got > 2*time.Millisecond {
		t.Fatalf("p99 %v still remembers the old regime", got)
	}
	if c := s.Count(); c < 100 || c > 200 {
		t.Fatalf("count %d, want between one and two windows", c)
	}
}

func TestEmptySketch(t *testing.T) {
	if got := New(0).Quantile(0.95); got != 0 {
		t.Fatalf("empty sketch quantile = %v", got)
	}
}

func TestConcurrentAdd(t *testing.T) {
	s := New(1000)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 5000 {
				s.Add(time.Duration(g*1000+i) * time.Microsecond)
				if i%100 == 0 {
					_ = s.Quantile(0.95)
				}
			}
		})
	}
	wg.Wait()
	if s.Count() == 0 || s.Count() > 2000 {
		t.Fatalf("count %d out of range", s.Count())
	}
}

func BenchmarkAdd(b *testing.B) {
	s := New(1000)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		d := time.Millisecond
		for pb.Next() {
			s.Add(d)
			d += time.Microsecond
		}
	})
}

// quantileByScan is Quantile as a full scan from the lowest bucket,
// totalling the buckets themselves: the reference its faster scans must
// agree with.
func quantileByScan(s *Sketch, q float64) time.Duration {
	cur, prev := s.cur.Load(), s.prev.Load()
	var total int64
	for i := range numBuckets {
		total += cur.buckets[i].Load() + prev.buckets[i].Load()
	}
	if total == 0 {
		return 0
	}
	rank := min(max(int64(q*float64(total)+0.5), 1), total)
	var seen int64
	for i := range numBuckets {
		if seen += cur.buckets[i].Load() + prev.buckets[i].Load(); seen >= rank {
			return time.Duration(upper(i))
		}
	}
	panic("rank beyond total")
}

func TestQuantileAgreesWithAFullScan(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, window := range []int{1, 7, 100, 1000} {
		s := New(window)
		for n := range 3000 {
			var d time.Duration
			switch n % 3 {
			case 0:
				d = time.Duration(r.ExpFloat64() * float64(time.Millisecond))
			case 1:
				d = time.Duration(r.IntN(40)) // the exact buckets
			default:
				d = time.Duration(r.Int64N(int64(time.Hour)))
			}
			s.Add(d)
			if n%37 != 0 {
				continue
			}
			for _, q := range []float64{0, 0.001, 0.25, 0.4999, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1} {
				if got, want := s.Quantile(q), quantileByScan(s, q); got != want {
					t.Fatalf("window %d, %d added: Quantile(%v) = %v, a full scan says %v", window, n+1, q, got, want)
				}
			}
		}
	}
}

func BenchmarkQuantile(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	s := New(1000)
	for range 2000 {
		s.Add(time.Duration(800+r.IntN(400)) * time.Microsecond)
	}
	s.Add(2 * time.Second) // an outlier: the scan's upper end
	b.ReportAllocs()
	for b.Loop() {
		s.Quantile(0.99)
	}
}

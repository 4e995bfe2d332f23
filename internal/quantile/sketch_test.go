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

package window

import "testing"

func TestRingSlides(t *testing.T) {
	r := New(100, 10) // 10 buckets of 10 ns
	r.Add(0, 1, 0)
	r.Add(5, 1, 1)
	r.Add(95, 2, 1)
	if c := r.Sum(99); c != (Counts{4, 2}) {
		t.Fatalf("Sum(99) = %+v, want {4 2}", c)
	}
	// At 100 the bucket of 0..9 is out of the window; 95's stays.
	if c := r.Sum(100); c != (Counts{2, 1}) {
		t.Fatalf("Sum(100) = %+v, want {2 1}", c)
	}
	// A bucket reused for a later slice starts from zero.
	r.Add(103, 1, 0)
	if c := r.Sum(105); c != (Counts{3, 1}) {
		t.Fatalf("Sum(105) = %+v, want {3 1}", c)
	}
	if c := r.Sum(1000); c != (Counts{}) {
		t.Fatalf("Sum long after = %+v, want nothing", c)
	}
	r.Add(1000, 7, 7)
	r.Reset()
	if c := r.Sum(1000); c != (Counts{}) {
		t.Fatalf("Sum after Reset = %+v", c)
	}
}

func TestRingNarrowerThanBuckets(t *testing.T) {
	r := New(3, 10) // buckets are floored at 1 ns
	r.Add(0, 1, 0)
	if c := r.Sum(9); c.A != 1 {
		t.Fatalf("Sum(9) = %+v", c)
	}
	if c := r.Sum(10); c.A != 0 {
		t.Fatalf("Sum(10) = %+v", c)
	}
}

package health

import (
	"math"
	"math/rand/v2"
	"testing"
)

// bruteAtLeastK enumerates every up/down combination.
func bruteAtLeastK(k int, p []float64) float64 {
	var sum float64
	for mask := 0; mask < 1<<len(p); mask++ {
		up, prob := 0, 1.0
		for i, q := range p {
			if mask&(1<<i) != 0 {
				up++
				prob *= q
			} else {
				prob *= 1 - q
			}
		}
		if up >= k {
			sum += prob
		}
	}
	return sum
}

func TestAtLeastK(t *testing.T) {
	tests := []struct {
		name string
		k    int
		p    []float64
		want float64
	}{
		{"2 of 3 at 0.99", 2, []float64{0.99, 0.99, 0.99}, 0.999702},
		{"1 of 2 at 0.9", 1, []float64{0.9, 0.9}, 0.99},
		{"all of 3 at 0.9", 3, []float64{0.9, 0.9, 0.9}, 0.729},
		{"k zero is certain", 0, []float64{0.1, 0.2}, 1},
		{"k negative is certain", -3, nil, 1},
		{"k above n is impossible", 3, []float64{1, 1}, 0},
		{"empty pool, k 1", 1, nil, 0},
		{"certain endpoints", 2, []float64{1, 1, 0}, 1},
		{"dead endpoints", 1, []float64{0, 0}, 0},
		{"unequal", 2, []float64{0.9, 0.8, 0.5}, 0.9*0.8 + 0.9*0.5 + 0.8*0.5 - 2*0.9*0.8*0.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := AtLeastK(tt.k, tt.p); math.Abs(got-tt.want) > 1e-9 {
				t.Fatalf("AtLeastK(%d, %v) = %v, want %v", tt.k, tt.p, got, tt.want)
			}
		})
	}
}

func TestAtLeastKInvalidProbabilityIsNaN(t *testing.T) {
	for _, p := range [][]float64{{0.5, -0.1}, {1.01}, {math.NaN()}, {math.Inf(1)}} {
		for _, k := range []int{-1, 0, 1, 5} {
			if got := AtLeastK(k, p); !math.IsNaN(got) {
				t.Fatalf("AtLeastK(%d, %v) = %v, want NaN", k, p, got)
			}
		}
	}
}

func TestAtLeastKMatchesEnumeration(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		n := r.IntN(11)
		p := make([]float64, n)
		for i := range p {
			p[i] = r.Float64()
		}
		for k := -1; k <= n+1; k++ {
			got, want := AtLeastK(k, p), bruteAtLeastK(k, p)
			if math.Abs(got-want) > 1e-12 {
				t.Fatalf("AtLeastK(%d, %v) = %v, enumeration gives %v", k, p, got, want)
			}
		}
	}
}

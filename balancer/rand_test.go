package balancer

import "testing"

func TestPairIsDistinctAndUniform(t *testing.T) {
	for _, seed := range []uint64{0, 1} {
		for _, n := range []int{2, 3, 7} {
			src := newSource(seed)
			counts := make([]int, n)
			const draws = 70000
			for range draws {
				i, j := src.pair(n)
				if i == j || i < 0 || j < 0 || i >= n || j >= n {
					t.Fatalf("pair(%d) = %d, %d", n, i, j)
				}
				counts[i]++
				counts[j]++
			}
			want := 2 * draws / n
			for k, c := range counts {
				if c < want*95/100 || c > want*105/100 {
					t.Errorf("seed %d, n %d: index %d drawn %d times, want about %d (%v)", seed, n, k, c, want, counts)
				}
			}
		}
	}
}

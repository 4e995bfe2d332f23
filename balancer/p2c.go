package balancer

// p2cDraws is how many extra single draws P2C makes when its first pair
// is not both eligible, before it gives up sampling and scans.
const p2cDraws = 4

// pickP2C is the power of two choices over Peak-EWMA cost (Finagle's
// P2CPeakEwma, linkerd2-proxy's default): draw two distinct endpoints
// uniformly, take the cheaper. When exclusions or health make draws miss,
// it draws a few more; if it still lacks two candidates, most of the pool
// is ineligible and it scans what is left for the cheapest.
func (b *Balancer) pickP2C(s *snapshot, f *filter) int {
	n := len(s.entries)
	switch n {
	case 0:
		return -1
	case 1:
		if f.ok(s, 0) {
			return 0
		}
		return -1
	}
	i, j := b.rand.pair(n)
	okI, okJ := f.ok(s, i), f.ok(s, j)
	if okI && okJ {
		return s.cheaper(i, j)
	}
	c := -1
	if okI {
		c = i
	} else if okJ {
		c = j
	}
	for range p2cDraws {
		k := b.rand.intn(n)
		if k == c || !f.ok(s, k) {
			continue
		}
		if c < 0 {
			c = k
			continue
		}
		return s.cheaper(c, k)
	}
	return s.cheapest(f, b.rand.intn(n))
}

// cheaper returns whichever of i and j costs less (i on a tie). Both
// estimates decay alike from the later of their stamps to now, so
// comparing them at that stamp gives the answer without reading the
// clock, which costs more than the rest of a pick on some machines. Only
// the older estimate decays to that stamp, which only lowers it, so when
// the older one is already no dearer the answer needs no decay factor
// (and no exp) at all. With load reports the costs are compared the same
// way, each priced with its report.
func (s *snapshot) cheaper(i, j int) int {
	li, lj := s.lds[i], s.lds[j]
	ci, ti := li.ewma.load()
	cj, tj := lj.ewma.load()
	ni, nj := float64(li.inflight()+1), float64(lj.inflight()+1)
	if li.report.Load()|lj.report.Load() != 0 {
		return s.cheaperReported(i, j, ci, cj, ti, tj, ni, nj)
	}
	// Only the older estimate decays, and decayedFor spares its exp for
	// all but near-ties.
	if ti < tj {
		if ci*ni <= cj*nj {
			return i
		}
		ci = li.decay().decayedFor(ci, tj-ti, ni, cj*nj)
	} else {
		if cj*nj < ci*ni {
			return j
		}
		cj = lj.decay().decayedFor(cj, ti-tj, nj, ci*ni)
	}
	if cj*nj < ci*ni {
		return j
	}
	return i
}

// cheaperReported is cheaper when either endpoint sent a load report.
func (s *snapshot) cheaperReported(i, j int, ci, cj float64, ti, tj int64, ni, nj float64) int {
	li, lj := s.lds[i], s.lds[j]
	t := max(ti, tj)
	pi := li.price(li.decay().decayed(ci, t-ti), t-ti, ni)
	pj := lj.price(lj.decay().decayed(cj, t-tj), t-tj, nj)
	if pj < pi {
		return j
	}
	return i
}

// cheapest scans every endpoint f accepts for the lowest cost, from start
// on, so that ties (as between endpoints never observed) go to a random one.
func (s *snapshot) cheapest(f *filter, start int) int {
	now := s.p.now()
	n := len(s.entries)
	best, least := -1, 0.0
	for k := range n {
		i := start + k
		if i >= n {
			i -= n
		}
		if !f.ok(s, i) {
			continue
		}
		if c := s.lds[i].cost(now); best < 0 || c < least {
			best, least = i, c
		}
	}
	return best
}

package balancer

// pickLeastOutstanding scans every endpoint f accepts for the fewest
// attempts in flight, starting at a random offset so that ties do not
// always go to the same endpoint (grpc-go's leastrequest samples instead;
// a full scan guarantees a less busy endpoint is never passed over). The
// scan stops at the first idle endpoint.
func (b *Balancer) pickLeastOutstanding(s *snapshot, f *filter) int {
	n := len(s.entries)
	if n == 0 {
		return -1
	}
	start := b.rand.intn(n)
	best, least := -1, int64(0)
	for k := range n {
		i := start + k
		if i >= n {
			i -= n
		}
		if !f.ok(s, i) {
			continue
		}
		o := s.lds[i].inflight()
		if best < 0 || o < least {
			best, least = i, o
			if o == 0 {
				break
			}
		}
	}
	return best
}

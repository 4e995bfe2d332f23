package balancer

// pickRoundRobin takes the next endpoint in turn, skipping those f
// rejects. After skipping k endpoints it advances the shared position by
// k more, so the endpoint after a skipped one does not get its turn too.
func (b *Balancer) pickRoundRobin(s *snapshot, f *filter) int {
	n := len(s.entries)
	if n == 0 {
		return -1
	}
	base := int((b.rr.Add(1) - 1) % uint64(n))
	for k := range n {
		i := base + k
		if i >= n {
			i -= n
		}
		if f.ok(s, i) {
			if k > 0 {
				b.rr.Add(uint64(k))
			}
			return i
		}
	}
	return -1
}

package balancer

// pickWeighted is nginx's smooth weighted round-robin
// (ngx_http_upstream_get_peer): every eligible endpoint's running weight
// grows by its weight, the largest wins (the first on ties) and gives back
// the total. Over each cycle of Σweights picks every endpoint is chosen
// exactly weight times, interleaved rather than in runs. Endpoints f
// rejects sit the pick out and their running weight does not grow.
func (s *snapshot) pickWeighted(f *filter) int {
	n := len(s.entries)
	if n == 0 {
		return -1
	}
	// Ask health and the exclusion list before taking the lock:
	// Member.Allowed may report a state change to user code.
	var buf [16]uint64 // a bitset on the stack for up to 1024 endpoints
	var ok []uint64
	if words := (n + 63) / 64; words <= len(buf) {
		ok = buf[:words]
	} else {
		ok = make([]uint64, words)
	}
	found := false
	for i := range s.entries {
		if f.ok(s, i) {
			ok[i/64] |= 1 << (i % 64)
			found = true
		}
	}
	if !found {
		return -1
	}
	s.wrrMu.Lock()
	best, total := -1, 0
	for i := range s.entries {
		if ok[i/64]&(1<<(i%64)) == 0 {
			continue
		}
		w := s.entries[i].EffectiveWeight()
		s.wrrCur[i] += w
		total += w
		if best < 0 || s.wrrCur[i] > s.wrrCur[best] {
			best = i
		}
	}
	s.wrrCur[best] -= total
	s.wrrMu.Unlock()
	return best
}

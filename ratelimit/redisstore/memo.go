package redisstore

import (
	"strings"

	"github.com/sturdyai/sturdy/ratelimit"
)

// maxMemo bounds each cache of derived values (key names, boxed script
// arguments). Once full, a cache stops remembering and its callers
// compute afresh, as they would with no cache.
const maxMemo = 4096

// names is a key's Redis keys in the order the scripts take them:
// cooldown, requests bucket, tokens bucket. They share the hash tag
// "{prefix:key}", hence a Redis Cluster slot, as one script touching them
// all requires.
type names [3]string

// names returns key's Redis keys, cached: building them costs two
// allocations a call otherwise.
func (s *Store) names(key string) *names {
	s.memoMu.RLock()
	n, ok := s.nameMemo[key]
	s.memoMu.RUnlock()
	if ok {
		return n
	}
	n = s.newNames(key)
	s.memoMu.Lock()
	if len(s.nameMemo) < maxMemo {
		s.nameMemo[key] = n
	}
	s.memoMu.Unlock()
	return n
}

// newNames cuts the three names from one string: one allocation.
func (s *Store) newNames(key string) *names {
	var b strings.Builder
	tag := len(s.prefix) + len(key) + 1
	b.Grow(3*tag + len(":cool:req:tok"))
	for _, suffix := range [...]string{":cool", ":req", ":tok"} {
		b.WriteString(s.prefix)
		b.WriteString(key)
		b.WriteByte('}')
		b.WriteString(suffix)
	}
	all := b.String()
	i, j := tag+5, 2*tag+9
	return &names{all[:i], all[i:j], all[j:]}
}

// args is a limit's GCRA emission interval and tau (burst × interval) of
// each bucket in microseconds (zero for an unlimited bucket), and the
// token burst, boxed once for the scripts.
type args struct {
	ri, rtau, ti, ttau, tb any
}

// args returns lim's script arguments, cached: boxing floats for the
// scripts costs an allocation each otherwise.
func (s *Store) args(lim ratelimit.Limit) *args {
	s.memoMu.RLock()
	a, ok := s.argMemo[lim]
	s.memoMu.RUnlock()
	if ok {
		return a
	}
	var ri, rtau, ti, ttau float64
	if lim.RequestsPerSecond > 0 {
		ri = 1e6 / lim.RequestsPerSecond
		rtau = float64(lim.Burst) * ri
	}
	if lim.TokensPerMinute > 0 {
		ti = 60e6 / float64(lim.TokensPerMinute)
		ttau = float64(lim.TokenBurst) * ti
	}
	a = &args{ri, rtau, ti, ttau, lim.TokenBurst}
	s.memoMu.Lock()
	if len(s.argMemo) < maxMemo {
		s.argMemo[lim] = a
	}
	s.memoMu.Unlock()
	return a
}

package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sturdyai/sturdy/ratelimit"
)

var _ ratelimit.LearnStore = (*Store)(nil)

// What the Limiters of a fleet learn about a key (ratelimit.Learned) is a
// Redis hash "{prefix:key}:learn" in the key's slot, with fields m (Max),
// p (Probe, 0 or 1), s (Since), t (Told) and u (ToldUntil); times in
// microseconds since the Unix epoch on the replicas' clocks (a Limiter's
// learning runs on its own clock: replicas whose clocks disagree by d see
// the shared curve shifted by d). It expires an hour after its last
// change. Every replica rereads it at most every ratelimit.LearnSync, and
// writes it on each decrease and each rate a server reported, through
// learnScript, which keeps a decrease recorded by another replica whose
// cooldown covers the new refusal: a 429 storm seen by every replica is
// one event, not one decrease per replica.

// learnTTL is how long a key's learned state outlives its last change.
const learnTTL = time.Hour

// learnScript merges a replica's learned state into the shared one and
// returns the state in force.
//
//	KEYS: learn
//	ARGV: m, p, s, t, u (as Learned, times in µs), at (µs; 0: no refusal), ttl (ms)
//	returns {m, p, s, t, u} as strings
var learnScript = redis.NewScript(`
local cur = redis.call('HMGET', KEYS[1], 'm', 'p', 's', 't', 'u')
local out = {cur[1] or '0', cur[2] or '0', cur[3] or '0', cur[4] or '0', cur[5] or '0'}
local at = tonumber(ARGV[6])
if at > 0 and not (tonumber(out[1]) > 0 and tonumber(out[3]) > at) then
  out[1], out[2], out[3] = ARGV[1], ARGV[2], ARGV[3]
end
if tonumber(ARGV[5]) > tonumber(out[5]) then
  out[4], out[5] = ARGV[4], ARGV[5]
end
redis.call('HSET', KEYS[1], 'm', out[1], 'p', out[2], 's', out[3], 't', out[4], 'u', out[5])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[7]))
return out
`)

// learnedScript reads the shared learned state (a script, as every other
// call of the Store is, so that any redis.Scripter will do).
//
//	KEYS: learn
//	returns {m, p, s, t, u} as strings
var learnedScript = redis.NewScript(`
local cur = redis.call('HMGET', KEYS[1], 'm', 'p', 's', 't', 'u')
return {cur[1] or '0', cur[2] or '0', cur[3] or '0', cur[4] or '0', cur[5] or '0'}
`)

func (s *Store) learnKey(key string) string { return s.prefix + key + "}:learn" }

// Learned implements ratelimit.LearnStore. While the Store is on local
// limits it returns an error at once: the Limiter keeps what it learned
// itself.
func (s *Store) Learned(ctx context.Context, key string) (ratelimit.Learned, error) {
	use, probe := s.turn()
	if !use {
		return ratelimit.Learned{}, errLocal
	}
	rctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	v, err := learnedScript.Run(rctx, s.client, []string{s.learnKey(key)}).StringSlice()
	if err != nil {
		if ctx.Err() != nil {
			s.abandon(probe)
			return ratelimit.Learned{}, ctx.Err()
		}
		s.failed(probe, err)
		return ratelimit.Learned{}, err
	}
	s.succeeded(probe)
	return parseLearned(v)
}

// Learn implements ratelimit.LearnStore.
func (s *Store) Learn(ctx context.Context, key string, st ratelimit.Learned, at int64) (ratelimit.Learned, error) {
	use, probe := s.turn()
	if !use {
		return st, errLocal
	}
	rctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	p := "0"
	if st.Probe {
		p = "1"
	}
	f := func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
	us := func(ns int64) string { return strconv.FormatInt(ns/1e3, 10) }
	v, err := learnScript.Run(rctx, s.client, []string{s.learnKey(key)},
		f(st.Max), p, us(st.Since), f(st.Told), us(st.ToldUntil), us(at), learnTTL.Milliseconds()).StringSlice()
	if err != nil {
		if ctx.Err() != nil {
			s.abandon(probe)
			return st, ctx.Err()
		}
		s.failed(probe, err)
		return st, err
	}
	s.succeeded(probe)
	return parseLearned(v)
}

var errLocal = fmt.Errorf("redisstore: on local limits")

// parseLearned reads the hash's fields m, p, s, t, u; missing ones are
// zero.
func parseLearned(v []string) (ratelimit.Learned, error) {
	if len(v) != 5 {
		return ratelimit.Learned{}, fmt.Errorf("redisstore: unexpected learned state %q", v)
	}
	num := func(s string) float64 {
		x, _ := strconv.ParseFloat(s, 64)
		return x
	}
	ns := func(s string) int64 {
		x, _ := strconv.ParseInt(s, 10, 64)
		return x * 1e3
	}
	return ratelimit.Learned{
		Max:       num(v[0]),
		Probe:     v[1] == "1",
		Since:     ns(v[2]),
		Told:      num(v[3]),
		ToldUntil: ns(v[4]),
	}, nil
}

// Package redisstore makes the limits of a ratelimit.Limiter hold for a
// whole fleet of replicas rather than for one process, by keeping its
// per-key state in Redis.
//
// A client library runs in many replicas of its user's service, while a
// provider counts requests and tokens per minute per API key, for the
// whole fleet. With the in-process store, N replicas send N times the
// allowed rate; and a 429 with Retry-After seen by one replica pauses only
// that replica. A Store from this package is a ratelimit.Store: give it to
// ratelimit.Config.Store and every replica admits against the same
// buckets and the same cooldowns.
//
// # Model
//
// Each key has up to three Redis strings, named so that Redis Cluster puts
// them in one hash slot ("{prefix:key}:req", "{prefix:key}:tok",
// "{prefix:key}:cool"): the GCRA theoretical arrival time of the
// requests bucket and of the tokens bucket, and the cooldown deadline, the
// same three numbers the in-process store keeps. Each operation (take,
// adjust, cooldown) is one Lua script, so it is atomic on the server, and
// one round trip. Times are read inside the script from Redis's own clock
// (TIME), never from the replicas', so clock skew between replicas does not
// bend the limits; the store returns waits relative to that clock, and
// converts a cooldown's deadline into a duration on the caller's clock
// before sending it. Every key expires when its state stops mattering (a
// bucket when it is full again, a cooldown when it ends), so idle keys
// cost nothing. The token flow is the Limiter's reserve-then-correct: a
// call takes its estimate at admission and Permit.Done gives back or takes
// the difference in a second script.
//
// # When Redis is slow or down
//
// Every round trip is bounded by Config.Timeout (50 ms by default). A
// failed or timed-out round trip never fails the call: the operation is
// redone at once on an in-process store whose limits are Config.Share of
// the shared ones (this replica's share of the fleet), and the store stays
// on local limits for Config.ProbeInterval, so that the calls behind it do
// not each pay the timeout. After that interval one call probes Redis;
// when it answers, the store is back on the shared limits. A cooldown is
// always recorded locally too, and one that could not be written to Redis
// is written when Redis is back, so the fleet still learns of it. Nothing
// but the caller's own context ending makes Take return an error.
//
// # Learned rates
//
// A Store is also a ratelimit.LearnStore: what each replica's Limiter
// learns about a key with no configured rate (its 429s, its rate-limit
// headers; see ratelimit.LearnConfig) is kept in one Redis hash per key
// and reread by every replica at most every ratelimit.LearnSync, so the
// fleet paces the key at one learned rate against one shared bucket. A
// decrease recorded by one replica whose cooldown covers another's
// refusal is the same event: a storm seen by every replica is one
// decrease. While Redis is away, each replica keeps pacing at what it
// learned itself, on local limits sized to Config.Share.
//
// The script shapes follow the GCRA of github.com/go-redis/redis_rate
// (itself after Brandur Leach's and rwz's redis-gcra), extended to two
// buckets and a cooldown per key.
package redisstore

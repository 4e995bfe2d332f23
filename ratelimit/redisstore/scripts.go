package redisstore

import "github.com/redis/go-redis/v9"

// The scripts keep times in microseconds since 2017-01-01 UTC on Redis's
// clock (TIME), as redis_rate does: Lua numbers are doubles, and so
// shifted they stay exact well past 2200. A bucket's value is its GCRA
// theoretical arrival time (TAT), the instant it would be full again; a
// missing key is a full bucket or no cooldown. Every write sets an expiry
// at the moment the value stops mattering. The resolution is about a
// tenth of a microsecond, so a rate above some millions a second per key
// is effectively unlimited.
//
// redis.replicate_commands is a no-op from Redis 5 on; before that it is
// what allows writes after the non-deterministic TIME.
const clock = `
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = (t[1] - 1483228800) * 1000000 + t[2]
`

// put stores a TAT or deadline v, expiring when it passes.
const put = `
local function put(key, v)
  if v > now then
    redis.call('SET', key, v, 'PX', math.ceil((v - now) / 1000))
  else
    redis.call('DEL', key)
  end
end
`

// takeScript charges one request and n tokens unless the wait that needs
// exceeds maxWait, as ratelimit's in-process store does. It is the hot
// path, so it passes the tokens bucket only when tokens are in play (the
// Redis-side cost of a script grows with its keys and arguments) and
// writes inline.
//
//	KEYS: cool, req[, tok]
//	ARGV: maxWait (µs), request interval (µs), request tau (burst × interval, µs)
//	      [, token interval (µs), token tau (µs), token burst, n]
//	      (an interval of 0 means that bucket is unlimited)
//	returns {admitted 0|1, wait (µs, rounded up), reason 0|1 req|2 tok|3 cool}
var takeScript = redis.NewScript(clock + `
local maxw, ri, rtau = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tokens = #KEYS == 3
local v = redis.call('MGET', unpack(KEYS))
local wait, why = 0, 0
local cd = tonumber(v[1])
if cd and cd > now then wait, why = cd - now, 3 end
local rtat, ttat, ti, n
if ri > 0 then
  rtat = math.max(tonumber(v[2]) or now, now)
  local f = rtat - now + ri - rtau
  if f > wait then wait, why = f, 1 end
end
if tokens then
  ti, n = tonumber(ARGV[4]), tonumber(ARGV[7])
  ttat = math.max(tonumber(v[3]) or now, now)
  local f = ttat - now + math.min(n, tonumber(ARGV[6])) * ti - tonumber(ARGV[5])
  if f > wait then wait, why = f, 2 end
end
-- Float sums of fractional intervals are off by far less than a
-- nanosecond; such a wait is no wait.
if wait < 0.001 then wait, why = 0, 0 else wait = math.ceil(wait) end
if wait > maxw then return {0, wait, why} end
if rtat then
  rtat = rtat + ri
  if rtat > now then redis.call('SET', KEYS[2], rtat, 'PX', math.ceil((rtat - now) / 1000)) end
end
if ttat then
  ttat = ttat + n * ti
  if ttat > now then redis.call('SET', KEYS[3], ttat, 'PX', math.ceil((ttat - now) / 1000)) end
end
return {1, wait, why}
`)

// adjustScript charges (n > 0) or gives back (n < 0) units of each bucket
// without any check; a bucket never holds more than its burst, so a TAT
// never falls behind now.
//
//	KEYS: req, tok
//	ARGV: request interval (µs), requests, token interval (µs), tokens
var adjustScript = redis.NewScript(clock + put + `
local function adjust(key, interval, n)
  if interval <= 0 or n == 0 then return end
  put(key, math.max(tonumber(redis.call('GET', key)) or now, now) + n * interval)
end
adjust(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))
adjust(KEYS[2], tonumber(ARGV[3]), tonumber(ARGV[4]))
return 1
`)

// cooldownScript refuses the key for d from now on Redis's clock, unless
// a longer cooldown is already set.
//
//	KEYS: cool
//	ARGV: d (µs, > 0)
var cooldownScript = redis.NewScript(clock + put + `
local deadline = now + tonumber(ARGV[1])
local cur = tonumber(redis.call('GET', KEYS[1]))
if not cur or deadline > cur then put(KEYS[1], deadline) end
return 1
`)

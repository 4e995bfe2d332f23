// Package ratelimit decides, inside the client, whether a call to a model
// server may go out now: before the server has to say no.
//
// Inference APIs limit clients in requests per minute and in tokens per
// minute, and answer an overloaded moment with 429 and Retry-After. A
// client that keeps sending anyway wastes its quota on refusals, gets
// throttled harder, and slows every other caller. This package keeps three
// kinds of limit per key, where the key is what the caller limits (an
// endpoint, a model, a tenant, or a combination):
//
//   - requests per second with a burst, a token bucket as in
//     golang.org/x/time/rate;
//   - tokens per minute, for LLM traffic, in the style of LiteLLM's rpm/tpm
//     limits: a call reserves its estimated token count before it goes out
//     and corrects it with the real usage afterwards (Permit.Done), giving
//     back what it did not use or taking more, possibly into debt that
//     delays later calls;
//   - cooldowns: an Overloaded outcome with a Retry-After (Limiter.Observe)
//     or an explicit Limiter.Cooldown refuses the key until then.
//
// Limiter.Allow admits or refuses at once; Limiter.Wait waits, but never
// past its maxWait nor its context's deadline, refusing at once (and
// charging nothing) when the wait needed is longer. Both return a Permit, a
// small value whose Done corrects the token estimate and whose Cancel gives
// the admission back. Do wraps the whole sequence around one call.
//
// Every refusal is a *LimitedError naming the key, the reason ("requests",
// "tokens", "cooldown", "throttle") and when to come back; it matches
// ErrLimited and sturdy.ErrOverloaded, so sturdy.ClassOf reports
// sturdy.Overloaded and the degrade and failover policies treat a local
// refusal like a server's 429.
//
// The buckets are kept as GCRA "theoretical arrival times" (one integer
// per bucket, the token bucket of x/time/rate seen from the other side) in
// a Store. The default Store is in-process and bounded (Config.MaxKeys); a
// shared Store, such as a Redis script, can make the limits fleet-wide.
//
// ParseHeaders reads what a server says about the caller's limits on every
// response, before any 429: the rate-limit headers of OpenAI and Azure
// OpenAI (x-ratelimit-*), of Anthropic (anthropic-ratelimit-*), of the IETF
// httpapi draft "RateLimit header fields for HTTP" (RateLimit and
// RateLimit-Policy, revision -11, and tolerantly the older RateLimit-Limit
// triple), and Retry-After. It turns them into one Signal: for requests and
// for tokens, the limit, what remains of it and how long until it resets,
// each known or not. Malformed values are ignored one by one, and a
// response without such headers costs no allocation. ParseMetadata reads
// the same fields from gRPC metadata, whose keys are lower case.
//
// Learned capacity: a key with no configured request rate is paced at a
// rate the Limiter learns from its server (Config.Learn; on by default).
// Nothing is paced until the server first answers 429 (an Overloaded
// outcome, given to Observe); from then on the key's rate follows CUBIC's
// curve (RFC 9438) as the AWS SDKs' adaptive retry mode applies it to a
// request rate: on each refusal it falls to Beta times the rate the server
// was seen to accept, the server's Retry-After is honoured as a cooldown,
// and afterwards the rate climbs back, flat near the rate of the refusal
// and faster beyond it, so the ramp after a Retry-After is paced rather
// than a burst. Rate-limit headers given to Listen or ListenHeaders say
// the rate outright: a request quota that reports how much is left and
// when it is full again gives the rate the server refills it at, which
// caps the key's pace (3% below it) before any 429; a quota with nothing
// left pauses the key until it refills. A token quota likewise becomes the
// key's token rate, unless it has a configured one, against which each
// admission charges its estimate (ToldTokensPerMinute). A Store that is also a LearnStore
// (the Redis store) shares what is learned across the replicas of a
// client, so that they pace one provider key together (the request rate;
// a told token rate stays in the process). LearnConfig's doc
// says why CUBIC's curve and not a gradient.
//
// Throttle is separate: client-side adaptive throttling from Google's SRE
// book ("Handling Overload", K = 2 over two minutes). It needs no
// configured limit; it learns from how many requests the backend accepts
// and rejects locally the excess beyond K times that.
package ratelimit

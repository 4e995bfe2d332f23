package ratelimit

import (
	"net/http"
	"time"

	"github.com/sturdyai/sturdy"
)

// Quota is one limit as a server reports it on a response: how much it
// allows per window, how much of that is left, and how long until the
// window is over. Each figure has a flag saying whether the response
// carried it in a form that could be read; a figure that is not known is
// zero.
//
// Servers promise no relation between the figures: the IETF draft lets a
// server lower the available quota or lengthen the window on any response,
// and neither OpenAI nor Anthropic documents Remaining ≤ Limit. A Quota
// reports what was sent and checks only that each figure is in range.
type Quota struct {
	// Limit is the most the server allows in one window: requests, or
	// tokens for the token quotas.
	Limit int64
	// Remaining is what is left of the limit in the current window.
	Remaining int64
	// Reset is how long after ParseHeaders' now the window is over:
	// OpenAI's "time until the rate limit resets to its initial state",
	// Anthropic's reset timestamp less now, the IETF draft's effective
	// window. It is within [0, sturdy.MaxRetryAfter]: a reset in the past
	// is zero, one further away is sturdy.MaxRetryAfter.
	Reset time.Duration

	// HasLimit, HasRemaining and HasReset say which figures are known.
	HasLimit, HasRemaining, HasReset bool
}

// Known reports whether the response carried any figure of the quota.
func (q Quota) Known() bool { return q.HasLimit || q.HasRemaining || q.HasReset }

// Signal is what one response says about the caller's rate limits, in a
// form that does not depend on the provider. The zero Signal knows
// nothing.
type Signal struct {
	// Requests is the request quota.
	Requests Quota
	// Tokens is the token quota: OpenAI's tokens per minute, or, for
	// Anthropic, its anthropic-ratelimit-tokens-* headers, which report
	// the most restrictive token limit in effect.
	Tokens Quota
	// InputTokens and OutputTokens are Anthropic's separate input- and
	// output-token quotas (ITPM and OTPM); other providers do not send
	// them.
	InputTokens, OutputTokens Quota
	// RetryAfter is the server's explicit wait, from retry-after-ms or
	// Retry-After, within [0, sturdy.MaxRetryAfter]; HasRetryAfter says
	// whether there was one. A consumer should let it take precedence
	// over the quotas' Reset, as the IETF draft requires for its fields
	// (section 7: "the Retry-After field MUST take precedence").
	RetryAfter    time.Duration
	HasRetryAfter bool
}

// ParseHeaders reads the rate-limit headers of a response into a Signal,
// with now as the time the response arrived (Anthropic sends reset times
// as timestamps). ok is false when no rate-limit header held a readable
// value.
//
// It reads, per the providers' documentation:
//
//   - OpenAI (OpenAI API docs, guide "Rate limits", section "Rate limits
//     in headers"): x-ratelimit-limit-requests, -limit-tokens,
//     -remaining-requests, -remaining-tokens, and -reset-requests,
//     -reset-tokens as Go-style durations ("1s", "6m0s"), read by
//     sturdy.ParseResetDuration, which also takes Azure's plain seconds.
//     Azure OpenAI sends the same names for the requests-per-minute and
//     tokens-per-minute limits of a deployment (Azure docs, "Manage Azure
//     OpenAI in Microsoft Foundry Models quota"), and -1 for figures its
//     Responses API does not track, which is read as unknown.
//   - Anthropic (Claude API docs, "Rate limits", section "Response
//     headers"): anthropic-ratelimit-{requests,tokens,input-tokens,
//     output-tokens}-{limit,remaining,reset}, the resets as RFC 3339
//     timestamps.
//   - The IETF httpapi draft "RateLimit header fields for HTTP",
//     draft-ietf-httpapi-ratelimit-headers-11 (23 May 2026): the
//     structured fields RateLimit ("default";r=50;t=30) and
//     RateLimit-Policy ("default";q=100;w=60), as a request quota. Of
//     several service-limit items it takes the one with the least
//     available quota r (then the longest window t) among those whose
//     policy counts requests (qu absent, "requests" or "request"); Limit
//     is q of the policy of that name, or, without a RateLimit field, of
//     the first request policy. Tolerantly, it also reads the older
//     drafts' (up to -06) RateLimit-Limit, RateLimit-Remaining and
//     RateLimit-Reset (delay-seconds).
//   - retry-after-ms, then Retry-After (seconds or an HTTP date), as the
//     first two steps of sturdy.RetryAfterFromHeader; Anthropic documents
//     retry-after on its 429s.
//
// Each quota comes whole from one family of headers, the first that has
// any of its figures, in the order above, so that a limit from one
// provider is never paired with a remaining count from another (a gateway
// in front of a provider may add its own RateLimit fields).
//
// Headers are looked up as http.Header.Get does: keys in canonical form,
// the first value of each (every line of the structured fields). Missing
// and malformed values are ignored one by one: counts must be plain
// non-negative decimal integers of at most 18 digits (Azure's -1 is
// "unknown"), times must be within range, and a RateLimit or
// RateLimit-Policy field that is not a valid structured-field list is
// ignored whole, as the draft requires. It never fails and never panics,
// and it does not allocate when the response has no rate-limit header
// (BenchmarkParseHeaders/none).
func ParseHeaders(h http.Header, now time.Time) (Signal, bool) {
	p := headerParse{now: now}
	// One pass over the header map rather than a lookup per known name:
	// a response has about a dozen headers and there are 25 names. For a
	// response without rate-limit headers the pass takes about half the
	// time of the 25 lookups (BenchmarkParseHeaders/none, against the
	// lookups measured alone).
	for k, vs := range h {
		if len(vs) > 0 && maybeRateLimit(k) {
			p.field(k, vs)
		}
	}
	if !p.any {
		return Signal{}, false
	}
	return p.signal()
}

// maybeRateLimit rejects at a glance most header names that are none of
// the rate-limit names: every one of those starts with X-, A or R and is
// at least 9 bytes long ("Ratelimit"), so Date, Content-Type, Server and
// the like cost one comparison (BenchmarkParseHeaders/none).
func maybeRateLimit(k string) bool {
	if len(k) < len(hdrRateLimit) {
		return false
	}
	switch k[0] {
	case 'X', 'A', 'R':
		return true
	}
	return false
}

// Canonical header names (textproto.CanonicalMIMEHeaderKey), as the keys
// of an http.Header are.
const (
	hdrOpenAILimitRequests     = "X-Ratelimit-Limit-Requests"
	hdrOpenAILimitTokens       = "X-Ratelimit-Limit-Tokens"
	hdrOpenAIRemainingRequests = sturdy.HeaderRemainingRequests
	hdrOpenAIRemainingTokens   = sturdy.HeaderRemainingTokens
	hdrOpenAIResetRequests     = sturdy.HeaderResetRequests
	hdrOpenAIResetTokens       = sturdy.HeaderResetTokens

	hdrAnthropicRequestsLimit         = "Anthropic-Ratelimit-Requests-Limit"
	hdrAnthropicRequestsRemaining     = "Anthropic-Ratelimit-Requests-Remaining"
	hdrAnthropicRequestsReset         = "Anthropic-Ratelimit-Requests-Reset"
	hdrAnthropicTokensLimit           = "Anthropic-Ratelimit-Tokens-Limit"
	hdrAnthropicTokensRemaining       = "Anthropic-Ratelimit-Tokens-Remaining"
	hdrAnthropicTokensReset           = "Anthropic-Ratelimit-Tokens-Reset"
	hdrAnthropicInputTokensLimit      = "Anthropic-Ratelimit-Input-Tokens-Limit"
	hdrAnthropicInputTokensRemaining  = "Anthropic-Ratelimit-Input-Tokens-Remaining"
	hdrAnthropicInputTokensReset      = "Anthropic-Ratelimit-Input-Tokens-Reset"
	hdrAnthropicOutputTokensLimit     = "Anthropic-Ratelimit-Output-Tokens-Limit"
	hdrAnthropicOutputTokensRemaining = "Anthropic-Ratelimit-Output-Tokens-Remaining"
	hdrAnthropicOutputTokensReset     = "Anthropic-Ratelimit-Output-Tokens-Reset"

	hdrRateLimit          = "Ratelimit"
	hdrRateLimitPolicy    = "Ratelimit-Policy"
	hdrRateLimitLimit     = "Ratelimit-Limit"
	hdrRateLimitRemaining = "Ratelimit-Remaining"
	hdrRateLimitReset     = "Ratelimit-Reset"

	hdrRetryAfterMs = sturdy.HeaderRetryAfterMs
	hdrRetryAfter   = sturdy.HeaderRetryAfter
)

// headerParse gathers one response's headers, by family, during the pass
// over the map; signal then picks, per quota, the first family that has it.
type headerParse struct {
	now                                time.Time
	clock                              func() time.Time // reads now when first needed, if set
	openAIRequests, openAITokens       Quota
	anthropicRequests, anthropicTokens Quota
	anthropicInput, anthropicOutput    Quota
	legacy                             Quota    // RateLimit-Limit, -Remaining, -Reset
	rateLimit, rateLimitPolicy         []string // every line of the structured fields
	retryAfterMs, retryAfter           string
	hasRetryAfterMs, hasRetryAfter     bool
	// any says some field was one of the above: without any, there is
	// no signal to build (most responses: BenchmarkRoundTripOverhead in
	// httpmw).
	any bool
}

func (p *headerParse) field(k string, vs []string) {
	v := vs[0]
	switch k {
	case hdrOpenAILimitRequests:
		p.openAIRequests.setLimit(v)
	case hdrOpenAILimitTokens:
		p.openAITokens.setLimit(v)
	case hdrOpenAIRemainingRequests:
		p.openAIRequests.setRemaining(v)
	case hdrOpenAIRemainingTokens:
		p.openAITokens.setRemaining(v)
	case hdrOpenAIResetRequests:
		p.openAIRequests.setResetDuration(v)
	case hdrOpenAIResetTokens:
		p.openAITokens.setResetDuration(v)

	case hdrAnthropicRequestsLimit:
		p.anthropicRequests.setLimit(v)
	case hdrAnthropicRequestsRemaining:
		p.anthropicRequests.setRemaining(v)
	case hdrAnthropicRequestsReset:
		p.anthropicRequests.setResetTime(v, p.at())
	case hdrAnthropicTokensLimit:
		p.anthropicTokens.setLimit(v)
	case hdrAnthropicTokensRemaining:
		p.anthropicTokens.setRemaining(v)
	case hdrAnthropicTokensReset:
		p.anthropicTokens.setResetTime(v, p.at())
	case hdrAnthropicInputTokensLimit:
		p.anthropicInput.setLimit(v)
	case hdrAnthropicInputTokensRemaining:
		p.anthropicInput.setRemaining(v)
	case hdrAnthropicInputTokensReset:
		p.anthropicInput.setResetTime(v, p.at())
	case hdrAnthropicOutputTokensLimit:
		p.anthropicOutput.setLimit(v)
	case hdrAnthropicOutputTokensRemaining:
		p.anthropicOutput.setRemaining(v)
	case hdrAnthropicOutputTokensReset:
		p.anthropicOutput.setResetTime(v, p.at())

	case hdrRateLimit:
		p.rateLimit = vs
	case hdrRateLimitPolicy:
		p.rateLimitPolicy = vs
	case hdrRateLimitLimit:
		// Drafts -00 to -02 allowed a list after the limit
		// ("100, 100;w=60"); the first member is the limit.
		p.legacy.setLimit(firstListMember(v))
	case hdrRateLimitRemaining:
		p.legacy.setRemaining(v)
	case hdrRateLimitReset:
		if n, ok := parseCount(v); ok {
			p.legacy.Reset, p.legacy.HasReset = secondsCapped(n), true
		}

	case hdrRetryAfterMs:
		p.retryAfterMs, p.hasRetryAfterMs = v, true
	case hdrRetryAfter:
		p.retryAfter, p.hasRetryAfter = v, true
	default:
		return
	}
	p.any = true
}

// at is the time the response arrived: now, read from clock the first
// time it is needed when a clock is set.
func (p *headerParse) at() time.Time {
	if p.clock != nil {
		p.now, p.clock = p.clock(), nil
	}
	return p.now
}

// parseHeadersLazily is ParseHeaders reading the clock only when a header
// needs it.
func parseHeadersLazily(h http.Header, clock func() time.Time) (Signal, bool, time.Time) {
	p := headerParse{clock: clock}
	for k, vs := range h {
		if len(vs) > 0 && maybeRateLimit(k) {
			p.field(k, vs)
		}
	}
	if !p.any {
		return Signal{}, false, time.Time{}
	}
	s, ok := p.signal()
	if ok {
		p.at()
	}
	return s, ok, p.now
}

func (p *headerParse) signal() (Signal, bool) {
	s := Signal{
		Requests:     firstKnown(p.openAIRequests, p.anthropicRequests),
		Tokens:       firstKnown(p.openAITokens, p.anthropicTokens),
		InputTokens:  p.anthropicInput,
		OutputTokens: p.anthropicOutput,
	}
	if !s.Requests.Known() {
		s.Requests = firstKnown(ietfRequests(p.rateLimit, p.rateLimitPolicy), p.legacy)
	}
	if p.hasRetryAfterMs {
		s.RetryAfter, s.HasRetryAfter = sturdy.ParseRetryAfterMs(p.retryAfterMs)
	}
	if !s.HasRetryAfter && p.hasRetryAfter {
		s.RetryAfter, s.HasRetryAfter = sturdy.ParseRetryAfter(p.retryAfter, p.at())
	}
	ok := s.Requests.Known() || s.Tokens.Known() || s.InputTokens.Known() ||
		s.OutputTokens.Known() || s.HasRetryAfter
	return s, ok
}

func firstKnown(a, b Quota) Quota {
	if a.Known() {
		return a
	}
	return b
}

func (q *Quota) setLimit(v string) {
	if n, ok := parseCount(v); ok {
		q.Limit, q.HasLimit = n, true
	}
}

func (q *Quota) setRemaining(v string) {
	if n, ok := parseCount(v); ok {
		q.Remaining, q.HasRemaining = n, true
	}
}

func (q *Quota) setResetDuration(v string) {
	if d, ok := sturdy.ParseResetDuration(v); ok {
		q.Reset, q.HasReset = d, true
	}
}

func (q *Quota) setResetTime(v string, now time.Time) {
	if t, ok := parseRFC3339(v); ok {
		q.Reset, q.HasReset = clampReset(t.Sub(now)), true
	}
}

func clampReset(d time.Duration) time.Duration {
	return min(max(d, 0), sturdy.MaxRetryAfter)
}

// secondsCapped turns a non-negative count of seconds into a duration
// within [0, sturdy.MaxRetryAfter] without overflowing.
func secondsCapped(n int64) time.Duration {
	if n >= int64(sturdy.MaxRetryAfter/time.Second) {
		return sturdy.MaxRetryAfter
	}
	return time.Duration(n) * time.Second
}

// maxCountDigits bounds a count so that it fits an int64 without an
// overflow check: 18 digits are below 9.2e18. A longer count is absurd
// for a rate limit and is ignored.
const maxCountDigits = 18

// parseCount parses a count: ASCII digits only, after trimming optional
// whitespace. Signs, fractions and exponents are malformed; so is a
// negative count such as Azure's "-1".
func parseCount(v string) (int64, bool) {
	v = trimOWS(v)
	if v == "" || len(v) > maxCountDigits {
		return 0, false
	}
	var n int64
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// trimOWS trims RFC 9110's optional whitespace, spaces and tabs.
func trimOWS(v string) string {
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	return v
}

// firstListMember returns v up to its first ',' or ';'.
func firstListMember(v string) string {
	for i := 0; i < len(v); i++ {
		if v[i] == ',' || v[i] == ';' {
			return v[:i]
		}
	}
	return v
}

// parseRFC3339 parses an RFC 3339 date-time (section 5.6), such as
// Anthropic's "2024-08-26T17:36:40Z" or "2024-08-26T19:36:40.5+02:00".
// It is written out rather than time.Parse(time.RFC3339, ...) because
// time.Parse allocates for every malformed value and for every offset
// other than Z and the local one; this allocates nothing. Lower-case "t"
// and "z" are accepted (RFC 3339 allows them), as is a leap second.
func parseRFC3339(v string) (time.Time, bool) {
	v = trimOWS(v)
	// 2006-01-02T15:04:05Z is the shortest form.
	if len(v) < 20 || v[4] != '-' || v[7] != '-' || (v[10] != 'T' && v[10] != 't') ||
		v[13] != ':' || v[16] != ':' {
		return time.Time{}, false
	}
	year, ok1 := digits(v[0:4])
	month, ok2 := digits(v[5:7])
	day, ok3 := digits(v[8:10])
	hour, ok4 := digits(v[11:13])
	minute, ok5 := digits(v[14:16])
	sec, ok6 := digits(v[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) ||
		month < 1 || month > 12 || day < 1 || day > daysIn(year, month) ||
		hour > 23 || minute > 59 || sec > 60 {
		return time.Time{}, false
	}
	rest := v[19:]
	nsec := 0
	if rest[0] == '.' {
		i := 1
		for scale := 100_000_000; i < len(rest) && rest[i] >= '0' && rest[i] <= '9'; i++ {
			nsec += int(rest[i]-'0') * scale // digits past nanoseconds add zero
			scale /= 10
		}
		if i == 1 {
			return time.Time{}, false
		}
		rest = rest[i:]
	}
	var offset int // seconds east of UTC
	switch {
	case rest == "Z" || rest == "z":
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		oh, okh := digits(rest[1:3])
		om, okm := digits(rest[4:6])
		if !okh || !okm || oh > 23 || om > 59 {
			return time.Time{}, false
		}
		offset = (oh*60 + om) * 60
		if rest[0] == '-' {
			offset = -offset
		}
	default:
		return time.Time{}, false
	}
	// time.Date takes a leap second as the first second of the next
	// minute, the nearest instant it can represent.
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
	return t.Add(-time.Duration(offset) * time.Second), true
}

// daysIn is the number of days of a month (1-12) in a year.
func daysIn(year, month int) int {
	return time.Date(year, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// digits parses a short run of ASCII digits.
func digits(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

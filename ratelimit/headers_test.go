package ratelimit

import (
	"fmt"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sturdyai/sturdy"
)

// headerOf builds a response header from "Name: value" lines, as a
// server would send them; http.Header.Add canonicalizes the names.
func headerOf(block string) http.Header {
	h := http.Header{}
	for line := range strings.SplitSeq(block, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			h.Add(strings.TrimSpace(k), strings.TrimSpace(v))
		}
	}
	return h
}

// The instant of the Anthropic response whose headers are copied below
// (its Date header said 12:41:00; resets are a second or so away).
var headersNow = time.Date(2025, 8, 21, 12, 40, 58, 0, time.UTC)

// anthropicSample is a real Messages API response's rate-limit headers.
const anthropicSample = `anthropic-ratelimit-input-tokens-limit: 80000
anthropic-ratelimit-input-tokens-remaining: 80000
anthropic-ratelimit-input-tokens-reset: 2025-08-21T12:40:59Z
anthropic-ratelimit-output-tokens-limit: 16000
anthropic-ratelimit-output-tokens-remaining: 16000
anthropic-ratelimit-output-tokens-reset: 2025-08-21T12:41:00Z
anthropic-ratelimit-requests-limit: 1000
anthropic-ratelimit-requests-remaining: 999
anthropic-ratelimit-requests-reset: 2025-08-21T12:40:59Z
anthropic-ratelimit-tokens-limit: 96000
anthropic-ratelimit-tokens-remaining: 96000
anthropic-ratelimit-tokens-reset: 2025-08-21T12:40:59Z
request-id: req_011CSLsW7mFqvHHnzrKdKjAE`

type headerCase struct {
	name  string
	block string
	want  Signal
	ok    bool
}

func quota(limit, remaining int64, reset time.Duration) Quota {
	return Quota{Limit: limit, Remaining: remaining, Reset: reset, HasLimit: true, HasRemaining: true, HasReset: true}
}

var headerCases = []headerCase{
	// OpenAI API docs, guide "Rate limits", section "Rate limits in
	// headers": the sample values of its table.
	{name: "openai docs sample", ok: true, block: `x-ratelimit-limit-requests: 60
x-ratelimit-limit-tokens: 150000
x-ratelimit-remaining-requests: 59
x-ratelimit-remaining-tokens: 149984
x-ratelimit-reset-requests: 1s
x-ratelimit-reset-tokens: 6m0s`,
		want: Signal{Requests: quota(60, 59, time.Second), Tokens: quota(150000, 149984, 6*time.Minute)}},
	// A real chat-completions response: sub-second resets, and the
	// "_usage_based" variants, which are not documented, are ignored.
	{name: "openai response with usage_based variants", ok: true, block: `x-ratelimit-limit-requests: 5000
x-ratelimit-limit-tokens: 160000
x-ratelimit-limit-tokens_usage_based: 160000
x-ratelimit-remaining-requests: 4999
x-ratelimit-remaining-tokens: 159976
x-ratelimit-remaining-tokens_usage_based: 159976
x-ratelimit-reset-requests: 12ms
x-ratelimit-reset-tokens: 9ms
x-ratelimit-reset-tokens_usage_based: 9ms`,
		want: Signal{Requests: quota(5000, 4999, 12*time.Millisecond), Tokens: quota(160000, 159976, 9*time.Millisecond)}},
	{name: "openai compound and capped resets", ok: true, block: `x-ratelimit-reset-requests: 1h2m3.5s
x-ratelimit-reset-tokens: 20ms`,
		want: Signal{Requests: Quota{Reset: time.Hour, HasReset: true}, Tokens: Quota{Reset: 20 * time.Millisecond, HasReset: true}}},
	{name: "openai 429 with retry-after-ms before retry-after", ok: true, block: `x-ratelimit-remaining-requests: 0
x-ratelimit-reset-requests: 1.5s
retry-after-ms: 1500
retry-after: 2`,
		want: Signal{Requests: Quota{Remaining: 0, Reset: 1500 * time.Millisecond, HasRemaining: true, HasReset: true},
			RetryAfter: 1500 * time.Millisecond, HasRetryAfter: true}},
	// Azure OpenAI's Responses API has been seen sending -1 for token
	// figures it does not track: unknown, not a count.
	{name: "azure -1 is unknown", ok: true, block: `x-ratelimit-limit-tokens: -1
x-ratelimit-remaining-tokens: -1
x-ratelimit-reset-tokens: 0
x-ratelimit-remaining-requests: 99`,
		want: Signal{Requests: Quota{Remaining: 99, HasRemaining: true}, Tokens: Quota{HasReset: true}}},
	{name: "azure reset in plain seconds", ok: true, block: `x-ratelimit-remaining-tokens: 0
x-ratelimit-reset-tokens: 12`,
		want: Signal{Tokens: Quota{Reset: 12 * time.Second, HasRemaining: true, HasReset: true}}},

	// Claude API docs, "Rate limits", section "Response headers"; the
	// values are a real response's.
	{name: "anthropic full set", ok: true, block: anthropicSample,
		want: Signal{Requests: quota(1000, 999, time.Second), Tokens: quota(96000, 96000, time.Second),
			InputTokens: quota(80000, 80000, time.Second), OutputTokens: quota(16000, 16000, 2*time.Second)}},
	{name: "anthropic 429", ok: true, block: `anthropic-ratelimit-requests-limit: 50
anthropic-ratelimit-requests-remaining: 0
anthropic-ratelimit-requests-reset: 2025-08-21T12:41:28Z
retry-after: 30`,
		want: Signal{Requests: quota(50, 0, 30*time.Second), RetryAfter: 30 * time.Second, HasRetryAfter: true}},
	{name: "anthropic offsets, fractions, lower case", ok: true, block: `anthropic-ratelimit-requests-reset: 2025-08-21T14:41:00.5+02:00
anthropic-ratelimit-tokens-reset: 2025-08-21t12:41:03.123456789123z
anthropic-ratelimit-input-tokens-reset: 2025-08-21T07:41:08-05:00`,
		want: Signal{Requests: Quota{Reset: 2500 * time.Millisecond, HasReset: true},
			Tokens:      Quota{Reset: 5123456789 * time.Nanosecond, HasReset: true},
			InputTokens: Quota{Reset: 10 * time.Second, HasReset: true}}},
	{name: "anthropic resets past and far away", ok: true, block: `anthropic-ratelimit-requests-reset: 2025-08-21T12:00:00Z
anthropic-ratelimit-tokens-reset: 9999-12-31T23:59:59Z`,
		want: Signal{Requests: Quota{HasReset: true}, Tokens: Quota{Reset: sturdy.MaxRetryAfter, HasReset: true}}},
	{name: "anthropic leap second", ok: true, block: `anthropic-ratelimit-requests-reset: 2025-08-21T12:40:60Z`,
		want: Signal{Requests: Quota{Reset: 2 * time.Second, HasReset: true}}},

	// draft-ietf-httpapi-ratelimit-headers-11, section 4 and appendix B.
	{name: "ietf service limit and policy", ok: true, block: `RateLimit-Policy: "default";q=100;w=60
RateLimit: "default";r=50;t=30`,
		want: Signal{Requests: quota(100, 50, 30*time.Second)}},
	{name: "ietf B.1.1 no policy", ok: true, block: `RateLimit: "default";r=0;t=50`,
		want: Signal{Requests: Quota{Remaining: 0, Reset: 50 * time.Second, HasRemaining: true, HasReset: true}}},
	{name: "ietf B.3.1 multiple windows", ok: true, block: `RateLimit-Policy: "hour";q=1000;w=3600, "day";q=5000;w=86400
RateLimit: "day";r=100;t=36000`,
		want: Signal{Requests: quota(5000, 100, sturdy.MaxRetryAfter)}},
	{name: "ietf least available quota wins", ok: true, block: `RateLimit-Policy: "permin";q=50;w=60,"perhr";q=1000;w=3600
RateLimit: "perhr";r=900;t=3000, "permin";r=5;t=20`,
		want: Signal{Requests: quota(50, 5, 20*time.Second)}},
	{name: "ietf tie goes to the longer window", ok: true, block: `RateLimit: "a";r=0;t=10, "b";r=0;t=40, "c";r=0`,
		want: Signal{Requests: Quota{Reset: 40 * time.Second, HasRemaining: true, HasReset: true}}},
	{name: "ietf list split over field lines", ok: true, block: `RateLimit: "perhr";r=900;t=3000
RateLimit: "permin";r=5;t=20`,
		want: Signal{Requests: Quota{Remaining: 5, Reset: 20 * time.Second, HasRemaining: true, HasReset: true}}},
	{name: "ietf content-bytes policy is not a request quota", ok: false, block: `RateLimit-Policy: "peruser";q=65535;qu="content-bytes";w=10;pk=:sdfjLJUOUH==:
RateLimit: "peruser";r=300;t=10;pk=:sdfjLJUOUH==:`},
	{name: "ietf request unit among others", ok: true, block: `RateLimit-Policy: "bytes";q=65535;qu="content-bytes";w=10, "calls";q=20;qu="requests";w=1, "x";q=1;qu=requests
RateLimit: "bytes";r=0;t=10, "calls";r=7;t=1, "x";r=0;t=1`,
		want: Signal{Requests: quota(20, 7, time.Second)}},
	{name: "ietf policy only", ok: true, block: `RateLimit-Policy: "peruser";q=100;w=60;pk=:cHsdsRa894==:, "other";q=1`,
		want: Signal{Requests: Quota{Limit: 100, HasLimit: true}}},
	{name: "ietf other parameters and value types are skipped", ok: true, block: `RateLimit-Policy: "p";q=10;acme-burst=?1;note="a \"b\" c";d=1.5;e=@1659578233;f=%"f%c3%bc";g=*tok/x:y
RateLimit: "p";r=3;t=2;pk=:QXBwLTk5OQ==:;acme-x`,
		want: Signal{Requests: quota(10, 3, 2*time.Second)}},
	{name: "ietf malformed RateLimit is ignored whole", ok: true, block: `RateLimit-Policy: "default";q=100;w=60
RateLimit: "default";r=50;t=30, "b";r=1;t=1,`,
		want: Signal{Requests: Quota{Limit: 100, HasLimit: true}}},
	{name: "ietf malformed line spoils the field", ok: false, block: `RateLimit: "default";r=50;t=30
RateLimit: default r=1`},
	{name: "ietf malformed policy, valid service limit", ok: true, block: `RateLimit-Policy: "default";Q=100
RateLimit: "default";r=50;t=30`,
		want: Signal{Requests: Quota{Remaining: 50, Reset: 30 * time.Second, HasRemaining: true, HasReset: true}}},
	{name: "ietf items without a usable r are skipped", ok: true, block: `RateLimit: "a";r=-1;t=5, "b";r=1.5, "c";t=5, d;r=0, ("e");r=0, "f";r=9;t=-3`,
		want: Signal{Requests: Quota{Remaining: 9, HasRemaining: true}}},
	{name: "ietf policies beyond the table are unknown", ok: true, block: manyPolicies(maxPolicies+1) + `
RateLimit: "p16";r=1;t=1, "p0";r=5;t=2`,
		want: Signal{Requests: quota(100, 5, 2*time.Second)}},
	{name: "legacy triple", ok: true, block: `RateLimit-Limit: 100
RateLimit-Remaining: 50
RateLimit-Reset: 30`,
		want: Signal{Requests: quota(100, 50, 30*time.Second)}},
	{name: "legacy limit with policy list", ok: true, block: `RateLimit-Limit: 10, 10;w=1, 50;w=60
RateLimit-Reset: 86400`,
		want: Signal{Requests: Quota{Limit: 10, Reset: sturdy.MaxRetryAfter, HasLimit: true, HasReset: true}}},
	{name: "structured form wins over legacy", ok: true, block: `RateLimit-Limit: 100
RateLimit-Remaining: 99
RateLimit: "default";r=4;t=3`,
		want: Signal{Requests: Quota{Remaining: 4, Reset: 3 * time.Second, HasRemaining: true, HasReset: true}}},

	// Several families on one response: each quota comes whole from the
	// first family that has it.
	{name: "openai behind a gateway adding RateLimit", ok: true, block: `x-ratelimit-limit-requests: 60
x-ratelimit-remaining-requests: 59
x-ratelimit-reset-requests: 1s
RateLimit-Policy: "gw";q=10;w=1
RateLimit: "gw";r=0;t=1`,
		want: Signal{Requests: quota(60, 59, time.Second)}},
	{name: "openai tokens only, anthropic requests", ok: true, block: `x-ratelimit-remaining-tokens: 10
anthropic-ratelimit-requests-remaining: 3
anthropic-ratelimit-tokens-remaining: 99`,
		want: Signal{Requests: Quota{Remaining: 3, HasRemaining: true}, Tokens: Quota{Remaining: 10, HasRemaining: true}}},
	{name: "unreadable family yields to the next", ok: true, block: `x-ratelimit-limit-requests: lots
x-ratelimit-remaining-requests: -5
RateLimit: "default";r=50;t=30`,
		want: Signal{Requests: Quota{Remaining: 50, Reset: 30 * time.Second, HasRemaining: true, HasReset: true}}},

	// Malformed values are dropped one by one.
	{name: "malformed counts", ok: true, block: `x-ratelimit-limit-requests: +60
x-ratelimit-remaining-requests: 5.0
x-ratelimit-limit-tokens: 1e6
x-ratelimit-remaining-tokens: 9999999999999999999
anthropic-ratelimit-requests-limit: 0x10
anthropic-ratelimit-requests-remaining:  42 
anthropic-ratelimit-tokens-limit: 1_000
anthropic-ratelimit-tokens-remaining: 999999999999999999`,
		want: Signal{Requests: Quota{Remaining: 42, HasRemaining: true}, Tokens: Quota{Remaining: 999999999999999999, HasRemaining: true}}},
	{name: "malformed resets", ok: false, block: `x-ratelimit-reset-requests: -1s
x-ratelimit-reset-tokens: soon
anthropic-ratelimit-requests-reset: 2025-02-30T00:00:00Z
anthropic-ratelimit-tokens-reset: 2025-08-21 12:41:00Z
anthropic-ratelimit-input-tokens-reset: 2025-08-21T12:41:00
anthropic-ratelimit-output-tokens-reset: 2025-08-21T24:00:00Z
RateLimit-Reset: Tue, 05 Jan 2021 11:00:00 GMT
retry-after-ms: NaN
retry-after: later`},
	{name: "more malformed timestamps", ok: false, block: `anthropic-ratelimit-requests-reset: 2025-08-21T12:41:00.Z
anthropic-ratelimit-tokens-reset: 2025-08-21T12:41:00+2:00
anthropic-ratelimit-input-tokens-reset: 2025-13-01T00:00:00Z
anthropic-ratelimit-output-tokens-reset: 2025-08-21T12:41:00+24:00`},
	{name: "february 29 of a leap year", ok: true, block: `anthropic-ratelimit-requests-reset: 2028-02-29T00:00:00Z`,
		want: Signal{Requests: Quota{Reset: sturdy.MaxRetryAfter, HasReset: true}}},
	{name: "no rate-limit header", ok: false, block: `content-type: application/json
date: Thu, 21 Aug 2025 12:41:00 GMT
server: uvicorn`},
	{name: "empty", ok: false},
}

// manyPolicies is a RateLimit-Policy line of n policies "p0", "p1"... of
// 100 requests each.
func manyPolicies(n int) string {
	var b strings.Builder
	b.WriteString("RateLimit-Policy: ")
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q;q=100;w=60", "p"+strconv.Itoa(i))
	}
	return b.String()
}

func TestParseHeaders(t *testing.T) {
	for _, tc := range headerCases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ParseHeaders(headerOf(tc.block), headersNow)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.ok, ok)
		})
	}
}

func TestParseHeadersNilHeader(t *testing.T) {
	got, ok := ParseHeaders(nil, headersNow)
	assert.False(t, ok)
	assert.Equal(t, Signal{}, got)
}

// Lookups are http.Header.Get's: canonical keys, first value.
func TestParseHeadersLooksUpLikeGet(t *testing.T) {
	h := http.Header{
		"x-ratelimit-limit-requests":     {"60"}, // not canonical: Get would not find it either
		"X-Ratelimit-Remaining-Requests": {"59", "1"},
		"X-Ratelimit-Limit-Tokens":       {},
	}
	got, ok := ParseHeaders(h, headersNow)
	require.True(t, ok)
	assert.Equal(t, Signal{Requests: Quota{Remaining: 59, HasRemaining: true}}, got)
}

// The constants must be the names http.Header keys use, or nothing matches.
func TestHeaderNamesAreCanonical(t *testing.T) {
	for _, name := range []string{
		hdrOpenAILimitRequests, hdrOpenAILimitTokens, hdrOpenAIRemainingRequests,
		hdrOpenAIRemainingTokens, hdrOpenAIResetRequests, hdrOpenAIResetTokens,
		hdrAnthropicRequestsLimit, hdrAnthropicRequestsRemaining, hdrAnthropicRequestsReset,
		hdrAnthropicTokensLimit, hdrAnthropicTokensRemaining, hdrAnthropicTokensReset,
		hdrAnthropicInputTokensLimit, hdrAnthropicInputTokensRemaining, hdrAnthropicInputTokensReset,
		hdrAnthropicOutputTokensLimit, hdrAnthropicOutputTokensRemaining, hdrAnthropicOutputTokensReset,
		hdrRateLimit, hdrRateLimitPolicy, hdrRateLimitLimit, hdrRateLimitRemaining, hdrRateLimitReset,
		hdrRetryAfterMs, hdrRetryAfter,
	} {
		assert.Equal(t, textproto.CanonicalMIMEHeaderKey(name), name)
	}
	assert.Equal(t, sturdy.HeaderRetryAfter, hdrRetryAfter)
	assert.Equal(t, sturdy.HeaderRetryAfterMs, hdrRetryAfterMs)
}

// parseRFC3339 agrees with time.Parse on every timestamp both accept.
func TestParseRFC3339AgreesWithTimeParse(t *testing.T) {
	for _, v := range []string{
		"2025-08-21T12:40:59Z", "2025-08-21T14:41:00.5+02:00", "0000-01-01T00:00:00Z",
		"9999-12-31T23:59:59.999999999-23:59", "2024-02-29T00:00:00+00:00", "1970-01-01T00:00:00.1234567891Z",
	} {
		want, err := time.Parse(time.RFC3339, v)
		require.NoError(t, err, v)
		got, ok := parseRFC3339(v)
		require.True(t, ok, v)
		assert.True(t, want.Equal(got), "%s: got %v, want %v", v, got, want)
	}
}

// The structured-field parser accepts RFC 9651's lists and refuses what
// the RFC says must fail, so that a malformed field is ignored whole.
func TestStructuredFieldList(t *testing.T) {
	for _, tc := range []struct {
		in      string
		members int
		valid   bool
	}{
		{`"default";r=50;t=30`, 1, true},
		{`sugar, tea, rum`, 3, true},
		{`"a";q=1,   "b"	;q=2`, 0, false}, // OWS before ';' is not allowed
		{`"a";q=1 ,	"b";q=2`, 2, true},
		{`("foo" "bar");lvl=5, ("baz");lvl=1`, 2, true},
		{`()`, 1, true},
		{`?1;a, ?0`, 2, true},
		{`1.5, -12, 123456789012345`, 3, true},
		{`1234567890123456`, 0, false},
		{`1234567890123.5`, 0, false},
		{`1.2345`, 0, false},
		{`1.`, 0, false},
		{`-`, 0, false},
		{`"unterminated`, 0, false},
		{`"bad \n escape"`, 0, false},
		{`:cHJldGVuZCB0aGlzIGlzIGJpbmFyeSBjb250ZW50Lg==:`, 1, true},
		{`:not base64 !:`, 0, false},
		{`@1659578233, %"f%c3%bc"`, 2, true},
		{`"a";e=@`, 0, false}, // found by FuzzParseHeaders: read past the end
		{`@1.5`, 0, false},
		{`%"F%C3%BC"`, 0, false},
		{`"a";Q=1`, 0, false},
		{`"a";`, 0, false},
		{`"a",`, 0, false},
		{`"a" "b"`, 0, false},
		{`("a"`, 0, false},
		{`("a"x)`, 0, false},
		{`é`, 0, false},
		{``, 0, true},
	} {
		l := newSFList(tc.in)
		n := 0
		for {
			if _, more := l.next(); !more {
				break
			}
			n++
		}
		assert.Equal(t, tc.valid, !l.err, "%q valid", tc.in)
		if tc.valid {
			assert.Equal(t, tc.members, n, "%q members", tc.in)
		}
	}
}

// realistic OpenAI response header: a dozen headers, six of them limits.
func openAIResponseHeader() http.Header {
	return headerOf(`date: Mon, 26 May 2025 05:00:04 GMT
content-type: application/json
openai-organization: org-example
openai-processing-ms: 412
openai-version: 2020-10-01
x-request-id: req_5d3b1c0e9f2a4b7c8d6e
x-ratelimit-limit-requests: 30000
x-ratelimit-limit-tokens: 150000000
x-ratelimit-remaining-requests: 29999
x-ratelimit-remaining-tokens: 149999975
x-ratelimit-reset-requests: 2ms
x-ratelimit-reset-tokens: 0s`)
}

// anthropicResponseHeader is a real response's header set.
func anthropicResponseHeader() http.Header {
	return headerOf(anthropicSample + `
date: Thu, 21 Aug 2025 12:41:00 GMT
content-type: application/json
anthropic-organization-id: 36562039-1ae4-48e6-ae28-1e517e3d2d12`)
}

// noRateLimitHeader is a self-hosted server's response: no limits at all.
func noRateLimitHeader() http.Header {
	return headerOf(`date: Mon, 26 May 2025 05:00:04 GMT
content-type: application/json
content-length: 1432
server: uvicorn
x-request-id: 5d3b1c0e9f2a4b7c
vary: Origin`)
}

func ietfResponseHeader() http.Header {
	return headerOf(`date: Mon, 26 May 2025 05:00:04 GMT
content-type: application/json
RateLimit-Policy: "permin";q=50;w=60,"perhr";q=1000;w=3600
RateLimit: "perhr";r=900;t=3000, "permin";r=5;t=20`)
}

// A parse allocates nothing, with or without rate-limit headers (OpenAI's
// "6m0s"-style resets included: sturdy.ParseResetDuration tries ParseFloat
// only on what can be a number).
func TestParseHeadersAllocations(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    http.Header
		max  float64
	}{
		{"none", noRateLimitHeader(), 0},
		{"nil", nil, 0},
		{"anthropic", anthropicResponseHeader(), 0},
		{"ietf", ietfResponseHeader(), 0},
		{"openai", openAIResponseHeader(), 0},
	} {
		allocs := testing.AllocsPerRun(100, func() { ParseHeaders(tc.h, headersNow) })
		assert.LessOrEqual(t, allocs, tc.max, tc.name)
	}
}

func BenchmarkParseHeaders(b *testing.B) {
	for _, bc := range []struct {
		name string
		h    http.Header
	}{
		{"openai", openAIResponseHeader()},
		{"anthropic", anthropicResponseHeader()},
		{"ietf", ietfResponseHeader()},
		{"none", noRateLimitHeader()},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ParseHeaders(bc.h, headersNow)
			}
		})
	}
}

func TestParseCount(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{" 42\t", 42, true},
		{"007", 7, true},
		{"999999999999999999", 999999999999999999, true},
		{"1000000000000000000", 0, false}, // 19 digits
		{"", 0, false},
		{" ", 0, false},
		{"-1", 0, false},
		{"+1", 0, false},
		{"1.0", 0, false},
		{"1e3", 0, false},
		{"4 2", 0, false},
		{"٤٢", 0, false}, // Arabic-Indic digits
	} {
		got, ok := parseCount(tc.in)
		assert.Equal(t, tc.ok, ok, "%q", tc.in)
		assert.Equal(t, tc.want, got, "%q", tc.in)
	}
}

// FuzzParseHeaders feeds ParseHeaders any header block a server could send
// and checks that it does not panic and that every figure it reports is in
// range: counts non-negative, resets and Retry-After within
// [0, sturdy.MaxRetryAfter], an unknown figure zero, ok exactly when
// something is known. It does not check Remaining ≤ Limit: no provider and
// not the IETF draft promise it. The result must not depend on the order
// of the header map, a plain count must be read as sent, and the RFC 3339
// parser must agree with time.Parse where both accept a value.
func FuzzParseHeaders(f *testing.F) {
	for _, tc := range headerCases {
		f.Add(tc.block, headersNow.Unix())
	}
	f.Add("x-ratelimit-reset-tokens: 9999999999h\nretry-after: Sun, 06 Nov 1994 08:49:37 GMT", int64(784111777))
	f.Add("anthropic-ratelimit-requests-reset: 0000-01-01T00:00:00Z", int64(1<<62))
	f.Add("anthropic-ratelimit-requests-reset: 9999-12-31T23:59:59.999999999-23:59", int64(-1<<62))
	f.Add("RateLimit: (\"a\" \"b\");r=1, \"c\";r=2;t=3\nRateLimit-Policy: \"c\";q=4;qu=\"request\"", int64(0))
	f.Fuzz(func(t *testing.T, block string, nowUnix int64) {
		h := headerOf(block)
		now := time.Unix(nowUnix, 0).UTC()
		s, ok := ParseHeaders(h, now)

		known := false
		for _, q := range []struct {
			name string
			q    Quota
		}{{"Requests", s.Requests}, {"Tokens", s.Tokens}, {"InputTokens", s.InputTokens}, {"OutputTokens", s.OutputTokens}} {
			if q.q.Limit < 0 || q.q.Remaining < 0 || q.q.Reset < 0 || q.q.Reset > sturdy.MaxRetryAfter {
				t.Errorf("%s out of range: %+v", q.name, q.q)
			}
			if (!q.q.HasLimit && q.q.Limit != 0) || (!q.q.HasRemaining && q.q.Remaining != 0) || (!q.q.HasReset && q.q.Reset != 0) {
				t.Errorf("%s has a figure it does not know: %+v", q.name, q.q)
			}
			known = known || q.q.Known()
		}
		if s.RetryAfter < 0 || s.RetryAfter > sturdy.MaxRetryAfter || (!s.HasRetryAfter && s.RetryAfter != 0) {
			t.Errorf("RetryAfter = %v, %v", s.RetryAfter, s.HasRetryAfter)
		}
		if known = known || s.HasRetryAfter; ok != known {
			t.Errorf("ok = %v, but something known = %v", ok, known)
		}

		// Map iteration order differs between the two calls.
		for range 3 {
			if s2, ok2 := ParseHeaders(h, now); s2 != s || ok2 != ok {
				t.Fatalf("second parse differs:\n%+v %v\n%+v %v", s, ok, s2, ok2)
			}
		}

		// OpenAI's family comes first: a plain count it sends is the result.
		if v := strings.Trim(h.Get(hdrOpenAIRemainingRequests), " \t"); v != "" && len(v) <= maxCountDigits {
			if n, err := strconv.ParseUint(v, 10, 63); err == nil && (!s.Requests.HasRemaining || s.Requests.Remaining != int64(n)) {
				t.Errorf("x-ratelimit-remaining-requests %q read as %+v", v, s.Requests)
			}
		}

		for _, vs := range h {
			for _, v := range vs {
				// time.Parse also takes what RFC 3339 does not (a comma
				// before the fraction, an offset of 24 hours), and
				// parseRFC3339 what time.Parse does not (lower case, a
				// leap second); where both accept, they must agree.
				want, err := time.Parse(time.RFC3339, v)
				if got, ok := parseRFC3339(v); ok && err == nil && !got.Equal(want) {
					t.Errorf("parseRFC3339(%q) = %v; time.Parse gives %v", v, got, want)
				}
			}
		}
	})
}

// A server can send a megabyte of RateLimit fields; matching items to
// policies must stay linear in it (a lookup per item that rescanned the
// policy field took minutes here), and the result must still be right.
func TestParseHeadersLargeFieldsStayLinear(t *testing.T) {
	const n = 40_000
	var limits strings.Builder
	for i := range n {
		if i > 0 {
			limits.WriteString(", ")
		}
		fmt.Fprintf(&limits, `"p%d";r=%d;t=1`, i, n-i)
	}
	h := headerOf(manyPolicies(n))
	h.Set(hdrRateLimit, limits.String())
	require.Greater(t, len(h.Get(hdrRateLimit))+len(h.Get(hdrRateLimitPolicy)), 1<<20)

	start := time.Now()
	got, ok := ParseHeaders(h, headersNow)
	elapsed := time.Since(start)
	require.True(t, ok)
	// The least r is the last item's, whose policy is beyond the table.
	// Of the items whose policies are in it, p15 has the least r.
	assert.Equal(t, quota(100, n-15, time.Second), got.Requests)
	assert.Less(t, elapsed, 5*time.Second)
}

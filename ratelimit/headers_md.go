package ratelimit

import (
	"strings"
	"time"
)

// gRPC servers send the same rate-limit fields as HTTP servers, as
// metadata: a gateway in front of a provider copies its headers, and a
// gRPC inference service that meters its callers uses the same names.
// HTTP/2 sends field names in lower case (RFC 9113, section 8.2.2) and
// grpc-go's metadata.MD keeps them so, where http.Header keeps them in
// canonical form; the metadata functions below map each lower-case name
// to its canonical form through a fixed table and hand the field to the
// header parser, so that both protocols share one parser.

// lowerNames maps the lower-case form of every rate-limit header name to
// its canonical form (a constant: the lookup allocates nothing).
var lowerNames = func() map[string]string {
	m := make(map[string]string, 25)
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
		m[strings.ToLower(name)] = name
	}
	return m
}()

// maybeRateLimitLower is maybeRateLimit for lower-case names: most
// metadata keys (content-type, grpc-*, user-agent) cost one comparison.
func maybeRateLimitLower(k string) bool {
	if len(k) < len(hdrRateLimit) {
		return false
	}
	switch k[0] {
	case 'x', 'a', 'r':
		return true
	}
	return false
}

// metadata passes md's rate-limit fields to p.field under their canonical
// names.
func (p *headerParse) metadata(md map[string][]string) {
	for k, vs := range md {
		if len(vs) > 0 && maybeRateLimitLower(k) {
			if name, ok := lowerNames[k]; ok {
				p.field(name, vs)
			}
		}
	}
}

// ParseMetadata is ParseHeaders for gRPC metadata (a grpc-go metadata.MD,
// whose keys are lower case): it reads the same fields, by their
// lower-case names, the same way. Keys in any other case are not
// matched, as grpc-go never delivers them. Like ParseHeaders it never
// fails, never panics, and allocates nothing when md has no rate-limit
// key (BenchmarkParseMetadata/none).
func ParseMetadata(md map[string][]string, now time.Time) (Signal, bool) {
	p := headerParse{now: now}
	p.metadata(md)
	return p.signal()
}

// ListenMetadata is ListenHeaders for gRPC metadata (response headers or
// trailers): it reads md as ParseMetadata does and learns from what it
// says, and reports whether it said anything. Metadata without a
// rate-limit key costs one pass over its keys, no clock read and no
// allocation.
func (l *Limiter) ListenMetadata(key string, md map[string][]string) bool {
	if l.learnOff || len(md) == 0 {
		return false
	}
	p := headerParse{clock: time.Now}
	p.metadata(md)
	sig, ok := p.signal()
	if ok {
		l.Listen(key, sig, p.at())
	}
	return ok
}

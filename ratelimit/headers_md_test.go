package ratelimit

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// metadataOf is h as grpc-go delivers it: every key in lower case.
func metadataOf(h http.Header) map[string][]string {
	md := make(map[string][]string, len(h))
	for k, vs := range h {
		k = strings.ToLower(k)
		md[k] = append(md[k], vs...)
	}
	return md
}

// Every case of the header parser reads the same from metadata.
func TestParseMetadataAgreesWithParseHeaders(t *testing.T) {
	for _, tc := range headerCases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ParseMetadata(metadataOf(headerOf(tc.block)), headersNow)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.ok, ok)
		})
	}
}

// Metadata keys are matched in lower case only, as grpc-go delivers them.
func TestParseMetadataMatchesLowerCase(t *testing.T) {
	md := map[string][]string{
		"X-Ratelimit-Limit-Requests":     {"60"}, // never from grpc-go
		"x-ratelimit-remaining-requests": {"59", "1"},
		"x-ratelimit-limit-tokens":       {},
		"x-request-id":                   {"abc"},
	}
	got, ok := ParseMetadata(md, headersNow)
	require.True(t, ok)
	assert.Equal(t, Signal{Requests: Quota{Remaining: 59, HasRemaining: true}}, got)
	_, ok = ParseMetadata(nil, headersNow)
	assert.False(t, ok)
}

// The table holds the lower-case form of every name the parser knows.
func TestLowerNames(t *testing.T) {
	require.Len(t, lowerNames, 25)
	for lower, name := range lowerNames {
		assert.Equal(t, strings.ToLower(name), lower)
		assert.True(t, maybeRateLimitLower(lower), lower)
		assert.True(t, maybeRateLimit(name), name)
	}
}

// gRPC response metadata as a server behind grpc-go sends it.
func grpcMetadata() map[string][]string {
	return map[string][]string{"content-type": {"application/grpc"}, "server": {"vllm"}, "date": {"Mon, 26 May 2025 05:00:04 GMT"}}
}

func TestParseMetadataAllocations(t *testing.T) {
	for _, tc := range []struct {
		name string
		md   map[string][]string
	}{
		{"none", grpcMetadata()},
		{"nil", nil},
		{"openai", metadataOf(openAIResponseHeader())},
		{"anthropic", metadataOf(anthropicResponseHeader())},
	} {
		allocs := testing.AllocsPerRun(100, func() { ParseMetadata(tc.md, headersNow) })
		assert.Zero(t, allocs, tc.name)
	}
	l, err := New(Config{})
	require.NoError(t, err)
	md := grpcMetadata()
	assert.Zero(t, testing.AllocsPerRun(100, func() { l.ListenMetadata("k", md) }), "ListenMetadata without rate-limit keys")
}

// ListenMetadata learns what ListenHeaders learns from the same fields.
func TestListenMetadataTellsARate(t *testing.T) {
	h := headerOf(`x-ratelimit-limit-requests: 100
x-ratelimit-remaining-requests: 40
x-ratelimit-reset-requests: 6s`)
	for _, tc := range []struct {
		name   string
		listen func(*Limiter) bool
	}{
		{"headers", func(l *Limiter) bool { return l.ListenHeaders("k", h) }},
		{"metadata", func(l *Limiter) bool { return l.ListenMetadata("k", metadataOf(h)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := New(Config{})
			require.NoError(t, err)
			require.True(t, tc.listen(l))
			// (100 − 40) requests refilled over 6 s, less the 3% margin.
			assert.InDelta(t, 0.97*10, l.LearnedRate("k"), 0.01)
		})
	}
	l, err := New(Config{Learn: LearnConfig{Off: true}})
	require.NoError(t, err)
	assert.False(t, l.ListenMetadata("k", metadataOf(h)), "learning off")
}

func BenchmarkParseMetadata(b *testing.B) {
	for _, bc := range []struct {
		name string
		md   map[string][]string
	}{
		{"openai", metadataOf(openAIResponseHeader())},
		{"none", grpcMetadata()},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ParseMetadata(bc.md, headersNow)
			}
		})
	}
}

// FuzzParseMetadata: metadata reads as the same header block does.
func FuzzParseMetadata(f *testing.F) {
	for _, tc := range headerCases {
		f.Add(tc.block)
	}
	f.Fuzz(func(t *testing.T, block string) {
		h := headerOf(block)
		want, wok := ParseHeaders(h, headersNow)
		got, ok := ParseMetadata(metadataOf(h), headersNow)
		if got != want || ok != wok {
			t.Errorf("metadata %+v %v, headers %+v %v", got, ok, want, wok)
		}
	})
}

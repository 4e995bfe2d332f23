package httpmw

import (
	"math"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/degrade"
	"github.com/sturdyai/sturdy/failover"
	"github.com/sturdyai/sturdy/health"
	"github.com/sturdyai/sturdy/ratelimit"
)

func TestNewTransportRejectsBadConfiguration(t *testing.T) {
	good := URL("a", "http://127.0.0.1:1", nil)
	cases := []struct {
		name string
		opts []Option
		want string
	}{
		{"no tiers", nil, "no tiers"},
		{"no endpoints", []Option{WithTier(degrade.Tier{Name: "p"})}, `tier "p" (WithTier #1) has no endpoints`},
		{"bad URL", []Option{WithTier(degrade.Tier{}, URL("a", "127.0.0.1:1", nil))}, "base URL such as"},
		{"bad scheme", []Option{WithTier(degrade.Tier{}, URL("a", "ftp://h", nil))}, "http:// or https://"},
		{"URL without host", []Option{WithTier(degrade.Tier{}, URL("a", "http:///x", nil))}, "no host"},
		{"URL with user info", []Option{WithTier(degrade.Tier{}, URL("a", "http://u:p@h", nil))}, "Endpoint.Header"},
		{"URL with query", []Option{WithTier(degrade.Tier{}, URL("a", "http://h/?k=v", nil))}, "query"},
		{"no endpoint name", []Option{WithTier(degrade.Tier{}, URL("", "http://h", nil))}, "no Name"},
		{"duplicate endpoint", []Option{WithTier(degrade.Tier{}, good), WithTier(degrade.Tier{}, good)}, `"a" is used twice`},
		{"duplicate tier", []Option{WithTier(degrade.Tier{Name: "x"}, good), WithTier(degrade.Tier{Name: "x"}, URL("b", "http://h", nil))}, `tier "x" (WithTier #2): Name "x" is used twice`},
		{"negative weight", []Option{WithTier(degrade.Tier{}, Endpoint{Endpoint: sturdy.Endpoint{Name: "a", Address: "http://h", Weight: -1}})}, "Weight"},
		{"negative limit", []Option{WithTier(degrade.Tier{Limit: ratelimit.Limit{RequestsPerSecond: -1}}, good)}, "negative"},
		{"bad quality", []Option{WithTier(degrade.Tier{Quality: 2}, good)}, "Quality"},
		{"negative timeout", []Option{WithTier(degrade.Tier{Timeout: -time.Second}, good)}, "Timeout"},
		{"bad header", []Option{WithTier(degrade.Tier{}, URL("a", "http://h", http.Header{"Bad Name": {"x"}}))}, "header name"},
		{"header injection", []Option{WithTier(degrade.Tier{}, URL("a", "http://h", http.Header{"Authorization": {"x\r\nEvil: 1"}}))}, "line break"},
		{"negative buffer", []Option{WithTier(degrade.Tier{}, good), WithMaxBodyBuffer(-1)}, "WithMaxBodyBuffer"},
		{"negative ttfb", []Option{WithTier(degrade.Tier{}, good), WithTTFBTimeout(-1)}, "WithTTFBTimeout"},
		{"bad failover", []Option{WithTier(degrade.Tier{}, good), WithFailover(failover.Config{MaxAttempts: -1})}, "MaxAttempts"},
		{"bad probes", []Option{WithTier(degrade.Tier{}, good), WithProbes(health.ProbeConfig{Jitter: 1})}, "Jitter"},
		{"NaN probe jitter", []Option{WithTier(degrade.Tier{}, good), WithProbes(health.ProbeConfig{Jitter: math.NaN()})}, "Jitter"},
		{"base path ending in /v1", []Option{WithTier(degrade.Tier{}, URL("a", "https://api.example.test/v1", nil))}, "drop /v1 from Address"},
		{"base path ending in /v1/", []Option{WithTier(degrade.Tier{}, URL("a", "https://x.example.test/openai/v1/", nil))}, "ends in /v1"},
		{"http on the TLS port", []Option{WithTier(degrade.Tier{}, URL("a", "http://h:443", nil))}, "use https://"},
		{"https on port 80", []Option{WithTier(degrade.Tier{}, URL("a", "https://h:80", nil))}, "use http://"},
		{"probe path without slash", []Option{WithTier(degrade.Tier{}, Endpoint{Endpoint: sturdy.Endpoint{Name: "a", Address: "http://h"}, ProbePath: "health"})}, "must start with /"},
		{"probe path and no probe", []Option{WithTier(degrade.Tier{}, Endpoint{Endpoint: sturdy.Endpoint{Name: "a", Address: "http://h"}, ProbePath: "/x", NoProbe: true})}, "NoProbe"},
		{"endpoint negative limit", []Option{WithTier(degrade.Tier{}, Endpoint{Endpoint: sturdy.Endpoint{Name: "a", Address: "http://h"}, Limit: ratelimit.Limit{TokensPerMinute: -1}})}, `endpoint "a": Limit has a negative`},
		{"empty query key", []Option{WithTier(degrade.Tier{}, Endpoint{Endpoint: sturdy.Endpoint{Name: "a", Address: "http://h"}, Query: url.Values{"": {"1"}}})}, "Query"},
		{"fallback without model", []Option{WithTier(degrade.Tier{Name: "big", Model: "gpt-4o"}, good), WithTier(degrade.Tier{Name: "small"}, URL("b", "http://h", nil))}, `tier "small" (WithTier #2) has no Model while tier "big" (WithTier #1) serves "gpt-4o"`},
		{"same model on tier 0", []Option{WithTier(degrade.Tier{SameModel: true}, good)}, "SameModel is for a later tier"},
		{"same model with a model", []Option{WithTier(degrade.Tier{Model: "a"}, good), WithTier(degrade.Tier{Model: "b", SameModel: true}, URL("b", "http://h", nil))}, "SameModel is for a later tier"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := NewTransport(nil, tc.opts...)
			require.Error(t, err)
			assert.Nil(t, tr)
			assert.Contains(t, err.Error(), tc.want)
			assert.Contains(t, err.Error(), "httpmw: ")
		})
	}
}

func TestNewTransportNilBaseIsDefault(t *testing.T) {
	tr, err := NewTransport(nil, WithTier(degrade.Tier{}, URL("a", "http://127.0.0.1:1", nil)))
	require.NoError(t, err)
	defer tr.Close()
	assert.Equal(t, http.DefaultTransport, tr.base)
}

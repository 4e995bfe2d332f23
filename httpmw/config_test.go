package httpmw

import (
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sturdyai/sturdy/failover"
	"github.com/sturdyai/sturdy/ratelimit"
)

func TestNewTransportRejectsBadConfiguration(t *testing.T) {
	good := Endpoint{Name: "a", URL: "http://127.0.0.1:1"}
	cases := []struct {
		name string
		opts []Option
		want string
	}{
		{"no tiers", nil, "no tiers"},
		{"no endpoints", []Option{WithTier(Tier{Name: "p"})}, `tier "p" has no endpoints`},
		{"bad URL", []Option{WithTier(Tier{Endpoints: []Endpoint{{Name: "a", URL: "127.0.0.1:1"}}})}, "base URL such as"},
		{"bad scheme", []Option{WithTier(Tier{Endpoints: []Endpoint{{Name: "a", URL: "ftp://h"}}})}, "http:// or https://"},
		{"URL without host", []Option{WithTier(Tier{Endpoints: []Endpoint{{Name: "a", URL: "http:///x"}}})}, "no host"},
		{"URL with user info", []Option{WithTier(Tier{Endpoints: []Endpoint{{Name: "a", URL: "http://u:p@h"}}})}, "Endpoint.Header"},
		{"URL with query", []Option{WithTier(Tier{Endpoints: []Endpoint{{Name: "a", URL: "http://h/?k=v"}}})}, "query"},
		{"no endpoint name", []Option{WithTier(Tier{Endpoints: []Endpoint{{URL: "http://h"}}})}, "no Name"},
		{"duplicate endpoint", []Option{WithTier(Tier{Endpoints: []Endpoint{good}}), WithTier(Tier{Endpoints: []Endpoint{good}})}, `"a" is used twice`},
		{"duplicate tier", []Option{WithTier(Tier{Name: "x", Endpoints: []Endpoint{good}}), WithTier(Tier{Name: "x", Endpoints: []Endpoint{{Name: "b", URL: "http://h"}}})}, `tier name "x" is used twice`},
		{"negative weight", []Option{WithTier(Tier{Endpoints: []Endpoint{{Name: "a", URL: "http://h", Weight: -1}}})}, "Weight"},
		{"negative limit", []Option{WithTier(Tier{Endpoints: []Endpoint{good}, Limit: ratelimit.Limit{RequestsPerSecond: -1}})}, "negative"},
		{"bad quality", []Option{WithTier(Tier{Endpoints: []Endpoint{good}, Quality: 2})}, "Quality"},
		{"negative timeout", []Option{WithTier(Tier{Endpoints: []Endpoint{good}, Timeout: -time.Second})}, "Timeout"},
		{"bad header", []Option{WithTier(Tier{Endpoints: []Endpoint{{Name: "a", URL: "http://h", Header: http.Header{"Bad Name": {"x"}}}}})}, "header name"},
		{"header injection", []Option{WithTier(Tier{Endpoints: []Endpoint{{Name: "a", URL: "http://h", Header: http.Header{"Authorization": {"x\r\nEvil: 1"}}}}})}, "line break"},
		{"negative buffer", []Option{WithTier(Tier{Endpoints: []Endpoint{good}}), WithMaxBodyBuffer(-1)}, "WithMaxBodyBuffer"},
		{"negative ttfb", []Option{WithTier(Tier{Endpoints: []Endpoint{good}}), WithTTFBTimeout(-1)}, "WithTTFBTimeout"},
		{"bad failover", []Option{WithTier(Tier{Endpoints: []Endpoint{good}}), WithFailover(failover.Config{MaxAttempts: -1})}, "MaxAttempts"},
		{"bad probes", []Option{WithTier(Tier{Endpoints: []Endpoint{good}}), WithProbes(Probes{Jitter: 1})}, "Jitter"},
		{"NaN probe jitter", []Option{WithTier(Tier{Endpoints: []Endpoint{good}}), WithProbes(Probes{Jitter: math.NaN()})}, "Jitter"},
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
	tr, err := NewTransport(nil, WithTier(Tier{Endpoints: []Endpoint{{Name: "a", URL: "http://127.0.0.1:1"}}}))
	require.NoError(t, err)
	defer tr.Close()
	assert.Equal(t, http.DefaultTransport, tr.base)
}

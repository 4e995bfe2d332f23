package fleet

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sturdyai/sturdy/sturdytest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const fleetJSON = `{
  "groups": [
    {"name": "gpt-4o", "aliases": ["smart"], "tiers": [
      {"name": "gpt-4o", "model": "gpt-4o", "quality": 1, "context_window": 128000, "endpoints": [
        {"name": "azure", "url": "${AZURE_URL}", "model": "prod-4o",
         "headers": {"Api-Key": "${AZURE_KEY}"}, "query": {"api-version": "2024-10-21"}, "no_probe": true}
      ]},
      {"name": "mini", "model": "gpt-4o-mini", "quality": 0.9, "timeout": "2s", "limit": {"requests_per_second": 50}, "endpoints": [
        {"name": "vllm", "url": "${VLLM_URL}", "model": "qwen", "probe_path": "/health"}
      ]}
    ]}
  ],
  "failover": {"max_attempts": 2, "attempt_timeout": "30s"},
  "health": {"consecutive_failures": 3},
  "probes": {"interval": "1h"},
  "balancer": "round_robin",
  "ttfb_timeout": "10s",
  "response_timeout": "5m"
}`

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

func TestParseAndBuild(t *testing.T) {
	azureSrv, err := sturdytest.StartLLM(sturdytest.Config{Name: "azure", Models: []string{"prod-4o"}, RequiredAPIKey: "azure-secret"})
	require.NoError(t, err)
	defer azureSrv.Close()

	c, err := Parse([]byte(fleetJSON))
	require.NoError(t, err)
	assert.Equal(t, 10*time.Second, time.Duration(c.TTFBTimeout))
	assert.Equal(t, 5*time.Minute, time.Duration(c.ResponseTimeout))
	assert.Equal(t, 2*time.Second, time.Duration(c.Groups[0].Tiers[1].Timeout))
	r, err := c.router(nil, env(map[string]string{"AZURE_URL": azureSrv.URL(), "AZURE_KEY": "azure-secret", "VLLM_URL": "http://127.0.0.1:1"}), nil)
	require.NoError(t, err)
	defer r.Close()
	assert.Equal(t, []string{"gpt-4o"}, r.Groups())

	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, "http://llm.invalid/v1/chat/completions",
		strings.NewReader(`{"model":"smart","messages":[{"role":"user","content":"hi"}]}`))
	require.NoError(t, err)
	resp, err := r.RoundTrip(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, map[string]int64{"prod-4o": 1}, azureSrv.Stats().ByModel)
	assert.Equal(t, []string{"azure-secret"}, azureSrv.SeenCredentials())
}

func TestSecretsAreNeverPrinted(t *testing.T) {
	c, err := Parse([]byte(fleetJSON))
	require.NoError(t, err)
	_, err = c.router(nil, env(map[string]string{"AZURE_URL": "http://127.0.0.1:1"}), nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `groups[0] ("gpt-4o").tiers[0].endpoints[0] ("azure"): header "Api-Key" references ${AZURE_KEY}, which is not set`)
	assert.Contains(t, err.Error(), `url references ${VLLM_URL}`)

	s := Secret("Bearer sk-very-secret")
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%v %s %#v", s, s, s), fmt.Sprintf("%+v", c.Groups[0].Tiers[0].Endpoints[0])} {
		assert.NotContains(t, out, "sk-very-secret")
	}
	c.Groups[0].Tiers[0].Endpoints[0].Headers["Api-Key"] = "sk-very-secret"
	assert.NotContains(t, fmt.Sprintf("%v", c.Groups[0].Tiers[0].Endpoints[0]), "sk-very-secret")
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"groups":[], "failovr": {}}`, `unknown field "failovr"`},
		{`{"ttfb_timeout": "ten seconds"}`, `duration "ten seconds"`},
	} {
		_, err := Parse([]byte(tc.in))
		require.Error(t, err)
		assert.Contains(t, err.Error(), tc.want)
	}
	c, err := Parse([]byte(`{"groups":[{"name":"m","tiers":[{"endpoints":[{"name":"a","url":"http://127.0.0.1:1"}]}]}], "balancer":"random"}`))
	require.NoError(t, err)
	_, err = c.Router(nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `balancer "random"`)
	c, err = Parse([]byte(`{"groups":[{"name":"m","tiers":[{"endpoints":[{"name":"a","url":"http://127.0.0.1:1/v1"}]}]}]}`))
	require.NoError(t, err)
	_, err = c.Router(nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `group "m" (#1)`)
	assert.Contains(t, err.Error(), "drop /v1")
}

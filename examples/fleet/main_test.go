package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// clearEnv makes sure no test reaches a real endpoint, whatever the
// developer's shell has set; t.Setenv restores the values afterwards.
func clearEnv(t *testing.T) {
	for _, k := range []string{"OPENAI_URL", "OPENAI_API_KEY", "AZURE_OPENAI_URL", "AZURE_OPENAI_KEY", "VLLM_URL"} {
		t.Setenv(k, "")
	}
}

// The example's sturdy.yaml loads, validates, and its program runs
// against local fakes.
func TestExampleConfigRuns(t *testing.T) {
	clearEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, run(ctx, []string{"-config", "sturdy.yaml"}, &out), out.String())
	got := out.String()
	t.Log(got)
	assert.Contains(t, got, "groups: gpt-4o, text-embedding-3-small")
	assert.Contains(t, got, "chat smart ")
	assert.Contains(t, got, `stream  gpt-4o  → "Hello from`)
	assert.Contains(t, got, "embed   2 vectors of 4 from text-embedding-3-small")
	assert.Contains(t, got, `no model group serves this model: "o3"`)
}

func TestConfigTyposAndMissingSecretsAreRefused(t *testing.T) {
	clearEnv(t)
	data, err := os.ReadFile("sturdy.yaml")
	require.NoError(t, err)
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte(strings.Replace(string(data), "ttfb_timeout:", "ttfb_timout:", 1)), 0o600))
	err = run(context.Background(), []string{"-config", bad}, &bytes.Buffer{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "ttfb_timout")

	c, err := load("sturdy.yaml")
	require.NoError(t, err)
	t.Setenv("OPENAI_URL", "http://127.0.0.1:1")
	t.Setenv("VLLM_URL", "http://127.0.0.1:2")
	t.Setenv("AZURE_OPENAI_URL", "http://127.0.0.1:3")
	t.Setenv("AZURE_OPENAI_KEY", "azure-key-value")
	require.NoError(t, os.Unsetenv("OPENAI_API_KEY")) // clearEnv's t.Setenv restores it
	_, err = c.Router(nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `header "Authorization" references ${OPENAI_API_KEY}, which is not set`)
	assert.NotContains(t, err.Error(), "azure-key-value")
}

package main

import (
	"github.com/sturdyai/sturdy/examples/internal/cli"
	"github.com/sturdyai/sturdy/examples/internal/clitest"

	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sturdyai/sturdy/sturdytest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// clearEnv makes sure no test reaches a real endpoint, whatever the
// developer's shell has set.
func clearEnv(t *testing.T) {
	for _, k := range []string{envKey, envPrimaryURLs, envPrimaryModel, envFallbackURL, envFallbackModel, envFallbackKey} {
		t.Setenv(k, "")
	}
}

func runOK(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	err := run(ctx, args, &out)
	t.Logf("output:\n%s", out.String())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return out.String()
}

// TestRunLocal runs the program against its local fakes: the down provider
// is failed over, the stream is printed, the rate-limited tier falls back
// to the other model, and each server sees only its own key.
func TestRunLocal(t *testing.T) {
	clearEnv(t)
	out := runOK(t, "-local", "-timeout", "10s")
	rest := out
	for _, want := range []string{
		"openai-go retries: off",
		"1. provider-a is down",
		"attempt on provider-a: ", // the reset (its wording varies)
		"attempt on provider-b: 200 OK",
		"answer: Hello from provider-b, this is gpt-4o speaking.",
		"stream: Hello from provider-a, this is gpt-4o speaking.",
		"3. both providers answer 429",
		"answer: Hello from fallback, this is gpt-4o-mini speaking.",
		"served by endpoint fallback of tier fallback (model gpt-4o-mini)",
		"stream: Hello from fallback, this is gpt-4o-mini speaking.",
	} {
		// In this order.
		i := strings.Index(rest, want)
		if i < 0 {
			t.Fatalf("output lacks %q (or has it too early)", want)
		}
		rest = rest[i+len(want):]
	}
	for _, want := range []string{
		"attempt on provider-a: 429 Too Many Requests",
		"attempt on provider-b: 429 Too Many Requests",
		"provider-a saw keys [sk-fake-provider-a]",
		"provider-b saw keys [sk-fake-provider-b]",
		"fallback saw keys [sk-fake-fallback]",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// TestRunFromEnvironment takes the real-endpoint path, with the
// environment pointing at local fakes (never at a real provider).
func TestRunFromEnvironment(t *testing.T) {
	clearEnv(t)
	start := func(name, model, key string) *sturdytest.Server {
		srv, err := sturdytest.StartLLM(sturdytest.Config{Name: name, Models: []string{model}, RequiredAPIKey: key})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.Close)
		return srv
	}
	down := start("down", "m-big", "k")
	down.SetDown(sturdytest.Down503)
	limited := start("limited", "m-big", "k")
	limited.SetRateLimit(sturdytest.RateLimit{Always: true, RetryAfter: time.Minute})
	small := start("small", "m-small", "k-small")

	t.Setenv(envKey, "k")
	t.Setenv(envPrimaryURLs, down.URL()+"/v1/, "+limited.URL())
	t.Setenv(envPrimaryModel, "m-big")
	t.Setenv(envFallbackURL, small.URL())
	t.Setenv(envFallbackModel, "m-small")
	t.Setenv(envFallbackKey, "k-small")

	out := runOK(t, "-timeout", "10s")
	if got := strings.Count(out, "served by endpoint fallback of tier fallback (model m-small)"); got != 2 {
		t.Errorf("%d calls served by the fallback, want 2", got)
	}
	if strings.Contains(out, down.URL()+"/v1") {
		t.Error("the /v1 of the base URL was not dropped")
	}
	if st := small.Stats(); st.ByModel["m-small"] != 2 {
		t.Errorf("fallback server saw models %v, want m-small twice", st.ByModel)
	}
	if got := small.SeenCredentials(); len(got) != 1 || got[0] != "k-small" {
		t.Errorf("fallback server saw keys %v, want only k-small", got)
	}
}

func TestRunFlags(t *testing.T) {
	clearEnv(t)
	clitest.Run(t, run, []clitest.Case{
		{Args: []string{"-h"}, WantOut: envPrimaryURLs},
		{Args: []string{"-nope"}, Usage: true},
		{Args: []string{"-timeout", "0s"}, Usage: true},
		{Args: []string{"extra"}, Usage: true},
	})
}

func TestRunRejectsBadURL(t *testing.T) {
	clearEnv(t)
	t.Setenv(envKey, "k")
	t.Setenv(envPrimaryURLs, "ftp://127.0.0.1:1")
	var ue cli.UsageError
	if err := run(context.Background(), nil, &bytes.Buffer{}); !errors.As(err, &ue) {
		t.Fatalf("run = %v, want a usage error", err)
	}
}

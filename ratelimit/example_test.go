package ratelimit_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/ratelimit"
)

// Reserve an estimate before an LLM call, correct it with the response's
// usage afterwards.
func Example() {
	l, err := ratelimit.New(ratelimit.Config{
		Default: ratelimit.Limit{RequestsPerSecond: 10, TokensPerMinute: 10_000},
	})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()

	p, err := l.Allow(ctx, "gpt-4o", 8_000) // prompt tokens + max_tokens
	if err != nil {
		panic(err)
	}
	// ... the call; the response says it used 1,500 tokens.
	p.Done(1_500)

	// The 6,500 tokens not used came back: a second large call fits.
	_, err = l.Allow(ctx, "gpt-4o", 8_000)
	fmt.Println("second call:", err)

	// A third does not; the refusal says why and is an overload to the
	// rest of sturdy.
	_, err = l.Allow(ctx, "gpt-4o", 8_000)
	var le *ratelimit.LimitedError
	if errors.As(err, &le) {
		fmt.Println("third call:", le.Cause, errors.Is(err, ratelimit.ErrLimited), sturdy.ClassOf(err))
	}
	// Output:
	// second call: <nil>
	// third call: tokens true overloaded
}

// A server's 429 with Retry-After pauses the key; other keys go on.
func ExampleLimiter_Observe() {
	l, _ := ratelimit.New(ratelimit.Config{})
	ctx := context.Background()

	l.Observe("azure-eastus", sturdy.Outcome{Class: sturdy.Overloaded, RetryAfter: 20 * time.Second})

	// Waiting up to a second is not enough: refused at once.
	_, err := l.Wait(ctx, "azure-eastus", 0, time.Second)
	var le *ratelimit.LimitedError
	if errors.As(err, &le) {
		fmt.Println(le.Key, le.Cause, le.RetryAfter.Round(time.Second))
	}
	_, err = l.Allow(ctx, "openai", 0)
	fmt.Println("openai:", err)
	// Output:
	// azure-eastus cooldown 20s
	// openai: <nil>
}

// Do wraps one call: admission, the real token count, and cooldowns from
// the call's error.
func ExampleDo() {
	l, _ := ratelimit.New(ratelimit.Config{
		Overrides: map[string]ratelimit.Limit{"tenant-42": {RequestsPerSecond: 1}},
	})
	ctx := context.Background()
	call := func(context.Context) (string, int64, error) { return "hello", 12, nil }

	reply, err := ratelimit.Do(ctx, l, "tenant-42", 0, 10*time.Millisecond, call)
	fmt.Println(reply, err)

	// The next slot is a second away, more than the 10ms this caller waits.
	_, err = ratelimit.Do(ctx, l, "tenant-42", 0, 10*time.Millisecond, call)
	var le *ratelimit.LimitedError
	if errors.As(err, &le) {
		fmt.Println(le.Cause, le.RetryAfter.Round(100*time.Millisecond))
	}

	// Other tenants use the Default limit, here unlimited.
	reply, err = ratelimit.Do(ctx, l, "tenant-7", 0, 0, call)
	fmt.Println(reply, err)
	// Output:
	// hello <nil>
	// requests 1s
	// hello <nil>
}

// Adaptive throttling: while the backend rejects everything, the client
// soon stops sending and fails calls locally.
func ExampleThrottle() {
	th, _ := ratelimit.NewThrottle(ratelimit.ThrottleConfig{Seed: 1})
	sent := 0
	for range 1000 {
		if err := th.Allow(); err != nil {
			continue // rejected locally: no request sent
		}
		sent++
		th.Record(false) // the backend said 429
	}
	fmt.Printf("sent %d of 1000, rejection probability now %.3f\n", sent, th.Probability())
	// Output:
	// sent 7 of 1000, rejection probability now 0.999
}

// Read what a response says about the caller's limits: here OpenAI's
// headers (the sample of its rate-limits guide) and, on another response,
// Anthropic's, whose resets are timestamps read against now.
func ExampleParseHeaders() {
	openai := http.Header{}
	openai.Set("x-ratelimit-limit-requests", "60")
	openai.Set("x-ratelimit-remaining-requests", "59")
	openai.Set("x-ratelimit-reset-requests", "1s")
	openai.Set("x-ratelimit-limit-tokens", "150000")
	openai.Set("x-ratelimit-remaining-tokens", "149984")
	openai.Set("x-ratelimit-reset-tokens", "6m0s")

	sig, ok := ratelimit.ParseHeaders(openai, time.Now())
	fmt.Println(ok)
	fmt.Printf("requests: %d of %d left, full in %v\n", sig.Requests.Remaining, sig.Requests.Limit, sig.Requests.Reset)
	fmt.Printf("tokens: %d of %d left, full in %v\n", sig.Tokens.Remaining, sig.Tokens.Limit, sig.Tokens.Reset)

	now := time.Date(2025, 8, 21, 12, 40, 58, 0, time.UTC)
	anthropic := http.Header{}
	anthropic.Set("anthropic-ratelimit-requests-remaining", "0")
	anthropic.Set("anthropic-ratelimit-requests-reset", "2025-08-21T12:41:28Z")
	anthropic.Set("anthropic-ratelimit-output-tokens-remaining", "16000")
	anthropic.Set("retry-after", "30")

	sig, _ = ratelimit.ParseHeaders(anthropic, now)
	fmt.Println("requests left:", sig.Requests.Remaining, "full in", sig.Requests.Reset, "retry after", sig.RetryAfter)
	fmt.Println("output tokens left:", sig.OutputTokens.Remaining, "limit known:", sig.OutputTokens.HasLimit)
	// Output:
	// true
	// requests: 59 of 60 left, full in 1s
	// tokens: 149984 of 150000 left, full in 6m0s
	// requests left: 0 full in 30s retry after 30s
	// output tokens left: 16000 limit known: false
}

// A response's rate-limit headers pace the key before its first 429: here
// 10 of 20 requests are left and the bucket is full again in 50 ms, so the
// server refills 200 requests a second, and the key is paced a little
// below that.
func ExampleLimiter_ListenHeaders() {
	l, err := ratelimit.New(ratelimit.Config{})
	if err != nil {
		panic(err)
	}
	h := http.Header{}
	h.Set("x-ratelimit-limit-requests", "20")
	h.Set("x-ratelimit-remaining-requests", "10")
	h.Set("x-ratelimit-reset-requests", "50ms")
	fmt.Printf("before: %.0f req/s (0: unpaced)\n", l.LearnedRate("gpt-4o"))
	l.ListenHeaders("gpt-4o", h)
	fmt.Printf("after: %.0f req/s\n", l.LearnedRate("gpt-4o"))
	// Output:
	// before: 0 req/s (0: unpaced)
	// after: 194 req/s
}

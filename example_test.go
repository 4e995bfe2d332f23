package sturdy_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/sturdyai/sturdy"
)

// A 429 from an OpenAI-style API carries several hints; the most precise
// one wins. Without retry-after-ms or retry-after, the reset of the limit
// that is exhausted (here tokens) decides, not the shorter one.
func ExampleRetryAfterFromHeader() {
	now := time.Date(2026, time.November, 29, 12, 0, 0, 0, time.UTC)

	h := http.Header{}
	h.Set("X-Ratelimit-Remaining-Requests", "59")
	h.Set("X-Ratelimit-Reset-Requests", "1s")
	h.Set("X-Ratelimit-Remaining-Tokens", "0")
	h.Set("X-Ratelimit-Reset-Tokens", "6m0s")
	fmt.Println(sturdy.RetryAfterFromHeader(h, now))

	h.Set("Retry-After", "Sun, 29 Nov 2026 12:00:30 GMT")
	fmt.Println(sturdy.RetryAfterFromHeader(h, now))

	h.Set("Retry-After-Ms", "1500")
	fmt.Println(sturdy.RetryAfterFromHeader(h, now))

	fmt.Println(sturdy.RetryAfterFromHeader(http.Header{}, now))
	// Output:
	// 6m0s true
	// 30s true
	// 1.5s true
	// 0s false
}

// A call that tried three endpoints fails with one error that says where
// each attempt went and why it failed. Callers match its class with
// errors.Is, reach the details with errors.As, and still see the deciding
// cause (here a deadline).
func ExampleError() {
	err := fmt.Errorf("summarize: %w", &sturdy.Error{
		Op:       "failover",
		Class:    sturdy.Timeout,
		Endpoint: "vllm-b",
		Err:      context.DeadlineExceeded,
		Attempts: []sturdy.Attempt{
			{Endpoint: "vllm-a", Kind: sturdy.First, Class: sturdy.Unavailable, Err: errors.New("502 Bad Gateway")},
			{Endpoint: "openai", Kind: sturdy.Retry, Class: sturdy.Overloaded, RetryAfter: 20 * time.Second, Err: errors.New("429 Too Many Requests")},
			{Endpoint: "vllm-b", Kind: sturdy.Hedge, Class: sturdy.Timeout, Err: context.DeadlineExceeded},
		},
	})

	fmt.Println(err)
	fmt.Println(errors.Is(err, sturdy.ErrTimeout), errors.Is(err, sturdy.ErrUnavailable))
	fmt.Println(errors.Is(err, context.DeadlineExceeded))

	var e *sturdy.Error
	if errors.As(err, &e) {
		for _, a := range e.Attempts {
			fmt.Println(a.Endpoint, a.Class, a.Class.RetryElsewhere(), a.Class.Failure())
		}
	}
	// Output:
	// summarize: sturdy: failover: timeout on vllm-b: context deadline exceeded; 3 attempts: 1. vllm-a first unavailable (502 Bad Gateway), 2. openai retry overloaded (429 Too Many Requests), 3. vllm-b hedge timeout (context deadline exceeded)
	// true false
	// true
	// vllm-a unavailable true true
	// openai overloaded true false
	// vllm-b timeout true true
}

// ClassOf classifies errors that come without a status code.
func ExampleClassOf() {
	for _, err := range []error{
		nil,
		context.Canceled,
		fmt.Errorf("read body: %w", context.DeadlineExceeded),
		errors.New("connection reset by peer"),
		&sturdy.Error{Class: sturdy.TooLarge},
	} {
		c := sturdy.ClassOf(err)
		fmt.Printf("%-11s retry elsewhere: %-5v failure: %v\n", c, c.RetryElsewhere(), c.Failure())
	}
	// Output:
	// success     retry elsewhere: false failure: false
	// canceled    retry elsewhere: false failure: false
	// timeout     retry elsewhere: true  failure: true
	// unavailable retry elsewhere: true  failure: true
	// too_large   retry elsewhere: false failure: false
}

// An overloaded endpoint is worth trying elsewhere but is not sick; a bad
// credential is both, which is why the balancer avoids that endpoint.
func ExampleClass_RetryElsewhere() {
	for _, c := range []sturdy.Class{sturdy.Overloaded, sturdy.Auth, sturdy.TooLarge} {
		fmt.Println(c, c.RetryElsewhere(), c.Failure(), c.Err())
	}
	// Output:
	// overloaded true false sturdy: overloaded
	// auth true true sturdy: credential rejected
	// too_large false false sturdy: request exceeds the context window
}

package balancer_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/balancer"
)

func Example() {
	b, err := balancer.New(balancer.Config{
		Endpoints: []sturdy.Endpoint{
			{Name: "vllm-0", Address: "http://10.0.0.1:8000"},
			{Name: "vllm-1", Address: "http://10.0.0.2:8000"},
		},
		// Policy zero: P2C Peak-EWMA.
	})
	if err != nil {
		panic(err)
	}
	ep, done, err := b.Pick(context.Background(), nil)
	if err != nil {
		panic(err)
	}
	start := time.Now()
	// ... send the request to ep.Address ...
	done(sturdy.Outcome{Class: sturdy.Success, Latency: time.Since(start)})
	fmt.Println(strings.HasPrefix(ep.Name, "vllm-"))
	// Output: true
}

func Example_roundRobin() {
	b, _ := balancer.New(balancer.Config{
		Endpoints: []sturdy.Endpoint{{Name: "a"}, {Name: "b"}, {Name: "c"}},
		Policy:    balancer.RoundRobin,
		Seed:      1, // start at the first endpoint
	})
	var order []string
	for range 7 {
		ep, done, _ := b.Pick(context.Background(), nil)
		order = append(order, ep.Name)
		done(sturdy.Outcome{})
	}
	fmt.Println(strings.Join(order, " "))
	// Output: a b c a b c a
}

func Example_weighted() {
	b, _ := balancer.New(balancer.Config{
		Endpoints: []sturdy.Endpoint{
			{Name: "a", Weight: 5},
			{Name: "b", Weight: 1},
			{Name: "c", Weight: 1},
		},
		Policy: balancer.WeightedRoundRobin,
	})
	var order []string
	for range 14 {
		ep, done, _ := b.Pick(context.Background(), nil)
		order = append(order, ep.Name)
		done(sturdy.Outcome{})
	}
	fmt.Println(strings.Join(order, " "))
	// Output: a a b a c a a a a b a c a a
}

// A call that fails over passes the endpoints it has tried, so the next
// attempt lands elsewhere; once every endpoint is tried, Pick says so.
func ExampleBalancer_Pick_exclude() {
	b, _ := balancer.New(balancer.Config{
		Endpoints: []sturdy.Endpoint{{Name: "primary"}, {Name: "secondary"}},
		Policy:    balancer.RoundRobin,
		Seed:      1,
	})
	var tried []string
	for {
		ep, done, err := b.Pick(context.Background(), tried)
		if err != nil {
			fmt.Println(errors.Is(err, balancer.ErrNoEndpoint), errors.Is(err, sturdy.ErrUnavailable))
			fmt.Println(err)
			break
		}
		tried = append(tried, ep.Name)
		done(sturdy.Outcome{Class: sturdy.Unavailable}) // it failed; try another
	}
	fmt.Println(tried)
	// Output:
	// true true
	// sturdy: balancer: unavailable: balancer: no endpoint available: all 2 endpoints already tried
	// [primary secondary]
}

// Two clients of one pool, built apart, send a conversation to the same
// replica, and fail over to the same next one: rendezvous hashing needs
// only the endpoint names to agree.
func Example_prefixAffinity() {
	eps := []sturdy.Endpoint{{Name: "vllm-0"}, {Name: "vllm-1"}, {Name: "vllm-2"}, {Name: "vllm-3"}}
	clientA, _ := balancer.New(balancer.Config{Endpoints: eps, Policy: balancer.PrefixAffinity})
	clientB, _ := balancer.New(balancer.Config{Endpoints: eps, Policy: balancer.PrefixAffinity})
	ctx := balancer.WithKey(context.Background(), balancer.SessionKey("conversation-42"))
	for _, b := range []*balancer.Balancer{clientA, clientB} {
		first, done, _ := b.Pick(ctx, nil)
		done(sturdy.Outcome{Class: sturdy.Unavailable})
		next, done, _ := b.Pick(ctx, []string{first.Name})
		done(sturdy.Outcome{Class: sturdy.Success})
		fmt.Println(first.Name, "then", next.Name)
	}
	// Output:
	// vllm-3 then vllm-2
	// vllm-3 then vllm-2
}

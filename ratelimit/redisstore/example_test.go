package redisstore_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/sturdyai/sturdy/ratelimit"
	"github.com/sturdyai/sturdy/ratelimit/redisstore"
)

// Three replicas share a provider's 60 requests a minute, in bursts of 6. Each builds
// its Limiter on the same Redis; should Redis fail, each admits a third.
// Nothing listens on 127.0.0.1:1, so here the Store falls back at once.
func Example() {
	rdb := redis.NewClient(&redis.Options{
		Addr:                  "127.0.0.1:1", // your Redis, e.g. "redis:6379"
		ContextTimeoutEnabled: true,          // required: bounds each round trip
	})
	defer rdb.Close()

	store, err := redisstore.New(redisstore.Config{
		Client: rdb,
		Prefix: "chat-api", // one per application sharing the Redis
		Share:  1.0 / 3,    // three replicas
		OnStateChange: func(to redisstore.State, err error) {
			fmt.Println("limits now", to)
		},
	})
	if err != nil {
		panic(err)
	}
	lim, err := ratelimit.New(ratelimit.Config{
		Default: ratelimit.Limit{RequestsPerSecond: 1, Burst: 6},
		Store:   store,
	})
	if err != nil {
		panic(err)
	}

	admitted := 0
	for range 5 {
		p, err := lim.Allow(context.Background(), "openai/gpt-4o", 0)
		if err != nil {
			le, _ := errors.AsType[*ratelimit.LimitedError](err)
			fmt.Println("refused by", le.Cause)
			break
		}
		admitted++
		p.Done(-1)
	}
	fmt.Println("admitted", admitted)
	// Output:
	// limits now local
	// refused by requests
	// admitted 2
}

package hedge_test

import (
	"context"
	"fmt"
	"time"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/balancer"
	"github.com/sturdyai/sturdy/hedge"
)

func ExampleDo() {
	bal, _ := balancer.New(balancer.Config{
		Policy:    balancer.RoundRobin,
		Endpoints: []sturdy.Endpoint{{Name: "stalled"}, {Name: "quick"}},
	})
	policy, _ := hedge.New(hedge.Config{Delay: 20 * time.Millisecond})

	reply, err := hedge.Do(context.Background(), policy, bal, func(ctx context.Context, ep *sturdy.Endpoint) (string, error) {
		if ep.Name == "stalled" {
			<-ctx.Done() // never answers; cancelled when the hedge wins
			return "", ctx.Err()
		}
		return "answer from " + ep.Name, nil
	}, nil)
	fmt.Println(reply, err)
	// Output: answer from quick <nil>
}

package failover_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/balancer"
	"github.com/sturdyai/sturdy/failover"
)

func ExampleDo() {
	bal, _ := balancer.New(balancer.Config{
		Policy:    balancer.RoundRobin,
		Endpoints: []sturdy.Endpoint{{Name: "replica-a"}, {Name: "replica-b"}},
	})
	policy, _ := failover.New(failover.Config{MaxAttempts: 2, BaseBackoff: -1})

	reply, err := failover.Do(context.Background(), policy, bal, func(ctx context.Context, ep *sturdy.Endpoint) (string, error) {
		if ep.Name == "replica-a" {
			return "", sturdy.ErrUnavailable // replica-a is down
		}
		return "hello from " + ep.Name, nil
	})
	fmt.Println(reply, err)
	// Output: hello from replica-b <nil>
}

func ExampleDo_givingUp() {
	policy, _ := failover.New(failover.Config{MaxAttempts: 3, BaseBackoff: -1})
	_, err := failover.Do(context.Background(), policy, nil, func(ctx context.Context, _ *sturdy.Endpoint) (int, error) {
		return 0, sturdy.ErrUnavailable
	})
	var se *sturdy.Error
	errors.As(err, &se)
	fmt.Println(errors.Is(err, sturdy.ErrUnavailable), len(se.Attempts))
	// Output: true 3
}

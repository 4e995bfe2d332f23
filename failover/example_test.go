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

// In an outage retries cannot help. The default budget learns that from
// the retries that fail and keeps to its floor (3 retries per second);
// the flat budget of the SRE book (BudgetRatio 0.1) still retries 10% of
// the calls on top of it.
func ExampleConfig_budgetInAnOutage() {
	down := func(context.Context, *sturdy.Endpoint) (int, error) { return 0, sturdy.ErrUnavailable }
	for _, cfg := range []failover.Config{
		{BaseBackoff: -1},                   // learning budget (default)
		{BaseBackoff: -1, BudgetRatio: 0.1}, // the flat budget
	} {
		policy, _ := failover.New(cfg)
		for range 1000 {
			_, _ = failover.Do(context.Background(), policy, nil, down)
		}
		fmt.Printf("BudgetRatio %v: %d retries for 1000 calls\n", cfg.BudgetRatio, policy.Stats().Retries)
	}
	// Output:
	// BudgetRatio 0: 30 retries for 1000 calls
	// BudgetRatio 0.1: 130 retries for 1000 calls
}

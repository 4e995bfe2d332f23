package reliability

import (
	"testing"
	"time"

	"github.com/sturdyai/sturdy/balancer"
	"github.com/sturdyai/sturdy/failover"
	"github.com/sturdyai/sturdy/hedge"
	"github.com/sturdyai/sturdy/httpmw"
	"github.com/sturdyai/sturdy/sturdytest"
)

// TestHTTPNetworkFaults puts each network fault on one endpoint of three,
// then on all three, and checks every call: it is answered in full (by
// another endpoint when one is faulty), or fails with one error that lists
// its attempts, or (only for a cut past the first byte) gets a read error;
// and none outlives its deadline. Nothing may leak.
func TestHTTPNetworkFaults(t *testing.T) {
	for _, f := range netFaults {
		for _, every := range []bool{false, true} {
			name := f.name + "/one of three"
			if every {
				name = f.name + "/all three"
			}
			t.Run(name, func(t *testing.T) { httpFault(t, f, every) })
		}
	}
}

const faultDeadline = 3 * time.Second

func httpOpts() []httpmw.Option {
	return []httpmw.Option{
		// Round-robin, so that the faulty endpoint keeps getting its share
		// of first attempts until health ejects it (P2C would mostly
		// avoid it after its first failure).
		httpmw.WithBalancer(balancer.Config{Policy: balancer.RoundRobin}),
		httpmw.WithTTFBTimeout(250 * time.Millisecond),
		httpmw.WithFailover(failover.Config{MaxAttempts: 3, BaseBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}),
		httpmw.WithHedge(hedge.Config{Delay: 60 * time.Millisecond, BudgetRatio: 0.5}),
	}
}

func httpFault(t *testing.T, f netFault, every bool) {
	leaks := leakCheck(t)
	r := newHTTPRig(t, [][]string{{"a", "b", "c"}}, []string{"big"}, sturdytest.Config{}, httpOpts()...)
	faulty := r.names[:1]
	if every {
		faulty = r.names
	}
	for _, n := range faulty {
		if err := f.apply(r.proxies[n]); err != nil {
			t.Fatal(err)
		}
	}
	calls, workers := 40, 4
	if every {
		calls = 20
	}
	var ty tally
	load(calls, workers, func(i int) { doHTTP(t, r.client, &ty, faultDeadline, "big", i%2 == 1) })

	fig := figure{Order: f.order, Fault: f.name, Adapter: "httpmw", Does: f.does, Deadline: faultDeadline, Attempts: r.count.N()}
	if every {
		fig.Order++
		fig.Fault += ", all endpoints"
		fig.Does = f.all
	} else {
		fig.Fault += ", 1 of 3 endpoints"
	}
	ty.fill(&fig)
	switch {
	case !every && !f.cuts:
		if fig.OK != fig.Calls {
			t.Errorf("%d of %d calls failed although two endpoints of three were fine", fig.Calls-fig.OK, fig.Calls)
		}
	case !every && f.cuts:
		// Cuts reach the caller until health ejects the endpoint: five
		// consecutive failures, plus the calls already in flight.
		if fig.Cut > 5+int64(workers) {
			t.Errorf("%d calls cut; health should have ejected the endpoint after 5", fig.Cut)
		}
		if fig.OK+fig.Cut != fig.Calls {
			t.Errorf("%d calls neither answered nor cut", fig.Calls-fig.OK-fig.Cut)
		}
	}
	fig.OpenConn = r.close()
	fig.Leaked = leaks()
	record(t, fig)
}

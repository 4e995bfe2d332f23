// Package p2c registers sturdy's P2C Peak-EWMA load balancer with grpc-go,
// under the name "sturdy_p2c_ewma", so that a plain *grpc.ClientConn can
// use it and keep grpc-go's own name resolution (DNS, xDS, manual):
//
//	import _ "github.com/sturdyai/sturdy/grpcmw/p2c"
//
//	conn, err := grpc.NewClient("dns:///model.internal:8001",
//		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"sturdy_p2c_ewma":{}}]}`),
//		grpc.WithTransportCredentials(creds))
//
// grpc-go ships round_robin, pick_first and least_request, none of which
// looks at latency. This balancer picks, for each RPC, the cheaper of two
// ready endpoints drawn at random, where the cost is the endpoint's
// Peak-EWMA latency × (RPCs in flight + 1), as in Finagle and Linkerd. A
// slow replica is shunned within a few RPCs and tried again once its
// estimate has decayed. It is built like grpc-go's least_request: an
// endpointsharding parent with a pick_first child per endpoint, so
// grpc-go's client-side health checking and outlier detection still apply.
//
// The cost is sturdy's own balancer.Balancer (policy P2CPeakEWMA), fed by
// each RPC's PickResult.Done: the RPC's latency, and its status classified
// as grpcmw classifies it (a failure counts as slow, never fast; see
// package balancer). The latency is the whole RPC's, so a long stream
// raises its endpoint's estimate; give long streams their own conn.
//
// The config takes three optional fields:
//
//	{"sturdy_p2c_ewma": {"decay": "10s", "defaultRtt": "30ms", "loadReports": true}}
//
// decay is the Peak-EWMA time constant (default 10s) and defaultRtt the
// cost of an endpoint never observed (default 30ms), Go duration strings.
// loadReports (default false) prices endpoints with the per-call ORCA load
// reports their servers send in the endpoint-load-metrics-bin trailer
// (grpc-go's orca.CallMetricsServerOption): the queue of waiting requests,
// KV-cache use and utilization, as the balancer package doc describes.
package p2c

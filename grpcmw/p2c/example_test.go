package p2c_test

import (
	"fmt"

	"google.golang.org/grpc/balancer"

	"github.com/sturdyai/sturdy/grpcmw/p2c"
)

// Importing the package registers the balancer; a service config selects
// it for a conn, with grpc's own resolvers finding the addresses:
//
//	conn, err := grpc.NewClient("dns:///model.internal:8001",
//		grpc.WithDefaultServiceConfig(config),
//		grpc.WithTransportCredentials(creds))
func Example() {
	config := `{"loadBalancingConfig":[{"` + p2c.Name + `":{"decay":"10s","defaultRtt":"30ms"}}]}`
	fmt.Println(balancer.Get(p2c.Name) != nil)
	fmt.Println(config)
	// Output:
	// true
	// {"loadBalancingConfig":[{"sturdy_p2c_ewma":{"decay":"10s","defaultRtt":"30ms"}}]}
}

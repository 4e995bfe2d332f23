package p2c_test

import (
	"encoding/json"

	grpcbalancer "google.golang.org/grpc/balancer"
	"google.golang.org/grpc/serviceconfig"
)

func getBuilder(name string) grpcbalancer.ConfigParser {
	b, _ := grpcbalancer.Get(name).(grpcbalancer.ConfigParser)
	return b
}

type parser struct{ p grpcbalancer.ConfigParser }

func (p parser) ParseConfig(js []byte) (serviceconfig.LoadBalancingConfig, error) {
	return p.p.ParseConfig(json.RawMessage(js))
}

package grpcload

import (
	"testing"

	v3orcapb "github.com/cncf/xds/go/xds/data/orca/v3"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
)

func TestReport(t *testing.T) {
	b, err := proto.Marshal(&v3orcapb.OrcaLoadReport{NamedMetrics: map[string]float64{"num_requests_waiting": 7}})
	if err != nil {
		t.Fatal(err)
	}
	if r := Report(metadata.Pairs(Key, string(b))); r == nil || r.Queue != 7 {
		t.Errorf("Report = %+v, want a queue of 7", r)
	}
	for _, md := range []metadata.MD{nil, metadata.Pairs(Key, "\xff\xff"), metadata.Pairs(Key, string(b), Key, string(b))} {
		if r := Report(md); r != nil {
			t.Errorf("Report(%v) = %+v, want nil", md, r)
		}
	}
}

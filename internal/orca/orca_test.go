package orca

import (
	"encoding/base64"
	"math"
	"testing"

	v3orcapb "github.com/cncf/xds/go/xds/data/orca/v3"
	"google.golang.org/protobuf/proto"

	"github.com/sturdyai/sturdy"
)

func TestParse(t *testing.T) {
	binReport := func(r *v3orcapb.OrcaLoadReport) string {
		b, err := proto.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		return base64.StdEncoding.EncodeToString(b)
	}
	tests := []struct {
		name, v string
		want    sturdy.LoadReport
		ok      bool
	}{
		// vLLM's two forms (vllm/entrypoints/serve/utils/orca_metrics.py).
		{"vllm text", "TEXT named_metrics.kv_cache_usage_perc=0.3, named_metrics.num_requests_waiting=4.0",
			sturdy.LoadReport{Queue: 4, KVCache: 0.3}, true},
		{"vllm json", `JSON {"named_metrics": {"kv_cache_usage_perc": 0.25, "num_requests_waiting": 2.0}}`,
			sturdy.LoadReport{Queue: 2, KVCache: 0.25}, true},
		// Envoy's and Triton's examples.
		{"envoy text", "TEXT cpu_utilization=0.3, mem_utilization=0.8, rps_fractional=10.0, eps=1, named_metrics.custom_metric_util=0.4",
			sturdy.LoadReport{Utilization: 0.3}, true},
		{"triton kv", "TEXT named_metrics.kv_cache_utilization=0.5, named_metrics.max_token_capacity=1000",
			sturdy.LoadReport{KVCache: 0.5}, true},
		{"application over cpu", "TEXT cpu_utilization=0.9, application_utilization=0.2",
			sturdy.LoadReport{Utilization: 0.2}, true},
		{"format is case-insensitive", "text named_metrics.num_requests_waiting=1", sturdy.LoadReport{Queue: 1}, true},
		{"kv above 1 is 1", "TEXT named_metrics.kv_cache_usage_perc=1.5", sturdy.LoadReport{KVCache: 1}, true},
		{"trailing comma", "TEXT named_metrics.num_requests_waiting=3,", sturdy.LoadReport{Queue: 3}, true},
		{"bin", "BIN " + binReport(&v3orcapb.OrcaLoadReport{
			CpuUtilization: 0.7, RpsFractional: 12,
			NamedMetrics: map[string]float64{"num_requests_waiting": 9, "kv_cache_usage_perc": 0.6, "other": 1},
			RequestCost:  map[string]float64{"x": 2},
		}), sturdy.LoadReport{Queue: 9, KVCache: 0.6, Utilization: 0.7}, true},

		{"nothing read", "TEXT mem_utilization=0.8", sturdy.LoadReport{}, false},
		{"no format", "named_metrics.num_requests_waiting=1", sturdy.LoadReport{}, false},
		{"unknown format", "XML <a/>", sturdy.LoadReport{}, false},
		{"negative", "TEXT named_metrics.num_requests_waiting=-1", sturdy.LoadReport{}, false},
		{"nan", "TEXT cpu_utilization=NaN", sturdy.LoadReport{}, false},
		{"inf", "TEXT named_metrics.num_requests_waiting=+Inf", sturdy.LoadReport{}, false},
		{"no value", "TEXT named_metrics.num_requests_waiting", sturdy.LoadReport{}, false},
		{"not a number", "TEXT named_metrics.num_requests_waiting=many", sturdy.LoadReport{}, false},
		{"bad json", `JSON {"named_metrics": {`, sturdy.LoadReport{}, false},
		{"json string value", `JSON {"named_metrics": {"num_requests_waiting": "3"}}`, sturdy.LoadReport{}, false},
		{"bad base64", "BIN !!!", sturdy.LoadReport{}, false},
		{"truncated proto", "BIN " + base64.StdEncoding.EncodeToString([]byte{0x09, 1, 2}), sturdy.LoadReport{}, false},
		{"too long", "TEXT named_metrics.num_requests_waiting=1," + string(make([]byte, MaxLen)), sturdy.LoadReport{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Parse(tt.v)
			if ok != tt.ok || got != tt.want {
				t.Errorf("Parse(%q) = %+v, %v; want %+v, %v", tt.v, got, ok, tt.want, tt.ok)
			}
		})
	}
}

// ParseProto must read what grpc-go's orca package writes (a marshalled
// v3 OrcaLoadReport), and agree with protobuf's own decoder on any
// report.
func TestParseProtoMatchesProtobuf(t *testing.T) {
	for _, r := range []*v3orcapb.OrcaLoadReport{
		{},
		{ApplicationUtilization: 0.5, CpuUtilization: 0.9},
		{NamedMetrics: map[string]float64{"num_requests_waiting": 3}},
		{CpuUtilization: 0.1, Utilization: map[string]float64{"gpu": 0.8}, Eps: 3, Rps: 7},
	} {
		b, err := proto.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := ParseProto(b)
		want, wantOK := fromProto(r)
		if got != want || ok != wantOK {
			t.Errorf("ParseProto(%v) = %+v, %v; want %+v, %v", r, got, ok, want, wantOK)
		}
	}
}

// fromProto is what ParseProto must make of a decoded report.
func fromProto(r *v3orcapb.OrcaLoadReport) (sturdy.LoadReport, bool) {
	var rep sturdy.LoadReport
	found := false
	for _, v := range []float64{r.CpuUtilization, r.ApplicationUtilization} {
		if !usable(v) {
			return sturdy.LoadReport{}, false
		}
	}
	// proto3 does not send zero scalars: zero is "not reported" either way.
	if r.CpuUtilization != 0 {
		rep.Utilization, found = r.CpuUtilization, true
	}
	if r.ApplicationUtilization != 0 {
		rep.Utilization, found = r.ApplicationUtilization, true
	}
	for k, v := range r.NamedMetrics {
		switch k {
		case metricQueue, metricKV, metricKVTriton:
			if !usable(v) {
				return sturdy.LoadReport{}, false
			}
		}
		switch k {
		case metricQueue:
			rep.Queue, found = v, true
		case metricKV, metricKVTriton:
			rep.KVCache, found = min(v, 1), true
		}
	}
	return rep, found
}

func TestParseTextDoesNotAllocate(t *testing.T) {
	v := "TEXT named_metrics.kv_cache_usage_perc=0.3, named_metrics.num_requests_waiting=4.0"
	if n := testing.AllocsPerRun(100, func() { _, _ = Parse(v) }); n != 0 {
		t.Errorf("Parse(TEXT) allocates %v times, want 0", n)
	}
	b, _ := proto.Marshal(&v3orcapb.OrcaLoadReport{CpuUtilization: 0.5, NamedMetrics: map[string]float64{"num_requests_waiting": 2}})
	if n := testing.AllocsPerRun(100, func() { _, _ = ParseProto(b) }); n != 0 {
		t.Errorf("ParseProto allocates %v times, want 0", n)
	}
}

// FuzzParse feeds Parse any header value: it must not panic, and what it
// returns must be usable load figures.
func FuzzParse(f *testing.F) {
	b, _ := proto.Marshal(&v3orcapb.OrcaLoadReport{CpuUtilization: 0.5, NamedMetrics: map[string]float64{"num_requests_waiting": 2}})
	for _, s := range []string{
		"TEXT named_metrics.kv_cache_usage_perc=0.3, named_metrics.num_requests_waiting=4.0",
		`JSON {"named_metrics": {"kv_cache_usage_perc": 0.25, "num_requests_waiting": 2.0}, "cpu_utilization": 0.5}`,
		"BIN " + base64.StdEncoding.EncodeToString(b),
		"BIN " + base64.RawStdEncoding.EncodeToString(b),
		"TEXT a=1,,b=2",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		r, ok := Parse(v)
		if !ok {
			if r != (sturdy.LoadReport{}) {
				t.Fatalf("Parse(%q) = %+v with ok false", v, r)
			}
			return
		}
		for _, x := range []float64{r.Queue, r.KVCache, r.Utilization} {
			if !(x >= 0) || math.IsInf(x, 0) {
				t.Fatalf("Parse(%q) = %+v: not a usable figure", v, r)
			}
		}
		if r.KVCache > 1 {
			t.Fatalf("Parse(%q) = %+v: KV cache share above 1", v, r)
		}
	})
}

// Package orca reads ORCA (Open Request Cost Aggregation) load reports,
// the per-response load figures a model server sends when asked: over
// HTTP the endpoint-load-metrics header, in the TEXT, JSON and BIN forms
// that Envoy's ORCA parser reads (vLLM sends TEXT and JSON; Triton TEXT
// and JSON), or the endpoint-load-metrics-bin header; over gRPC the
// endpoint-load-metrics-bin trailer that grpc-go's orca package writes
// (a serialized xds.data.orca.v3.OrcaLoadReport).
//
// Only the figures a balancer can act on are kept (sturdy.LoadReport).
// Parsing is bounded: a report longer than MaxLen is ignored, as is any
// value that is not a finite, non-negative number; a malformed report
// gives ok == false, never an error or a panic (FuzzParse).
package orca

import (
	"encoding/base64"
	"encoding/json"
	"math"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/sturdyai/sturdy"
)

const (
	// Header is the HTTP response header of a load report.
	Header = "Endpoint-Load-Metrics"
	// HeaderBin is the header (HTTP) or trailer key (gRPC) of a load
	// report as a serialized OrcaLoadReport; over HTTP it is base64.
	HeaderBin = "Endpoint-Load-Metrics-Bin"
	// FormatHeader is the request header that asks a server for a load
	// report in the given format ("TEXT" or "JSON").
	FormatHeader = "Endpoint-Load-Metrics-Format"
	// MaxLen bounds a report, in bytes: a longer one is ignored.
	MaxLen = 4096
)

// The ORCA fields and named metrics that are read. Utilization follows
// gRFC A58: application_utilization, else cpu_utilization.
const (
	fieldApp       = "application_utilization"
	fieldCPU       = "cpu_utilization"
	namedPrefix    = "named_metrics."
	metricQueue    = "num_requests_waiting" // vLLM
	metricKV       = "kv_cache_usage_perc"  // vLLM
	metricKVTriton = "kv_cache_utilization" // Triton (TensorRT-LLM backend)
)

// report collects the fields as they are found.
type report struct {
	queue, kv, app, cpu float64
	hasApp, any         bool
}

func (r *report) named(name string, v float64) {
	switch name {
	case metricQueue:
		r.queue, r.any = v, true
	case metricKV, metricKVTriton:
		r.kv, r.any = v, true
	}
}

func (r *report) field(name string, v float64) {
	switch name {
	case fieldApp:
		r.app, r.hasApp, r.any = v, true, true
	case fieldCPU:
		r.cpu, r.any = v, true
	default:
		if strings.HasPrefix(name, namedPrefix) {
			r.named(name[len(namedPrefix):], v)
		}
	}
}

func (r *report) result() (sturdy.LoadReport, bool) {
	if !r.any {
		return sturdy.LoadReport{}, false
	}
	u := r.cpu
	if r.hasApp {
		u = r.app
	}
	return sturdy.LoadReport{Queue: r.queue, KVCache: min(r.kv, 1), Utilization: u}, true
}

// usable reports whether v can be a load figure.
func usable(v float64) bool { return v >= 0 && !math.IsInf(v, 1) } // NaN fails v >= 0

// Parse reads an endpoint-load-metrics header value: "TEXT k=v, ...",
// "JSON {...}" or "BIN <base64 proto>". ok is false when the value is
// malformed, too long, or carries none of the figures read.
func Parse(v string) (rep sturdy.LoadReport, ok bool) {
	if len(v) > MaxLen {
		return rep, false
	}
	v = strings.TrimSpace(v)
	i := strings.IndexByte(v, ' ')
	if i < 0 {
		return rep, false
	}
	body := v[i+1:]
	switch f := v[:i]; {
	case strings.EqualFold(f, "TEXT"):
		return parseText(body)
	case strings.EqualFold(f, "JSON"):
		return parseJSON(body)
	case strings.EqualFold(f, "BIN"):
		return ParseBase64(body)
	}
	return rep, false
}

// parseText reads Envoy's native form: comma-separated key=value pairs,
// the map fields flattened as "named_metrics.name". A malformed pair
// makes the whole report malformed: a server that writes one wrong may
// have written the others wrong too.
func parseText(s string) (sturdy.LoadReport, bool) {
	var r report
	for len(s) > 0 {
		pair := s
		if i := strings.IndexByte(s, ','); i >= 0 {
			pair, s = s[:i], s[i+1:]
		} else {
			s = ""
		}
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		eq := strings.IndexByte(pair, '=')
		if eq <= 0 {
			return sturdy.LoadReport{}, false
		}
		val, err := strconv.ParseFloat(strings.TrimSpace(pair[eq+1:]), 64)
		if err != nil || !usable(val) {
			return sturdy.LoadReport{}, false
		}
		r.field(strings.TrimSpace(pair[:eq]), val)
	}
	return r.result()
}

// jsonReport is the JSON mapping of OrcaLoadReport, as far as it is read.
type jsonReport struct {
	CPU          *float64           `json:"cpu_utilization"`
	App          *float64           `json:"application_utilization"`
	NamedMetrics map[string]float64 `json:"named_metrics"`
}

func parseJSON(s string) (sturdy.LoadReport, bool) {
	var j jsonReport
	if err := json.Unmarshal([]byte(s), &j); err != nil {
		return sturdy.LoadReport{}, false
	}
	var r report
	if j.CPU != nil {
		if !usable(*j.CPU) {
			return sturdy.LoadReport{}, false
		}
		r.field(fieldCPU, *j.CPU)
	}
	if j.App != nil {
		if !usable(*j.App) {
			return sturdy.LoadReport{}, false
		}
		r.field(fieldApp, *j.App)
	}
	for _, name := range [...]string{metricQueue, metricKV, metricKVTriton} {
		if v, ok := j.NamedMetrics[name]; ok {
			if !usable(v) {
				return sturdy.LoadReport{}, false
			}
			r.named(name, v)
		}
	}
	return r.result()
}

// ParseBase64 reads a base64-encoded serialized OrcaLoadReport, the BIN
// form over HTTP. Padded and unpadded encodings are both accepted.
func ParseBase64(s string) (sturdy.LoadReport, bool) {
	s = strings.TrimSpace(s)
	if len(s) > MaxLen {
		return sturdy.LoadReport{}, false
	}
	var buf [MaxLen]byte
	enc := base64.StdEncoding
	if len(s)%4 != 0 {
		enc = base64.RawStdEncoding
	}
	n, err := enc.Decode(buf[:], []byte(s))
	if err != nil {
		return sturdy.LoadReport{}, false
	}
	return ParseProto(buf[:n])
}

// OrcaLoadReport's field numbers (xds/data/orca/v3/orca_load_report.proto).
const (
	protoCPU   = 1 // double cpu_utilization
	protoNamed = 8 // map<string, double> named_metrics
	protoApp   = 9 // double application_utilization
)

// ParseProto reads a serialized OrcaLoadReport (the gRPC trailer's
// value). Fields other than those read are skipped; a message that does
// not parse as protobuf is malformed.
func ParseProto(b []byte) (sturdy.LoadReport, bool) {
	if len(b) > MaxLen {
		return sturdy.LoadReport{}, false
	}
	var r report
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return sturdy.LoadReport{}, false
		}
		b = b[n:]
		switch {
		case (num == protoCPU || num == protoApp) && typ == protowire.Fixed64Type:
			u, n := protowire.ConsumeFixed64(b)
			if n < 0 {
				return sturdy.LoadReport{}, false
			}
			b = b[n:]
			v := math.Float64frombits(u)
			if !usable(v) {
				return sturdy.LoadReport{}, false
			}
			if num == protoCPU {
				r.field(fieldCPU, v)
			} else {
				r.field(fieldApp, v)
			}
		case num == protoNamed && typ == protowire.BytesType:
			entry, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return sturdy.LoadReport{}, false
			}
			b = b[n:]
			key, v, ok := mapEntry(entry)
			if !ok {
				return sturdy.LoadReport{}, false
			}
			switch string(key) { // compared in place, not copied
			case metricQueue:
				r.named(metricQueue, v)
			case metricKV, metricKVTriton:
				r.named(metricKV, v)
			}
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return sturdy.LoadReport{}, false
			}
			b = b[n:]
		}
	}
	return r.result()
}

// mapEntry reads one map<string, double> entry: key = 1, value = 2.
func mapEntry(b []byte) (key []byte, v float64, ok bool) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, 0, false
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.BytesType:
			k, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, 0, false
			}
			b, key = b[n:], k
		case num == 2 && typ == protowire.Fixed64Type:
			u, n := protowire.ConsumeFixed64(b)
			if n < 0 {
				return nil, 0, false
			}
			b, v = b[n:], math.Float64frombits(u)
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return nil, 0, false
			}
			b = b[n:]
		}
	}
	return key, v, usable(v)
}

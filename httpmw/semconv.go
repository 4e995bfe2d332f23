package httpmw

import (
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// otelhttpPkg is the package of otelhttp's Transport. A base transport
// from it makes a CLIENT span for each request it sends; sturdy's attempt
// spans are then INTERNAL, so that each request has one client span.
const otelhttpPkg = "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

// makesClientSpans reports whether base is otelhttp's Transport. It is
// recognised by its package path, so that the library need not import
// otelhttp.
func makesClientSpans(base http.RoundTripper) bool {
	t := reflect.TypeOf(base)
	if t == nil {
		return false
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.PkgPath() == otelhttpPkg
}

// serverAttrs are an endpoint's server.address and server.port, built
// once: the port is the URL's, or the scheme's default.
func serverAttrs(u *url.URL) []attribute.KeyValue {
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	p, _ := strconv.Atoi(port)
	if ip := net.ParseIP(host); ip != nil {
		host = ip.String()
	}
	return []attribute.KeyValue{semconv.ServerAddress(host), semconv.ServerPort(p)}
}

// reqAttrs are the request attributes of an endpoint's attempt spans for
// one method and path: server.address, server.port, http.request.method
// and url.full. An endpoint keeps the last ones it built, since a
// program's calls to it mostly share both; building them (the URL's
// string) per attempt was a measurable part of the telemetry's cost
// (BenchmarkTelemetry in the bench module).
type reqAttrs struct {
	method, path, rawPath string
	kv                    []attribute.KeyValue
}

// setRequestAttrs puts the HTTP client semantic-convention attributes of
// an attempt's request on its (recording) span: method, server, and the
// URL without its query (which may carry a key) or user info.
func setRequestAttrs(sp trace.Span, ep *endpoint, out *http.Request) {
	method := out.Method
	if method == "" {
		method = http.MethodGet
	}
	// out.URL is ep's scheme and host with the caller's path (routeURL):
	// only the method and the path vary.
	if ra := ep.reqAttrs.Load(); ra != nil && ra.method == method && ra.path == out.URL.Path && ra.rawPath == out.URL.RawPath {
		sp.SetAttributes(ra.kv...)
		return
	}
	u := *out.URL
	u.RawQuery, u.ForceQuery, u.User, u.Fragment = "", false, nil, ""
	kv := make([]attribute.KeyValue, 0, len(ep.server)+2)
	kv = append(kv, ep.server...)
	kv = append(kv, semconv.HTTPRequestMethodKey.String(method), semconv.URLFull(u.String()))
	ep.reqAttrs.Store(&reqAttrs{method: method, path: out.URL.Path, rawPath: out.URL.RawPath, kv: kv})
	sp.SetAttributes(kv...)
}

// statusAttrs returns http.response.status_code for code as a one-element
// slice, built once for the codes 100 to 599: a slice built per call
// escapes to the heap (see reqAttrs).
func statusAttrs(code int) []attribute.KeyValue {
	if code < 100 || code > 599 {
		return []attribute.KeyValue{semconv.HTTPResponseStatusCode(code)}
	}
	all := statusTable()
	return all[code-100 : code-99 : code-99]
}

var statusTable = sync.OnceValue(func() []attribute.KeyValue {
	kv := make([]attribute.KeyValue, 500)
	for i := range kv {
		kv[i] = semconv.HTTPResponseStatusCode(100 + i)
	}
	return kv
})

package httpmw

import (
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strconv"

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

// setRequestAttrs puts the HTTP client semantic-convention attributes of
// an attempt's request on its (recording) span: method, server, and the
// URL without its query (which may carry a key) or user info.
func setRequestAttrs(sp trace.Span, ep *endpoint, out *http.Request) {
	u := *out.URL
	u.RawQuery, u.ForceQuery, u.User, u.Fragment = "", false, nil, ""
	method := out.Method
	if method == "" {
		method = http.MethodGet
	}
	sp.SetAttributes(ep.server...)
	sp.SetAttributes(semconv.HTTPRequestMethodKey.String(method), semconv.URLFull(u.String()))
}

package httpmw

import (
	"sync"
	"sync/atomic"

	"cmp"

	"go.opentelemetry.io/otel/attribute"

	"context"
	"fmt"
	"maps"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"unsafe"

	"github.com/sturdyai/sturdy/internal/pipeline"
)

// Response headers the Transport sets.
const (
	// HeaderEndpoint names the endpoint that served the response. The
	// value slices of HeaderEndpoint and HeaderTier, like those of the
	// endpoint headers on outgoing requests, are shared and precomputed
	// (no allocation per call): replace them with Header.Set, never write
	// into them.
	HeaderEndpoint = "Sturdy-Endpoint"
	// HeaderTier names the tier that served the response.
	HeaderTier = "Sturdy-Tier"
	// HeaderAttempts, on a final error response, lists every attempt of
	// the call as "endpoint:class", comma-separated.
	HeaderAttempts = "Sturdy-Attempts"
	// HeaderShouldRetry is set to "false" on a final error response, so
	// that a client with retries of its own (openai-go reads
	// x-should-retry) does not retry what sturdy already retried.
	HeaderShouldRetry = "X-Should-Retry"
)

type headerKV struct {
	key    string
	values []string
}

// endpoint is an Endpoint prepared for the hot path: its URL parts and
// headers are computed once.
type endpoint struct {
	name      string
	tier      int
	scheme    string
	host      string
	prefix    string // base path without a trailing slash; "" for none
	rawPrefix string // its escaped form
	base      string // scheme://host + prefix, for probes
	header    []headerKV
	query     url.Values // Endpoint.Query; nil: none
	probePath string     // Endpoint.ProbePath
	model     string     // Endpoint.Model: the endpoint's name for its tier's model
	target    *tierState // the rewrite to model; nil when it names the tier's
	noProbe   bool       // Endpoint.NoProbe
	nameHdr   []string
	server    []attribute.KeyValue // server.address, server.port
	provider  string               // gen_ai.provider.name
	genai     sync.Map             // genKey → *telemetry.GenAISets

	reqAttrs atomic.Pointer[reqAttrs] // the last attempt span's request attributes (semconv.go)
}

func newEndpoint(e Endpoint, tier int) (*endpoint, error) {
	// The errors below never quote the URL: a URL that is refused may
	// carry a key in its user info or query.
	u, err := url.Parse(e.Address)
	switch {
	case err != nil:
		if ue, ok := err.(*url.Error); ok {
			err = ue.Err // without the URL it quotes
		}
		return nil, fmt.Errorf("endpoint %q: Address does not parse (%v); give a base URL such as \"http://127.0.0.1:8000\"", e.Name, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("endpoint %q: Address has scheme %q; it must start with http:// or https://", e.Name, u.Scheme)
	case u.Host == "":
		return nil, fmt.Errorf("endpoint %q: Address has no host", e.Name)
	case u.User != nil:
		return nil, fmt.Errorf("endpoint %q: Address has user info; put credentials in Endpoint.Header instead", e.Name)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, fmt.Errorf("endpoint %q: Address has a query or fragment; give only scheme, host and an optional base path (a query goes in Endpoint.Query)", e.Name)
	case strings.HasSuffix(strings.TrimRight(u.Path, "/"), "/v1"):
		return nil, fmt.Errorf("endpoint %q: Address ends in /v1, but the request path already starts with it (openai-go and go-openai send /v1/chat/completions): every call would go to .../v1/v1/...; drop /v1 from Address", e.Name)
	case u.Scheme == "http" && u.Port() == "443":
		return nil, fmt.Errorf("endpoint %q: Address is http:// on port 443, the HTTPS port; use https://", e.Name)
	case u.Scheme == "https" && u.Port() == "80":
		return nil, fmt.Errorf("endpoint %q: Address is https:// on port 80, the plain HTTP port; use http://", e.Name)
	}
	for k, vs := range e.Query {
		if k == "" || len(vs) == 0 {
			return nil, fmt.Errorf("endpoint %q: Query has an empty key or a key without values", e.Name)
		}
	}
	if l := e.Limit; l.RequestsPerSecond < 0 || l.Burst < 0 || l.TokensPerMinute < 0 || l.TokenBurst < 0 {
		return nil, fmt.Errorf("endpoint %q: Limit has a negative rate or burst", e.Name)
	}
	if e.ProbePath != "" && (e.NoProbe || !strings.HasPrefix(e.ProbePath, "/")) {
		return nil, fmt.Errorf("endpoint %q: ProbePath %q must start with / and not be given with NoProbe", e.Name, e.ProbePath)
	}
	ep := &endpoint{
		name:      e.Name,
		tier:      tier,
		scheme:    u.Scheme,
		host:      u.Host,
		prefix:    strings.TrimRight(u.Path, "/"),
		rawPrefix: strings.TrimRight(u.EscapedPath(), "/"),
		nameHdr:   []string{e.Name},
		server:    serverAttrs(u),
		provider:  cmp.Or(e.Provider, DefaultProvider),
		probePath: e.ProbePath,
		noProbe:   e.NoProbe,
		model:     e.Model,
	}
	if len(e.Query) > 0 {
		ep.query = make(url.Values, len(e.Query))
		for k, vs := range e.Query {
			ep.query[k] = append([]string(nil), vs...)
		}
	}
	ep.base = u.Scheme + "://" + u.Host + ep.rawPrefix
	for k, vs := range e.Header {
		if !validHeaderName(k) {
			return nil, fmt.Errorf("endpoint %q: header name %q is not valid", e.Name, k)
		}
		for _, v := range vs {
			if strings.ContainsAny(v, "\r\n\x00") {
				return nil, fmt.Errorf("endpoint %q: header %q has a value with a line break or NUL", e.Name, k)
			}
		}
		ck := textproto.CanonicalMIMEHeaderKey(k)
		ep.header = append(ep.header, headerKV{key: ck, values: append([]string(nil), vs...)})
	}
	return ep, nil
}

func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", c) >= 0 {
			return false
		}
	}
	return true
}

// outRequest is an attempt's request, its own URL, and room for the URL's
// path: the attempt allocates them together (see attemptState).
type outRequest struct {
	r       http.Request
	u       url.URL
	pathBuf [32]byte // room for the joined path; written once
}

// request fills o with the request an attempt sends to ep, on ctx, and
// returns it. It is a shallow copy of the caller's req (net/http's
// RoundTripper contract: the caller's request is never modified) with its
// own URL and, when anything changes, its own header map: the caller's
// path and query are kept; scheme, host and the base-path prefix come from
// the endpoint; the caller's credentials are replaced by the endpoint's
// headers. Unlike Request.Clone it shares what no RoundTripper writes
// (header values, Trailer, TransferEncoding), and, if share, the caller's
// header map itself when nothing is removed or added; see outHeader.
func (ep *endpoint) request(o *outRequest, ctx context.Context, req *http.Request, passCreds, share bool) *http.Request {
	// WithContext is inlined and its result does not escape: this copies
	// the caller's request with ctx set, without an allocation.
	o.r = *req.WithContext(ctx)
	o.u = *req.URL
	o.r.URL = &o.u
	ep.routeURL(&o.u, o.pathBuf[:])
	o.r.Host = ""
	o.r.Header = ep.outHeader(req.Header, passCreds, share)
	return &o.r
}

// routeURL points u (the attempt's own copy of the caller's URL) at the
// endpoint. The joined path is built in buf if it fits.
func (ep *endpoint) routeURL(u *url.URL, buf []byte) {
	u.Scheme, u.Host, u.User = ep.scheme, ep.host, nil
	if ep.query != nil {
		q := u.Query()
		for k, vs := range ep.query {
			q[k] = vs
		}
		u.RawQuery, u.ForceQuery = q.Encode(), false
	}
	if ep.prefix == "" {
		return
	}
	p, sep := u.Path, ""
	if p == "" || p[0] != '/' {
		sep = "/"
	}
	if u.RawPath != "" {
		u.RawPath = ep.rawPrefix + u.RawPath
	} else if ep.rawPrefix != ep.prefix {
		u.RawPath = ep.rawPrefix + u.EscapedPath()
	}
	u.Path = concat(buf, ep.prefix, sep, p)
}

// concat returns a+b+c, in buf's bytes if it fits. The string shares them,
// so buf must never be written again.
func concat(buf []byte, a, b, c string) string {
	n := len(a) + len(b) + len(c)
	if n == 0 || n > len(buf) {
		return a + b + c
	}
	i := copy(buf, a)
	i += copy(buf[i:], b)
	copy(buf[i:], c)
	return unsafe.String(unsafe.SliceData(buf), n)
}

// outHeader returns the header an attempt sends to ep, given the caller's
// h: h without the caller's credentials (unless passCreds), under their
// canonical keys and under any other spelling, and with the endpoint's
// headers.
//
// The result shares h's value slices. When nothing is removed or added
// and share is set, it is h itself: the caller's header is only ever read,
// by this package and by the base RoundTripper, which net/http.RoundTripper
// forbids to modify the request. Callers clear share when attempts may run
// at once (hedging), so that a base that breaks that rule writes into a
// map of the attempt's own rather than into one that other goroutines
// read and write. A nil h gives an empty header, never nil (http.Transport
// refuses a nil Request.Header).
func (ep *endpoint) outHeader(h http.Header, passCreds, share bool) http.Header {
	if h == nil {
		out := make(http.Header, len(ep.header))
		ep.setHeaders(out)
		return out
	}
	// A key set straight into the map ("authorization") escapes
	// canonical lookups, yet a server reads it as the credential.
	if share && len(ep.header) == 0 && (passCreds || !hasCallerCredential(h)) {
		return h
	}
	// Cloning copies the map's groups as they are, without rehashing: less
	// than building a map key by key. One pass over the copy then drops the
	// caller's credentials under any spelling; it costs less than deleting
	// every credential name (most absent) and scanning for stray ones
	// (BenchmarkRoundTripSturdy).
	out := maps.Clone(h)
	if !passCreds {
		for k := range out {
			if isCallerCredential(k) {
				delete(out, k) // the endpoint's own credentials replace them below
			}
		}
	}
	ep.setHeaders(out)
	return out
}

// hasCallerCredential reports whether h holds a caller credential, under
// its canonical key or any other spelling.
func hasCallerCredential(h http.Header) bool {
	for k := range h {
		if isCallerCredential(k) {
			return true
		}
	}
	return false
}

// isCallerCredential reports whether k names a caller credential, in any
// case: a key set straight into the map ("authorization") escapes
// canonical lookups, yet a server reads it as the credential.
func isCallerCredential(k string) bool {
	switch len(k) { // the lengths of the credential names
	case len("Api-Key"), len("X-Api-Key"), len("Authorization"), len("X-Goog-Api-Key"):
		for _, c := range pipeline.CallerCredentials {
			if strings.EqualFold(k, c) {
				return true
			}
		}
	}
	return false
}

// setHeaders sets the endpoint's own headers in h, replacing any values
// of the same keys.
func (ep *endpoint) setHeaders(h http.Header) {
	for _, kv := range ep.header {
		h[kv.key] = kv.values
	}
}

// stripCallerCredentials drops the caller's credentials from h, under
// any spelling.
func stripCallerCredentials(h http.Header) {
	for k := range h {
		if isCallerCredential(k) {
			delete(h, k)
		}
	}
}

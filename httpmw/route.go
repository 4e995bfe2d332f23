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

	"github.com/sturdyai/sturdy/internal/chain"
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

	listen   chain.Sampled                       // which successes' headers the chain reads for rate-limit fields
	reqAttrs atomic.Pointer[reqAttrs]            // the last attempt span's request attributes (semconv.go)
	urls     [urlSlots]atomic.Pointer[routedURL] // caller URLs routed to ep (routed)
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

// request fills r and u with the request an attempt sends to ep, on ctx,
// and returns it. It is a shallow copy of the caller's req (net/http's
// RoundTripper contract: the caller's request is never modified) with its
// own URL u, a copy of the endpoint's routed form of the caller's
// (routed), and, when anything changes, a header map of its own: the
// caller's path and query are kept; scheme, host and the base-path prefix
// come from the endpoint; the caller's credentials are replaced by the
// endpoint's headers. Unlike Request.Clone it shares what no RoundTripper
// writes (header values, Trailer, TransferEncoding), and, if share, the
// caller's header map itself when nothing is removed or added; see
// outHeader. The URL is the attempt's own, though the contract forbids a
// base to write it too: a base that did must not redirect later calls.
//
// own is where the attempt keeps a header map of its own (outHeader).
func (ep *endpoint) request(r *http.Request, u *url.URL, ctx context.Context, req *http.Request, passCreds, share bool, own *http.Header) *http.Request {
	// WithContext is inlined and its result does not escape: this copies
	// the caller's request with ctx set, without an allocation. (Skipping
	// it when ctx is the caller's would need ctx == req.Context(), which
	// panics for a context whose dynamic type cannot be compared.)
	*r = *req.WithContext(ctx)
	*u = *ep.routed(req.URL)
	r.URL = u
	r.Host = ""
	r.Header = ep.outHeader(req.Header, passCreds, share, own)
	return r
}

// routedURL is a caller's URL (from, without the scheme, host and user
// info that routing replaces) and where it goes on an endpoint (to).
// Once published in an endpoint's slot it is never written again.
type routedURL struct {
	from, to url.URL
}

// urlSlots is how many routed URLs an endpoint keeps: a program sends a
// few paths (chat completions, embeddings, ...), each with a query that
// rarely changes.
const urlSlots = 8

// routed returns where the caller's URL u goes on ep, for an attempt to
// copy (never to send or write: ep keeps it for the next attempts). A
// caller URL that ep has routed before costs a comparison; one not seen
// before, or one that another pushed out of its slot, costs the routing
// and one allocation, and takes the slot.
func (ep *endpoint) routed(u *url.URL) *url.URL {
	slot := &ep.urls[urlSlot(u)]
	if e := slot.Load(); e != nil && sameRoute(&e.from, u) {
		return &e.to
	}
	e := &routedURL{from: *u, to: *u}
	// The key keeps only what routing keeps: no user info of the caller's
	// stays in the endpoint's memory.
	e.from.Scheme, e.from.Host, e.from.User = "", "", nil
	ep.routeURL(&e.to)
	slot.Store(e)
	return &e.to
}

// urlSlot is the slot of ep.urls where u's routed URL is kept: a cheap
// hash of what tells the usual paths apart.
func urlSlot(u *url.URL) int {
	h := 3*len(u.Path) + len(u.RawQuery)
	if n := len(u.Path); n > 0 {
		h += int(u.Path[n-1])
	}
	return h & (urlSlots - 1)
}

// sameRoute reports whether the caller URLs a and b route alike: they
// have the same fields but for the scheme, host and user info, which
// routing replaces.
func sameRoute(a, b *url.URL) bool {
	return a.Path == b.Path && a.RawQuery == b.RawQuery && a.RawPath == b.RawPath &&
		a.Opaque == b.Opaque && a.Fragment == b.Fragment && a.RawFragment == b.RawFragment &&
		a.ForceQuery == b.ForceQuery && a.OmitHost == b.OmitHost
}

// routeURL points u (a copy of the caller's URL) at the endpoint.
func (ep *endpoint) routeURL(u *url.URL) {
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
	u.Path = ep.prefix + sep + p
}

// outHeader returns the header an attempt sends to ep, given the caller's
// h: h without the caller's credentials (unless passCreds), under their
// canonical keys and under any other spelling (a key set straight into
// the map, "authorization", escapes canonical lookups, yet a server reads
// it as the credential), and with the endpoint's headers.
//
// The result shares h's value slices. When nothing is removed or added
// and share is set, it is h itself: the caller's header is only ever read,
// by this package and by the base RoundTripper, which net/http.RoundTripper
// forbids to modify the request. Callers clear share when attempts may run
// at once (hedging), so that a base that breaks that rule writes into a
// map of the attempt's own rather than into one that other goroutines
// read and write. A nil h gives an empty header, never nil (http.Transport
// refuses a nil Request.Header).
//
// own, if not nil, holds the attempt's own header map to fill (an emptied
// one, recycled with its sentParts; nil: none yet, and the one made is
// kept there): filled key by key, the caller's credentials skipped on the
// way, rather than cloned and then deleted from.
func (ep *endpoint) outHeader(h http.Header, passCreds, share bool, own *http.Header) http.Header {
	if h == nil {
		out := make(http.Header, len(ep.header))
		ep.setHeaders(out)
		return out
	}
	if share && len(ep.header) == 0 && (passCreds || !hasCallerCredential(h)) {
		return h
	}
	var out http.Header
	if own == nil {
		out = maps.Clone(h)
		if !passCreds {
			stripCallerCredentials(out)
		}
	} else {
		if out = *own; out == nil {
			out = make(http.Header, len(h)+len(ep.header))
			*own = out
		}
		for k, vs := range h {
			if passCreds || !isCallerCredential(k) {
				out[k] = vs // the endpoint's own credentials replace them below
			}
		}
	}
	ep.setHeaders(out)
	return out
}

// hasCallerCredential reports whether h holds a caller credential, under
// any spelling.
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
	if len(k) >= len(credByLen) {
		return false
	}
	c := credByLen[len(k)]
	return c != "" && (k == c || strings.EqualFold(k, c))
}

// credByLen holds pipeline.CallerCredentials by their lengths, which
// differ: a key's length names the one credential it may spell, so that
// most keys cost a length check and a credential key under its canonical
// spelling one comparison.
var credByLen = func() (t [16]string) {
	for _, c := range pipeline.CallerCredentials {
		if len(c) >= len(t) || t[len(c)] != "" {
			panic("httpmw: caller credential names must be shorter than 16 bytes and differ in length: " + c)
		}
		t[len(c)] = c
	}
	return t
}()

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

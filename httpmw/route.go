package httpmw

import (
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"

	"github.com/sturdyai/sturdy"
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

// callerCredentials are removed from every request unless
// WithCallerCredentials: a key set on the client must never reach an
// endpoint it was not meant for.
var callerCredentials = [...]string{"Authorization", "Api-Key", "X-Api-Key", "X-Goog-Api-Key"}

type headerKV struct {
	key    string
	values []string
}

// endpoint is an Endpoint prepared for the hot path: its URL parts and
// headers are computed once.
type endpoint struct {
	name        string
	tier        int
	scheme      string
	host        string
	prefix      string // base path without a trailing slash; "" for none
	rawPrefix   string // its escaped form
	base        string // scheme://host + prefix, for probes
	header      []headerKV
	nameHdr     []string
	sep         sturdy.Endpoint
	credentials map[string]bool // header keys this endpoint sets
}

func newEndpoint(e Endpoint, tier int, model string) (*endpoint, error) {
	if e.Name == "" {
		return nil, fmt.Errorf("an endpoint has no Name; give every endpoint a unique name")
	}
	if e.Weight < 0 {
		return nil, fmt.Errorf("endpoint %q: Weight is %d; it must not be negative", e.Name, e.Weight)
	}
	// The errors below never quote the URL: a URL that is refused may
	// carry a key in its user info or query.
	u, err := url.Parse(e.URL)
	switch {
	case err != nil:
		if ue, ok := err.(*url.Error); ok {
			err = ue.Err // without the URL it quotes
		}
		return nil, fmt.Errorf("endpoint %q: URL does not parse (%v); give a base URL such as \"http://127.0.0.1:8000\"", e.Name, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("endpoint %q: URL has scheme %q; it must start with http:// or https://", e.Name, u.Scheme)
	case u.Host == "":
		return nil, fmt.Errorf("endpoint %q: URL has no host", e.Name)
	case u.User != nil:
		return nil, fmt.Errorf("endpoint %q: URL has user info; put credentials in Endpoint.Header instead", e.Name)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, fmt.Errorf("endpoint %q: URL has a query or fragment; give only scheme, host and an optional base path", e.Name)
	}
	ep := &endpoint{
		name:        e.Name,
		tier:        tier,
		scheme:      u.Scheme,
		host:        u.Host,
		prefix:      strings.TrimRight(u.Path, "/"),
		rawPrefix:   strings.TrimRight(u.EscapedPath(), "/"),
		nameHdr:     []string{e.Name},
		credentials: map[string]bool{},
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
		ep.credentials[ck] = true
	}
	ep.sep = sturdy.Endpoint{Name: e.Name, Address: e.URL, Weight: e.Weight, Model: model}
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

// route points out (a clone of the caller's request) at the endpoint: the
// caller's path and query are kept; scheme, host and the base-path prefix
// come from the endpoint; the caller's credentials are replaced by the
// endpoint's headers.
func (ep *endpoint) route(out *http.Request, passCreds bool) {
	u := out.URL
	u.Scheme, u.Host, u.User = ep.scheme, ep.host, nil
	if ep.prefix != "" {
		p := u.Path
		if p == "" {
			p = "/"
		} else if p[0] != '/' {
			p = "/" + p
		}
		if u.RawPath != "" {
			u.RawPath = ep.rawPrefix + u.RawPath
		} else if ep.rawPrefix != ep.prefix {
			u.RawPath = ep.rawPrefix + u.EscapedPath()
		}
		u.Path = ep.prefix + p
	}
	out.Host = ""
	ep.setHeaders(out, passCreds)
}

func (ep *endpoint) setHeaders(out *http.Request, passCreds bool) {
	if out.Header == nil {
		out.Header = make(http.Header, len(ep.header))
	}
	if !passCreds {
		for _, k := range callerCredentials {
			delete(out.Header, k)
		}
	}
	for _, kv := range ep.header {
		out.Header[kv.key] = kv.values
	}
}

func stripCallerCredentials(h http.Header) {
	for _, k := range callerCredentials {
		delete(h, k)
	}
}

package httpmw

import (
	"net/http"

	"github.com/sturdyai/sturdy/internal/body"
)

// redirect sends a request that http.Client made to follow a redirect
// (req.Response is set). It goes once, to the URL the Client resolved, with
// no failover. Its credentials follow the one rule of the Transport: an
// endpoint's headers go to that endpoint only.
//
//   - An absolute redirect to the origin of the endpoint that answered
//     carries that endpoint's headers.
//   - A relative redirect (the Client resolves it against the caller's
//     URL, whose host is not the endpoint's) is sent to the endpoint that
//     answered, with its headers; the Location's path is used as is.
//   - A redirect anywhere else carries no endpoint header.
//
// The caller's credentials are removed in every case, unless
// WithCallerCredentials.
func (t *Transport) redirect(req *http.Request) (*http.Response, error) {
	out := req.Clone(req.Context())
	if out.Header == nil {
		out.Header = make(http.Header)
	}
	if !t.passCreds {
		stripCallerCredentials(out.Header)
	}
	stripTimeoutHeaders(out.Header) // sturdy's own, never sent
	prev := t.byName[req.Response.Header.Get(HeaderEndpoint)]
	var ep *endpoint
	switch {
	case prev == nil:
	case out.URL.Scheme == prev.scheme && out.URL.Host == prev.host:
		ep = prev
	case req.Response.Request != nil && req.Response.Request.URL != nil &&
		out.URL.Host == req.Response.Request.URL.Host && out.URL.Scheme == req.Response.Request.URL.Scheme:
		ep = prev
		out.URL.Scheme, out.URL.Host, out.URL.User, out.Host = prev.scheme, prev.host, nil, ""
	}
	if ep != nil {
		ep.setHeaders(out.Header)
	}
	resp, err := t.base.RoundTrip(out)
	if err == nil && resp == nil {
		err = errNoResponse // a broken base; never hand on (nil, nil)
	}
	if err != nil {
		if resp != nil {
			body.Drain(resp.Body, 0)
		}
		return nil, err
	}
	if resp.Header == nil {
		resp.Header = make(http.Header)
	}
	delete(resp.Header, HeaderEndpoint)
	delete(resp.Header, HeaderTier)
	if ep != nil {
		resp.Header[HeaderEndpoint] = ep.nameHdr
		resp.Header[HeaderTier] = t.tiers[ep.tier].nameHdr
	}
	resp.Request = req
	return resp, nil
}
